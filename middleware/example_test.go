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

	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/middleware"
	"github.com/streamstatus/streamstatus/smithyext"
)

// exampleCredentials are fixed keys for the fake endpoint, which only checks
// that requests are signed. (Not credentials.NewStaticCredentialsProvider:
// the library's go.mod leaves the credentials module to its users.)
var exampleCredentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "example-secret"}, nil
})

// exampleConfig points a config at a fake Bedrock endpoint on 127.0.0.1.
// Real programs use config.LoadDefaultConfig instead.
func exampleConfig(srv *fake.Server) aws.Config {
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  exampleCredentials,
		BaseEndpoint: aws.String(srv.URL),
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
	srv, _ := fake.NewServer()
	defer srv.Close()
	srv.Enqueue(
		fake.Response{Steps: []fake.Step{fake.MessageStart(), fake.Exception("throttlingException", "Too many requests")}},
		fake.Response{Steps: fake.ConverseText("Hello", " world")},
	)

	client := bedrockruntime.NewFromConfig(exampleConfig(srv), middleware.WithBedrock())
	text, err := converse(context.Background(), client)
	fmt.Println(text, err, "server calls:", srv.CallCount())
	// Output: [Hello  world] <nil> server calls: 2
}

// A failure after content is not retried behind the consumer's back:
// stream.Err() is a *smithyext.StatusError with the mapped status and the
// number of events already delivered.
func ExampleWithBedrock_afterContent() {
	srv, _ := fake.NewServer()
	defer srv.Close()
	srv.Enqueue(fake.Response{Steps: []fake.Step{
		fake.MessageStart(), fake.TextDelta("Hel"), fake.TextDelta("lo"),
		fake.Exception("serviceUnavailableException", "Service unavailable"),
	}})

	client := bedrockruntime.NewFromConfig(exampleConfig(srv), middleware.WithBedrock())
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
	srv, _ := fake.NewServer()
	defer srv.Close()
	srv.Enqueue(
		fake.Response{Steps: []fake.Step{fake.Exception("internalServerException", "Internal error")}},
		fake.Response{Steps: fake.ConverseText("ok")},
	)

	cfg := exampleConfig(srv)
	middleware.AppendMiddlewares(&cfg.APIOptions)
	client := bedrockruntime.NewFromConfig(cfg)

	text, err := converse(context.Background(), client)
	fmt.Println(text, err, "server calls:", srv.CallCount())
	// Output: [ok] <nil> server calls: 2
}

// APIOption is the generic form, for any aws-sdk-go-v2 client's
// WithAPIOptions (or a per-call APIOptions append).
func ExampleAPIOption() {
	srv, _ := fake.NewServer()
	defer srv.Close()
	srv.Enqueue(fake.Response{Steps: []fake.Step{fake.Exception("validationException", "Malformed input")}})

	client := bedrockruntime.NewFromConfig(exampleConfig(srv), bedrockruntime.WithAPIOptions(middleware.APIOption()))
	_, err := converse(context.Background(), client)

	var status interface{ HTTPStatusCode() int }
	errors.As(err, &status)
	fmt.Println(status.HTTPStatusCode(), "server calls:", srv.CallCount())
	// Output: 400 server calls: 1
}

// A stream that stalls before its first content event is closed after the
// first-event timeout and retried by the SDK's retryer, like any failure
// before content.
func ExampleWithFirstEventTimeout() {
	srv, _ := fake.NewServer()
	defer srv.Close()
	srv.Enqueue(
		fake.Response{Steps: []fake.Step{fake.MessageStart(), fake.Pause(time.Minute)}}, // a stall
		fake.Response{Steps: fake.ConverseText("Hello")},
	)

	client := bedrockruntime.NewFromConfig(exampleConfig(srv),
		middleware.WithBedrock(middleware.WithFirstEventTimeout(100*time.Millisecond)))
	text, err := converse(context.Background(), client)
	fmt.Println(text, err, "server calls:", srv.CallCount())
	// Output: [Hello] <nil> server calls: 2
}

// After content, a stall ends the stream with a retryable StreamStalled
// error counting the events delivered; the caller's own context errors
// stay distinct from it.
func ExampleWithIdleTimeout() {
	srv, _ := fake.NewServer()
	defer srv.Close()
	srv.Enqueue(fake.Response{Steps: []fake.Step{
		fake.MessageStart(), fake.TextDelta("Hel"), fake.Pause(time.Minute),
	}})

	client := bedrockruntime.NewFromConfig(exampleConfig(srv),
		middleware.WithBedrock(middleware.WithIdleTimeout(100*time.Millisecond)))
	text, err := converse(context.Background(), client)

	var se *smithyext.StatusError
	if errors.As(err, &se) {
		fmt.Println(text, se.ErrorCode(), se.RetryableError(), se.EventsDelivered(), errors.Is(err, context.DeadlineExceeded))
	}
	// Output: [Hel] StreamStalled true 2 false
}
