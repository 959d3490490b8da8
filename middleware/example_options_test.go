package middleware_test

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	smithy "github.com/aws/smithy-go"

	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/middleware"
)

// Options compose: a classifier with one row overridden, a larger
// read-ahead for streams that open with big non-content events, and the
// envelope detection turned off.
func ExampleWithClassifier() {
	overrides := classify.Table{
		ServiceID: "Bedrock Runtime",
		Source:    "our runbook: validation errors from this proxy are transient",
		Rules: []classify.Rule{{
			Type:    "validationException",
			Outcome: classify.Outcome{Code: "ValidationException", Status: 400, Retryable: true, Fault: smithy.FaultServer},
		}},
	}
	c := classify.New(append(classify.DefaultTables(), overrides)...)

	client := bedrockruntime.NewFromConfig(aws.Config{Region: "us-east-1"}, middleware.WithBedrock(
		middleware.WithClassifier(c),
		middleware.WithReadAheadLimit(1<<20),
		middleware.WithDisableErrorEnvelopes(),
	))
	r, _ := c.Rule("Bedrock Runtime", "validationException")
	fmt.Println(client != nil, r.Retryable)
	// Output: true true
}
