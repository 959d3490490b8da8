package middleware

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"

	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/internal/streamerr"
)

// TestStallRetryCost pins what the README says a stall before content costs
// the SDK's retry quota: it is retried like any transient failure (14
// tokens with Retry Behavior 2.1, aws-sdk-go-v2 v1.48.0+), not at a
// throttle's discount (5), even though its cause reports Timeout(): the
// SDK no longer charges timeouts differently.
func TestStallRetryCost(t *testing.T) {
	opts := resolve(nil)
	s := streamerr.Stream{Service: "Bedrock Runtime", Operation: "ConverseStream"}
	stall := opts.classifier.Stalled(s, &stallError{what: "no content event", d: time.Second, after: "of waiting for bytes since the response headers", option: "WithFirstEventTimeout"})
	throttle := opts.classifier.Exception(s, "throttlingException", []byte(`{"message":"slow down"}`))
	cost := func(err error) uint {
		rl := ratelimit.NewTokenRateLimit(500)
		r := retry.NewStandard(func(o *retry.StandardOptions) {
			o.RateLimiter = rl
			o.Throttles = append([]retry.IsErrorThrottle{classify.StatusThrottle{}}, o.Throttles...) // as classify's doc recommends
		})
		if !r.IsErrorRetryable(err) {
			t.Fatalf("%v: not retryable", err)
		}
		if _, err := r.GetRetryToken(context.Background(), err); err != nil {
			t.Fatal(err)
		}
		return 500 - rl.Remaining()
	}
	if got, want := cost(throttle), retry.DefaultThrottlingRetryCost; got != want {
		t.Fatalf("a first-frame throttle costs %d tokens, want %d", got, want)
	}
	if got := cost(stall); got != 14 {
		t.Fatalf("a stall costs %d tokens, want 14 (a transient failure's cost; README: \"Stalled streams\")", got)
	}
}
