package classify_test

import (
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	smithy "github.com/aws/smithy-go"

	"github.com/streamstatus/streamstatus/classify"
)

// One handler for every path of a call: the error may come from the call,
// from stream.Err(), from an HTTP answer or from the network.
func ExampleClassify() {
	// As stream.Err() reports a throttle after 3 events (normally produced
	// by the middlewares, built by hand here).
	err := classify.Default().Exception(classify.Stream{Service: "Bedrock Runtime", Operation: "ConverseStream", Events: 3},
		"throttlingException", []byte(`{"message":"Too many requests"}`))

	r := classify.Classify(fmt.Errorf("reading the answer: %w", err))
	fmt.Println(r.Source, r.Status, r.Code, r.Retryable, r.Throttle, r.Events)
	// Output: stream 429 ThrottlingException true true 3
}

// Override one row without forking: here validationException becomes
// retryable for one client, and a service of your own gets a table.
func ExampleNew() {
	overrides := classify.Table{
		ServiceID: "Bedrock Runtime",
		Source:    "our runbook: a validation error from this proxy is transient",
		Rules: []classify.Rule{{
			Type:    "validationException",
			Outcome: classify.Outcome{Code: "ValidationException", Status: 400, Retryable: true, Fault: smithy.FaultServer},
		}},
	}
	mine := classify.Table{
		ServiceID: "My Streaming Service",
		Source:    "internal API docs",
		Rules: []classify.Rule{{
			Type:    "backpressureException",
			Outcome: classify.Outcome{Code: "BackpressureException", Status: 429, Retryable: true, Throttle: true},
		}},
	}
	c := classify.New(append(classify.DefaultTables(), overrides, mine)...)

	se := c.Exception(classify.Stream{Service: "Bedrock Runtime"}, "validationException", nil)
	fmt.Println(se.Code, se.Status, se.Retryable)
	se = c.Exception(classify.Stream{Service: "My Streaming Service"}, "backpressureException", nil)
	fmt.Println(se.Code, se.Status, se.Throttle)
	// Pass c to the middlewares with middleware.WithClassifier(c).
	// Output:
	// ValidationException 400 true
	// BackpressureException 429 true
}

// StatusThrottle teaches the SDK retryer that a modelStreamErrorException
// whose provider answered 429 is a throttle (longer backoff, cheaper retry).
func ExampleStatusThrottle() {
	retryer := retry.NewStandard(func(o *retry.StandardOptions) {
		o.Throttles = append([]retry.IsErrorThrottle{classify.StatusThrottle{}}, o.Throttles...)
	})
	err := classify.Default().Exception(classify.Stream{Service: "Bedrock Runtime"},
		"modelStreamErrorException", []byte(`{"message":"model failed","originalStatusCode":429}`))
	var se interface{ RetryableError() bool }
	fmt.Println(retryer.IsErrorRetryable(err), errors.As(err, &se), classify.StatusThrottle{}.IsErrorThrottle(err))
	// Output: true true true
}
