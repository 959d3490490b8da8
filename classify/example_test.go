package classify_test

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	smithy "github.com/aws/smithy-go"

	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/smithyext"
)

// One handler for every path of a call: the error may come from the call,
// from stream.Err(), from an HTTP answer or from the network.
func ExampleClassify() {
	// As stream.Err() reports a throttle after 3 events (the middlewares
	// make this error; it is built by hand here).
	err := error(&smithyext.StatusError{
		Service: "Bedrock Runtime", Operation: "ConverseStream", Kind: smithyext.KindException,
		Code: "ThrottlingException", Message: "Too many requests", Status: 429,
		Retryable: true, Throttle: true, Events: 3,
	})

	r := classify.Classify(fmt.Errorf("reading the answer: %w", err))
	fmt.Println(r.Source, r.Status, r.Code, r.Retryable, r.Throttle, r.Events)

	r = classify.Classify(fmt.Errorf("operation ConverseStream: %w", context.Canceled))
	fmt.Println(r.Source, r.Code, r.Retryable, r.Code == classify.CodeRequestCanceled)
	// Output:
	// stream 429 ThrottlingException true true 3
	// canceled RequestCanceled false true
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
			// Keep the modeled type: errors.As(err, new(*types.ValidationException)) still works.
			Decode: classify.JSON[types.ValidationException](),
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

	r, _ := c.Rule("Bedrock Runtime", "validationException")
	fmt.Println(r.Code, r.Status, r.Retryable)
	r, _ = c.Rule("My Streaming Service", "backpressureException")
	fmt.Println(r.Code, r.Status, r.Throttle)
	r, _ = c.Rule("My Streaming Service", "ThrottlingException") // the generic rows apply to every service
	fmt.Println(r.Code, r.Status, r.Throttle)
	// Pass c to the middlewares with middleware.WithClassifier(c).
	// Output:
	// ValidationException 400 true
	// BackpressureException 429 true
	// ThrottlingException 429 true
}

// StatusThrottle teaches the SDK retryer that a stream failure the tables
// call a throttle is one, whatever its code: for example a
// modelStreamErrorException whose provider answered 429 (longer backoff,
// cheaper retry).
func ExampleStatusThrottle() {
	retryer := retry.NewStandard(func(o *retry.StandardOptions) {
		o.Throttles = append([]retry.IsErrorThrottle{classify.StatusThrottle{}}, o.Throttles...)
	})
	err := error(&smithyext.StatusError{
		Service: "Bedrock Runtime", Kind: smithyext.KindException,
		Code: "ModelStreamErrorException", Status: 424, Retryable: true, Throttle: true,
	})
	fmt.Println(retryer.IsErrorRetryable(err), classify.StatusThrottle{}.IsErrorThrottle(err), classify.IsThrottle(err))
	// Output: true true true
}
