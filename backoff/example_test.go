package backoff_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/streamstatus/streamstatus/backoff"
	"github.com/streamstatus/streamstatus/internal/canned"
	"github.com/streamstatus/streamstatus/middleware"
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
	}
}

func converse(client *bedrockruntime.Client) (string, error) {
	out, err := client.ConverseStream(context.Background(), converseInput)
	if err != nil {
		return "", err
	}
	stream := out.GetStream()
	defer stream.Close()
	var text strings.Builder
	for ev := range stream.Events() {
		text.WriteString(deltaText(ev))
	}
	return text.String(), stream.Err()
}

var converseInput = &bedrockruntime.ConverseStreamInput{
	ModelId: aws.String("anthropic.claude-3-haiku-20240307-v1:0"),
	Messages: []types.Message{{Role: types.ConversationRoleUser,
		Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: "Hello"}}}},
}

func deltaText(ev types.ConverseStreamOutput) string {
	if d, ok := ev.(*types.ConverseStreamOutputMemberContentBlockDelta); ok {
		if t, ok := d.Value.Delta.(*types.ContentBlockDeltaMemberText); ok {
			return t.Value
		}
	}
	return ""
}

// The one-option default: the client keeps the SDK's own retryer and its
// defaults (3 attempts, the SDK's backoff and retry quota).
func ExampleNewBudget_default() {
	ep := canned.NewEndpoint(
		canned.Stream(canned.Exception("internalServerException", "oops")),
		canned.Stream(canned.ConverseText("Hi!")),
	)
	client := bedrockruntime.NewFromConfig(exampleConfig(ep), middleware.WithBedrock())
	text, err := converse(client)
	fmt.Println(text, err, ep.Calls())
	// Output: Hi! <nil> 2
}

// A custom budget: 5 attempts, at most 30s of retrying per call, a quicker
// transient backoff, and a retry quota of its own.
func ExampleNewBudget_custom() {
	ep := canned.NewEndpoint(
		canned.Stream(canned.Exception("serviceUnavailableException", "busy")),
		canned.Stream(canned.Exception("serviceUnavailableException", "busy")),
		canned.Stream(canned.ConverseText("Hi!")),
	)
	bucket := backoff.NewTokenBucket(200)
	budget := backoff.NewBudget(func(b *backoff.Budget) {
		b.MaxAttempts = 5
		b.MaxElapsed = 30 * time.Second
		b.Transient = backoff.Shape{Initial: 10 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.2}
		b.Bucket = bucket
	})
	client := bedrockruntime.NewFromConfig(exampleConfig(ep), middleware.WithBedrock(middleware.WithBudget(budget)))
	text, err := converse(client)
	// Two retries cost 14 tokens each, and the retry that succeeds gets
	// its cost back.
	fmt.Println(text, err, ep.Calls(), bucket.Available())
	// Output: Hi! <nil> 3 186
}

// One budget shared by two clients (two regions, or every client built from
// one aws.Config): a storm in one region drains the quota both draw on.
func ExampleNewBudget_shared() {
	east := canned.NewEndpoint(canned.Stream(canned.Exception("throttlingException", "slow down"))) // every call
	west := canned.NewEndpoint(
		canned.Stream(canned.Exception("throttlingException", "slow down")),
		canned.Stream(canned.ConverseText("Hi!")),
	)

	bucket := backoff.NewTokenBucket(10) // two throttle retries, shared
	budget := backoff.NewBudget(func(b *backoff.Budget) {
		b.MaxAttempts = 5
		b.Bucket = bucket
		b.Throttle = backoff.Shape{Initial: time.Millisecond, Max: 10 * time.Millisecond, Multiplier: 2}
	})
	eastCfg, westCfg := exampleConfig(east), exampleConfig(west)
	for _, cfg := range []*aws.Config{&eastCfg, &westCfg} {
		cfg.Retryer = func() aws.Retryer { return budget.NewStandard() }
		middleware.AppendMiddlewares(&cfg.APIOptions, middleware.WithBudget(budget))
	}
	_, errEast := converse(bedrockruntime.NewFromConfig(eastCfg))
	_, errWest := converse(bedrockruntime.NewFromConfig(westCfg))
	fmt.Println("east calls:", east.Calls(), "west calls:", west.Calls(), "tokens left:", bucket.Available())
	fmt.Println(strings.Contains(errEast.Error(), "retry quota exceeded"), strings.Contains(errWest.Error(), "retry quota exceeded"))
	// Output:
	// east calls: 3 west calls: 1 tokens left: 0
	// true true
}

// RetryStream recovers from a failure after content: it runs the whole call
// again, after Reset discarded the partial answer.
func ExampleRetryStream() {
	ep := canned.NewEndpoint(
		canned.Stream(canned.MessageStart(), canned.TextDelta("Hel"), canned.Exception("serviceUnavailableException", "busy")),
		canned.Stream(canned.ConverseText("Hello", "!")),
	)
	budget := backoff.NewBudget(func(b *backoff.Budget) {
		b.Transient = backoff.Shape{Initial: time.Millisecond, Max: 10 * time.Millisecond, Multiplier: 2}
	})
	client := bedrockruntime.NewFromConfig(exampleConfig(ep), middleware.WithBedrock(middleware.WithBudget(budget)))

	var answer strings.Builder
	err := backoff.RetryStream(context.Background(), budget,
		func(ctx context.Context) (backoff.Stream[types.ConverseStreamOutput], error) {
			out, err := client.ConverseStream(ctx, converseInput)
			if err != nil {
				return nil, err
			}
			return out.GetStream(), nil
		},
		func(ev types.ConverseStreamOutput) error {
			answer.WriteString(deltaText(ev))
			return nil
		},
		func(o *backoff.StreamOptions) {
			o.Reset = func(delivered int, err error) error {
				fmt.Printf("discarding %q (%d events) after: %v\n", answer.String(), delivered, err != nil)
				answer.Reset()
				return nil
			}
		})
	fmt.Println(answer.String(), err)
	// Output:
	// discarding "Hel" (2 events) after: true
	// Hello! <nil>
}

// NewStandard is the client's retryer under the budget: set it as the
// config's Retryer, and install the middlewares with the same budget, which
// check that every call's retryer is this budget's.
func ExampleBudget_NewStandard() {
	ep := canned.NewEndpoint(
		canned.Stream(canned.Exception("throttlingException", "slow down")),
		canned.Stream(canned.ConverseText("Hi!")),
	)
	budget := backoff.NewBudget(func(b *backoff.Budget) {
		b.MaxAttempts = 4
		b.Throttle = backoff.Immediate // keep the example fast
	})
	cfg := exampleConfig(ep)
	cfg.Retryer = func() aws.Retryer { return budget.NewStandard() }
	middleware.AppendMiddlewares(&cfg.APIOptions, middleware.WithBudget(budget))
	client := bedrockruntime.NewFromConfig(cfg)

	text, err := converse(client)
	fmt.Println(text, err, "calls:", ep.Calls(), "max attempts:", client.Options().Retryer.MaxAttempts())
	// Output: Hi! <nil> calls: 2 max attempts: 4
}

// NewAdaptive is the SDK's adaptive retryer (which also slows the client's
// sending rate after throttles) under the budget, elapsed-time limit
// included: here a retry whose delay could end past MaxElapsed is not made,
// and the call fails at once with an *backoff.ExhaustedError.
func ExampleBudget_NewAdaptive() {
	ep := canned.NewEndpoint(canned.Stream(canned.Exception("serviceUnavailableException", "busy")))
	budget := backoff.NewBudget(func(b *backoff.Budget) {
		b.MaxElapsed = time.Second
		b.Transient = backoff.Shape{Initial: 5 * time.Second, Max: 20 * time.Second, Multiplier: 2}
	})
	cfg := exampleConfig(ep)
	cfg.Retryer = func() aws.Retryer { return budget.NewAdaptive() }
	middleware.AppendMiddlewares(&cfg.APIOptions, middleware.WithBudget(budget))
	client := bedrockruntime.NewFromConfig(cfg)

	start := time.Now()
	_, err := converse(client)
	var exhausted *backoff.ExhaustedError
	if errors.As(err, &exhausted) {
		fmt.Println(exhausted.Reason, exhausted.Attempts, "calls:", ep.Calls(), "waited:", time.Since(start) > time.Second)
	} else {
		fmt.Println(err)
	}
	// Output: elapsed time 1 calls: 1 waited: false
}

// A budget that cannot be used fails the first call of every retryer and
// RetryStream built from it, and WithBudget; Validate says why at once.
func ExampleBudget_Validate() {
	budget := backoff.NewBudget(func(b *backoff.Budget) { b.MaxElapsed = -30 * time.Second })
	fmt.Println(budget.Validate())
	fmt.Println((&backoff.Budget{MaxAttempts: 2}).Validate() != nil) // not built by NewBudget
	fmt.Println(backoff.NewBudget().Validate())
	// Output:
	// streamstatus: budget MaxElapsed is -30s; set a positive duration, or 0 for no limit
	// true
	// <nil>
}
