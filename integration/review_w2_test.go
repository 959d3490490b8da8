package integration_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"

	"github.com/streamstatus/streamstatus/backoff"
	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/middleware"
)

// TestDefect_PerCallInlineWithBudgetRebuildsAdaptiveLimiter (review w2)
// showed that WithBedrock(WithBudget(b)) written inline on every call
// starts a fresh adaptive rate limiter per call, against the README's
// "per-call use keeps one". An option value cannot share state with the
// next one built; the README now shows the per-call option built once and
// says that one built anew for every call starts a fresh limiter each time
// (TestDefect_PerCallWithBudgetRebuildsTheAdaptiveLimiter, review w1,
// checks the option built once).

// TestDefect_WithBudgetLiftsTheClientRetryersMaxAttempts: a client whose
// retryer limits its attempts (retry.NewStandard with MaxAttempts = 2, or
// retry.AddWithMaxAttempts(r, 1) to turn retries off, set as cfg.Retryer)
// gets, under WithBedrock(WithBudget(b)), the budget's retryer with the
// budget's MaxAttempts (5 here): the user's limit is silently lifted. The
// install keeps the client's RetryMaxAttempts and, since this change, the
// mode it reads through the retryer's wrappers, but not the retryer's own
// limit.
func TestDefect_WithBudgetLiftsTheClientRetryersMaxAttempts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		retryer func() aws.Retryer
		want    int
	}{
		{"NewStandard MaxAttempts=2", testRetryer(2, zeroBackoff), 2},
		{"AddWithMaxAttempts(adaptive, 1)", func() aws.Retryer { return retry.AddWithMaxAttempts(retry.NewAdaptiveMode(), 1) }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t)
			srv.SetDefault(fake.Response{Status: 503, ErrorType: "ServiceUnavailableException", ErrorMessage: "busy"})
			b := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 5 })
			cfg := testConfig(srv, 0)
			cfg.Retryer = tc.retryer
			bare := bedrockruntime.NewFromConfig(cfg)
			_, _ = bare.ConverseStream(context.Background(), converseInput("m"))
			if n := srv.CallCount(); n != tc.want {
				t.Fatalf("bare client: %d attempts, want %d", n, tc.want)
			}
			c := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithBudget(b)))
			_, err := c.ConverseStream(context.Background(), converseInput("m"))
			if n := srv.CallCount() - tc.want; n > tc.want {
				t.Errorf("client retryer limited to %d attempts, with WithBedrock(WithBudget(MaxAttempts=5)): the server saw %d attempts (err %v); the client's own limit was silently lifted", tc.want, n, err)
			}
		})
	}
}

// TestDefect_WithBudgetDropsTheClientsRetryableCodes: the change reads the
// mode through retry.AddWithErrorCodes around the client's
// retry.NewAdaptiveMode(), then installs budget.NewAdaptive() without the
// error codes the user made retryable: a "ModelBusyException" the bare
// client retries is no longer retried, silently.
func TestDefect_WithBudgetDropsTheClientsRetryableCodes(t *testing.T) {
	srv := newServer(t)
	srv.SetDefault(fake.Response{Status: 400, ErrorType: "ModelBusyException", ErrorMessage: "busy"})
	b := immediateBudget()
	cfg := testConfig(srv, 0)
	cfg.Retryer = func() aws.Retryer {
		return retry.AddWithErrorCodes(testRetryer(3, zeroBackoff)(), "ModelBusyException")
	}
	bare := bedrockruntime.NewFromConfig(cfg)
	_, _ = bare.ConverseStream(context.Background(), converseInput("m"))
	if n := srv.CallCount(); n != 3 {
		t.Fatalf("bare client with AddWithErrorCodes: %d attempts, want 3", n)
	}
	c := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithBudget(b)))
	_, err := c.ConverseStream(context.Background(), converseInput("m"))
	if n := srv.CallCount() - 3; n < 2 {
		t.Errorf("cfg.Retryer = retry.AddWithErrorCodes(r, \"ModelBusyException\") with WithBedrock(WithBudget(b)): %d attempt(s) (err %v); the user's retryable code was silently dropped (want the budget's 3 attempts, or a failure naming the fix)", n, err)
	}
}
