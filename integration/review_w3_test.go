package integration_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/smithy-go"

	"github.com/streamstatus/streamstatus/backoff"
	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/middleware"
)

// TestDefect_W3ClientLimitAboveDefaultLifted: a client retryer limited to 4
// attempts (retry.NewStandard, MaxAttempts 4: not the SDK's default 3, so
// it can be told from it) under WithBedrock(WithBudget(MaxAttempts 6))
// makes 6 attempts: keepClientRules keeps a client limit only below 3,
// though README says the replaced retryer's rules are kept "where they say
// more than the budget".
func TestDefect_W3ClientLimitAboveDefaultLifted(t *testing.T) {
	srv := newServer(t)
	srv.SetDefault(fake.Response{Status: 503, ErrorType: "ServiceUnavailableException", ErrorMessage: "busy"})
	cfg := testConfig(srv, 4)
	bare := bedrockruntime.NewFromConfig(cfg)
	_, _ = bare.ConverseStream(context.Background(), converseInput("m"))
	if n := srv.CallCount(); n != 4 {
		t.Fatalf("bare client: %d attempts, want 4", n)
	}
	b := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 6 })
	c := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithBudget(b)))
	_, err := c.ConverseStream(context.Background(), converseInput("m"))
	if n := srv.CallCount() - 4; n != 4 {
		t.Errorf("client retryer limited to 4 attempts, with WithBedrock(WithBudget(MaxAttempts=6)): the server saw %d attempts (err %v); the client's limit was lifted", n, err)
	}
}

// TestDefect_W3ClientRetryableVetoDropped: a client retryer whose
// Retryables say "do not retry ThrottlingException" (a rule ahead of the
// SDK's) retries it under WithBedrock(WithBudget(b)): the union keeps only
// what the replaced retryer adds, never what it refuses.
func TestDefect_W3ClientRetryableVetoDropped(t *testing.T) {
	srv := newServer(t)
	srv.SetDefault(fake.Response{Status: 429, ErrorType: "ThrottlingException", ErrorMessage: "slow down"})
	cfg := testConfig(srv, 0)
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 3
			o.Backoff = zeroBackoff
			o.RateLimiter = ratelimit.None
			o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
				var ae smithy.APIError
				if errors.As(err, &ae) && ae.ErrorCode() == "ThrottlingException" {
					return aws.FalseTernary
				}
				return aws.UnknownTernary
			})}, o.Retryables...)
		})
	}
	bare := bedrockruntime.NewFromConfig(cfg)
	_, _ = bare.ConverseStream(context.Background(), converseInput("m"))
	if n := srv.CallCount(); n != 1 {
		t.Fatalf("bare client: %d attempts, want 1", n)
	}
	b := immediateBudget()
	c := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithBudget(b)))
	_, err := c.ConverseStream(context.Background(), converseInput("m"))
	if n := srv.CallCount() - 1; n != 1 {
		t.Errorf("client retryer does not retry ThrottlingException; with WithBedrock(WithBudget(b)) the server saw %d attempts (err %v)", n, err)
	}
}

// TestDefect_W3PerCallBudgetCappedByConstructionBudget: a client built
// with WithBedrock(WithBudget(b1)), b1.MaxAttempts 2, given per call
// WithBedrock(WithBudget(b2)), b2.MaxAttempts 5, makes 2 attempts: the
// per-call install takes the budget retryer it replaces (b1's) for "the
// client's own" limit and keeps it, so b2's MaxAttempts never applies.
func TestDefect_W3PerCallBudgetCappedByConstructionBudget(t *testing.T) {
	srv := newServer(t)
	srv.SetDefault(fake.Response{Status: 503, ErrorType: "ServiceUnavailableException", ErrorMessage: "busy"})
	cfg := testConfig(srv, 0)
	b1 := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 2 })
	b2 := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 5 })
	c := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithBudget(b1)))
	perCall := middleware.WithBedrock(middleware.WithBudget(b2))
	_, err := c.ConverseStream(context.Background(), converseInput("m"), perCall)
	if n := srv.CallCount(); n != 5 {
		t.Errorf("per-call WithBudget(MaxAttempts=5) on a client built with WithBudget(MaxAttempts=2): the server saw %d attempts, want 5 (err %v)", n, err)
	}
}
