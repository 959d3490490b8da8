package middleware_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	smithy "github.com/aws/smithy-go"

	"github.com/streamstatus/streamstatus/backoff"
	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/internal/canned"
	"github.com/streamstatus/streamstatus/middleware"
	"github.com/streamstatus/streamstatus/smithyext"
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

// errorCode is what an example prints for a call's error: the code of its
// *smithyext.StatusError, or <nil>.
func errorCode(err error) string {
	var se *smithyext.StatusError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s after %d events", se.ErrorCode(), se.EventsDelivered())
	}
	return fmt.Sprint(err)
}

// The read-ahead is how much of a stream's opening (non-content events such
// as messageStart) the middleware may hold back while a failure is still
// retried transparently. With the default, an exception right after
// messageStart is retried; with a 1-byte limit, messageStart is past the
// limit, the stream counts as started, and the exception reaches the
// consumer through stream.Err().
func ExampleWithReadAheadLimit() {
	for _, limit := range []int{0, 1} { // 0: DefaultReadAheadLimit
		ep := canned.NewEndpoint(
			canned.Stream(canned.MessageStart(), canned.Exception("internalServerException", "Internal error")),
			canned.Stream(canned.ConverseText("Hello")),
		)
		client := bedrockruntime.NewFromConfig(exampleConfig(ep), middleware.WithBedrock(middleware.WithReadAheadLimit(limit)))
		text, err := converse(context.Background(), client)
		fmt.Printf("limit %d: %v, %s, calls %d\n", limit, text, errorCode(err), ep.Calls())
	}
	// Output:
	// limit 0: [Hello], <nil>, calls 2
	// limit 1: [], InternalServerException after 1 events, calls 1
}

// By default messageStart does not count as content, so an exception right
// after it is retried. WithNonContentEvents() with no arguments makes every
// event count: the same exception then reaches the consumer.
func ExampleWithNonContentEvents() {
	for _, opts := range [][]middleware.Option{nil, {middleware.WithNonContentEvents()}} {
		ep := canned.NewEndpoint(
			canned.Stream(canned.MessageStart(), canned.Exception("internalServerException", "Internal error")),
			canned.Stream(canned.ConverseText("Hello")),
		)
		client := bedrockruntime.NewFromConfig(exampleConfig(ep), middleware.WithBedrock(opts...))
		text, err := converse(context.Background(), client)
		fmt.Printf("%v, %s, calls %d\n", text, errorCode(err), ep.Calls())
	}
	// Output:
	// [Hello], <nil>, calls 2
	// [], InternalServerException after 1 events, calls 1
}

// On InvokeModelWithResponseStream with an Anthropic model, Bedrock can send
// an error as an ordinary chunk ({"type":"error",...}). By default the
// middleware turns it into a *smithyext.StatusError (here overloaded_error,
// HTTP 529, a retryable throttle); WithDisableErrorEnvelopes hands it to the
// consumer as a chunk, as the bare SDK does.
func ExampleWithDisableErrorEnvelopes() {
	chunk := func(json string) []byte { return canned.Event("chunk", map[string][]byte{"bytes": []byte(json)}) }
	answer := canned.Stream(
		chunk(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}`),
		chunk(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`),
	)
	for _, opts := range [][]middleware.Option{nil, {middleware.WithDisableErrorEnvelopes()}} {
		client := bedrockruntime.NewFromConfig(exampleConfig(canned.NewEndpoint(answer)), middleware.WithBedrock(opts...))
		out, err := client.InvokeModelWithResponseStream(context.Background(), &bedrockruntime.InvokeModelWithResponseStreamInput{
			ModelId: aws.String("anthropic.claude-3-haiku-20240307-v1:0"),
			Body:    []byte(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":64,"messages":[{"role":"user","content":"Hello"}]}`),
		})
		if err != nil {
			fmt.Println(err)
			continue
		}
		chunks := 0
		for range out.GetStream().Events() {
			chunks++
		}
		err = out.GetStream().Close()
		if err == nil {
			err = out.GetStream().Err()
		}
		var se *smithyext.StatusError
		if errors.As(err, &se) {
			fmt.Println("chunks:", chunks, "error:", se.ErrorCode(), se.HTTPStatusCode(), se.RetryableError(), se.Throttle)
		} else {
			fmt.Println("chunks:", chunks, "error:", err)
		}
	}
	// Output:
	// chunks: 1 error: overloaded_error 529 true true
	// chunks: 2 error: <nil>
}

// WithBudget puts the client under a retry budget: here at most 2 attempts,
// retried at once. WithBedrock makes the client's retryer the budget's (the
// one set in the config is replaced), and the call stops after the budget's
// attempts with the last attempt's *smithyext.StatusError.
func ExampleWithBudget() {
	ep := canned.NewEndpoint(canned.Stream(canned.Exception("internalServerException", "Internal error")))
	budget := backoff.NewBudget(func(b *backoff.Budget) {
		b.MaxAttempts = 2
		b.Transient = backoff.Immediate // keep the example fast
	})
	client := bedrockruntime.NewFromConfig(exampleConfig(ep), middleware.WithBedrock(middleware.WithBudget(budget)))
	_, err := converse(context.Background(), client)

	fmt.Println(errorCode(err), "calls:", ep.Calls())
	fmt.Println("the client's retryer is the budget's:", backoff.Of(client.Options().Retryer) == budget)
	// Output:
	// InternalServerException after 0 events calls: 2
	// the client's retryer is the budget's: true
}
