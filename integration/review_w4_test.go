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

// TestDefect_W4PerCallBudgetDropsClientCodes: a client whose own retryer
// retries "ModelBusyException" (retry.AddWithErrorCodes) is built with
// WithBedrock(WithBudget(b1)), which keeps that rule (keepClientRules).
// Given another budget per call, WithBedrock(WithBudget(b2)), the
// construction's replacement counts as "another budget's" retryer and is
// replaced whole: the user's own retryable code, which the construction
// kept, is silently dropped for that call (1 attempt instead of b2's 3).
// Before 8b8a866 the union kept it.
func TestDefect_W4PerCallBudgetDropsClientCodes(t *testing.T) {
	srv := newServer(t)
	srv.SetDefault(fake.Response{Status: 400, ErrorType: "ModelBusyException", ErrorMessage: "busy"})
	cfg := testConfig(srv, 0)
	cfg.Retryer = func() aws.Retryer {
		return retry.AddWithErrorCodes(testRetryer(3, zeroBackoff)(), "ModelBusyException")
	}
	b1 := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 3 })
	b2 := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 3 })
	c := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithBudget(b1)))
	_, _ = c.ConverseStream(context.Background(), converseInput("m"))
	if n := srv.CallCount(); n != 3 {
		t.Fatalf("client with AddWithErrorCodes and WithBudget(b1): %d attempts, want 3", n)
	}
	perCall := middleware.WithBedrock(middleware.WithBudget(b2))
	_, err := c.ConverseStream(context.Background(), converseInput("m"), perCall)
	if n := srv.CallCount() - 3; n != 3 {
		t.Errorf("same client, per call WithBedrock(WithBudget(b2)): %d attempt(s), want 3 (err %v); the client's own retryable code was dropped", n, err)
	}
}

// TestDefect_W4PerCallBudgetLiftsClientLimit: a client whose own retryer
// is limited to 2 attempts (retry.NewStandard, MaxAttempts 2) keeps that
// limit under WithBedrock(WithBudget(b1)) at construction, but loses it
// when given WithBedrock(WithBudget(b2)) per call: b2 (MaxAttempts 5)
// replaces the construction's retryer whole, and the call makes 5
// attempts. README: "its limit of attempts holds when below the budget's".
func TestDefect_W4PerCallBudgetLiftsClientLimit(t *testing.T) {
	srv := newServer(t)
	srv.SetDefault(fake.Response{Steps: []fake.Step{fake.Exception("serviceUnavailableException", "busy")}})
	cfg := testConfig(srv, 2)
	b1 := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 5 })
	b2 := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 5 })
	c := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithBudget(b1)))
	_, _ = c.ConverseStream(context.Background(), converseInput("m"))
	if n := srv.CallCount(); n != 2 {
		t.Fatalf("client retryer limited to 2, WithBudget(b1 MaxAttempts 5): %d attempts, want 2", n)
	}
	perCall := middleware.WithBedrock(middleware.WithBudget(b2))
	_, err := c.ConverseStream(context.Background(), converseInput("m"), perCall)
	if n := srv.CallCount() - 2; n != 2 {
		t.Errorf("same client, per call WithBedrock(WithBudget(b2 MaxAttempts 5)): %d attempts, want the client's 2 (err %v); the client's own limit was lifted", n, err)
	}
}
