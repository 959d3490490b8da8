package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/streamstatus/streamstatus/internal/canned"
	"github.com/streamstatus/streamstatus/middleware"
	"github.com/streamstatus/streamstatus/smithyext"
)

// exampleCredentials are fixed keys: requests are signed, and the canned
// endpoint ignores the signature. (Not credentials.NewStaticCredentialsProvider:
// the library's go.mod leaves the credentials module to its users.)
var exampleCredentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "example-secret"}, nil
})

// exampleConfig sends a config's requests to a canned Bedrock endpoint,
// in process. Real programs use config.LoadDefaultConfig instead.
func exampleConfig(ep *canned.Endpoint) aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: exampleCredentials,
		HTTPClient:  ep,
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil }) // keep the example fast
			})
		},
	}
}

func converse(ctx context.Context, client *bedrockruntime.Client) ([]string, error) {
	out, err := client.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{
		ModelId: aws.String("anthropic.claude-3-haiku-20240307-v1:0"),
		Messages: []types.Message{{Role: types.ConversationRoleUser,
			Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: "Hello"}}}},
	})
	if err != nil {
		return nil, err
	}
	stream := out.GetStream()
	defer stream.Close()
	var text []string
	for ev := range stream.Events() {
		if d, ok := ev.(*types.ConverseStreamOutputMemberContentBlockDelta); ok {
			if t, ok := d.Value.Delta.(*types.ContentBlockDeltaMemberText); ok {
				text = append(text, t.Value)
			}
		}
	}
	return text, stream.Err()
}

// A throttle on the first frame of a stream is retried by the SDK's own
// retryer; the consumer sees only the clean attempt.
func ExampleWithBedrock() {
	ep := canned.NewEndpoint(
		canned.Stream(canned.MessageStart(), canned.Exception("throttlingException", "Too many requests")),
		canned.Stream(canned.ConverseText("Hello", " world")),
	)

	client := bedrockruntime.NewFromConfig(exampleConfig(ep), middleware.WithBedrock())
	text, err := converse(context.Background(), client)
	fmt.Println(text, err, "server calls:", ep.Calls())
	// Output: [Hello  world] <nil> server calls: 2
}

// A failure after content is not retried behind the consumer's back:
// stream.Err() is a *smithyext.StatusError with the mapped status and the
// number of events already delivered.
func ExampleWithBedrock_afterContent() {
	ep := canned.NewEndpoint(canned.Stream(
		canned.MessageStart(), canned.TextDelta("Hel"), canned.TextDelta("lo"),
		canned.Exception("serviceUnavailableException", "Service unavailable"),
	))

	client := bedrockruntime.NewFromConfig(exampleConfig(ep), middleware.WithBedrock())
	text, err := converse(context.Background(), client)

	var se *smithyext.StatusError
	if errors.As(err, &se) {
		fmt.Println(text, se.HTTPStatusCode(), se.ErrorCode(), se.RetryableError(), se.EventsDelivered())
	}
	var unavailable *types.ServiceUnavailableException
	fmt.Println("modeled type still reachable:", errors.As(err, &unavailable))
	// Output:
	// [Hel lo] 503 ServiceUnavailableException true 3
	// modeled type still reachable: true
}

// AppendMiddlewares installs the middlewares on every client made from a
// config; clients and operations without event streams are unaffected.
func ExampleAppendMiddlewares() {
	ep := canned.NewEndpoint(
		canned.Stream(canned.Exception("internalServerException", "Internal error")),
		canned.Stream(canned.ConverseText("ok")),
	)

	cfg := exampleConfig(ep)
	middleware.AppendMiddlewares(&cfg.APIOptions)
	client := bedrockruntime.NewFromConfig(cfg)

	text, err := converse(context.Background(), client)
	fmt.Println(text, err, "server calls:", ep.Calls())
	// Output: [ok] <nil> server calls: 2
}

// APIOption is the generic form, for any aws-sdk-go-v2 client's
// WithAPIOptions (or a per-call APIOptions append).
func ExampleAPIOption() {
	ep := canned.NewEndpoint(canned.Stream(canned.Exception("validationException", "Malformed input")))

	client := bedrockruntime.NewFromConfig(exampleConfig(ep), bedrockruntime.WithAPIOptions(middleware.APIOption()))
	_, err := converse(context.Background(), client)

	var status interface{ HTTPStatusCode() int }
	errors.As(err, &status)
	fmt.Println(status.HTTPStatusCode(), "server calls:", ep.Calls())
	// Output: 400 server calls: 1
}

// A stream that stalls before its first content event is closed after the
// first-event timeout and retried by the SDK's retryer, like any failure
// before content.
func ExampleWithFirstEventTimeout() {
	ep := canned.NewEndpoint(
		canned.Stalled(canned.MessageStart()),
		canned.Stream(canned.ConverseText("Hello")),
	)

	client := bedrockruntime.NewFromConfig(exampleConfig(ep),
		middleware.WithBedrock(middleware.WithFirstEventTimeout(100*time.Millisecond)))
	text, err := converse(context.Background(), client)
	fmt.Println(text, err, "server calls:", ep.Calls())
	// Output: [Hello] <nil> server calls: 2
}

// After content, a stall ends the stream with a retryable StreamStalled
// error counting the events delivered; the caller's own context errors
// stay distinct from it.
func ExampleWithIdleTimeout() {
	ep := canned.NewEndpoint(canned.Stalled(canned.MessageStart(), canned.TextDelta("Hel")))

	client := bedrockruntime.NewFromConfig(exampleConfig(ep),
		middleware.WithBedrock(middleware.WithIdleTimeout(100*time.Millisecond)))
	text, err := converse(context.Background(), client)

	var se *smithyext.StatusError
	if errors.As(err, &se) {
		fmt.Println(text, se.ErrorCode(), se.RetryableError(), se.EventsDelivered(), errors.Is(err, context.DeadlineExceeded))
	}
	// Output: [Hel] StreamStalled true 2 false
}
