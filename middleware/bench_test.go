package middleware_test

import (
	"testing"

	smithymiddleware "github.com/aws/smithy-go/middleware"

	"github.com/streamstatus/streamstatus/middleware"
)

// BenchmarkInstallStepsAside measures the install check on a stack without
// an event stream: the whole cost of the installed-but-idle middlewares on
// a non-streaming call.
func BenchmarkInstallStepsAside(b *testing.B) {
	apply := middleware.APIOption()
	stack := smithymiddleware.NewStack("InvokeModel", nil)
	_ = stack.Deserialize.Add(smithymiddleware.DeserializeMiddlewareFunc("OperationDeserializer", nil), smithymiddleware.After)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := apply(stack); err != nil {
			b.Fatal(err)
		}
	}
}
