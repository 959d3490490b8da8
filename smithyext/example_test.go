package smithyext_test

import (
	"errors"
	"fmt"

	"github.com/streamstatus/streamstatus/smithyext"
)

// StatusError reads as one line and answers the SDK's error interfaces.
func ExampleStatusError() {
	err := error(&smithyext.StatusError{
		Service: "Bedrock Runtime", Operation: "ConverseStream", Kind: smithyext.KindException,
		Code: "ThrottlingException", Message: "Too many requests", Status: 429,
		Retryable: true, Throttle: true, RequestID: "1a2b", Events: 3,
	})
	fmt.Println(err)

	var status interface{ HTTPStatusCode() int }
	var retryable interface{ RetryableError() bool }
	fmt.Println(errors.As(err, &status), status.HTTPStatusCode(), errors.As(err, &retryable), retryable.RetryableError())
	// Output:
	// Bedrock Runtime ConverseStream: ThrottlingException (HTTP 429, retryable, throttle) after 3 events: Too many requests (request id 1a2b)
	// true 429 true true
}
