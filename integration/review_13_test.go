package integration_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/streamstatus/streamstatus/backoff"
	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/middleware"
)

// busyHTTPServer answers every call (streaming or not) with an HTTP 503.
func busyHTTPServer(t *testing.T) *fake.Server {
	srv := newServer(t, fake.WithResponseDelay(bareSDKDelay))
	srv.SetDefault(fake.Response{Status: 503, ErrorType: "ServiceUnavailableException", ErrorMessage: "busy"})
	return srv
}

func converse(ctx context.Context, c *bedrockruntime.Client) error {
	_, err := c.Converse(ctx, &bedrockruntime.ConverseInput{
		ModelId: aws.String("anthropic.claude-test"),
		Messages: []types.Message{{Role: types.ConversationRoleUser,
			Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: "hi"}}}},
	})
	return err
}

// TestDefect_NonStreamingOpLiftsBudgetMaxAttempts: README says a
// cfg.RetryMaxAttempts (AWS_MAX_ATTEMPTS) above MaxAttempts "does not lift
// it" and that the limits hold on every install path. On the same budget
// client, the non-streaming Converse gets no CallStart (install steps
// aside), so the SDK's AddWithMaxAttempts(6) wins over the budget's 2.
func TestDefect_NonStreamingOpLiftsBudgetMaxAttempts(t *testing.T) {
	srv := busyHTTPServer(t)
	b := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 2 })
	cfg := testConfig(srv, 0)
	cfg.RetryMaxAttempts = 6
	c := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithBudget(b)))
	err := converse(context.Background(), c)
	if srv.CallCount() > 2 {
		t.Fatalf("Converse on a WithBudget(MaxAttempts=2) client: the server saw %d attempts (err %v); want at most the budget's 2", srv.CallCount(), err)
	}
}

// TestDefect_NonStreamingOpIgnoresMaxElapsed: on a WithBedrock(WithBudget(b))
// client, ConverseStream stops on the budget's elapsed time after 3
// attempts (TestBudgetHoldsOnEveryInstallPath); Converse on the same client
// runs all 10 attempts: MaxElapsed is silently off.
func TestDefect_NonStreamingOpIgnoresMaxElapsed(t *testing.T) {
	srv := busyHTTPServer(t)
	b := elapsedBudget() // 10 attempts, 25s, clock moves 10s per reading
	c := bedrockruntime.NewFromConfig(testConfig(srv, 0), middleware.WithBedrock(middleware.WithBudget(b)))
	err := converse(context.Background(), c)
	var ex *backoff.ExhaustedError
	if !errors.As(err, &ex) || srv.CallCount() != 3 {
		t.Fatalf("Converse on a budget client: %d attempts, err %v; want the elapsed-time stop after 3 as ConverseStream gets", srv.CallCount(), err)
	}
}

// TestDefect_AppendMiddlewaresBudgetWithoutRetryerSilentOnNonStreaming:
// README: "WithBudget on a client whose retryer is not built from the
// budget fails the call before it is sent, saying how to fix it." Converse
// on such a client is sent and retried by the default retryer, silently.
func TestDefect_AppendMiddlewaresBudgetWithoutRetryerSilentOnNonStreaming(t *testing.T) {
	srv := busyHTTPServer(t)
	b := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 1 })
	cfg := testConfig(srv, 3) // retryer not from the budget
	middleware.AppendMiddlewares(&cfg.APIOptions, middleware.WithBudget(b))
	err := converse(context.Background(), bedrockruntime.NewFromConfig(cfg))
	if srv.CallCount() != 0 || err == nil || !strings.Contains(err.Error(), "NewStandard") {
		t.Fatalf("Converse with AppendMiddlewares(WithBudget) and a foreign retryer: %d attempts sent, err %v; want none sent and an error naming budget.NewStandard", srv.CallCount(), err)
	}
}

// TestDefect_MaxBackoffDelayWrapperStretchesPastMaxElapsed:
// retry.AddWithMaxBackoffDelay around budget.NewStandard() is recognised as
// the budget's retryer (backoff.Of sees through it, WithBudget keeps it, the
// finalize check passes), but it replaces RetryDelay with the SDK's jitter
// backoff (up to 2s after attempt 1). The budget approves the retry from
// its own shape (0 delay) and the SDK then sleeps far past MaxElapsed.
func TestDefect_MaxBackoffDelayWrapperStretchesPastMaxElapsed(t *testing.T) {
	srv := busyServer(t)
	b := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 3; b.MaxElapsed = 100 * time.Millisecond })
	cfg := testConfig(srv, 0)
	cfg.Retryer = func() aws.Retryer { return retry.AddWithMaxBackoffDelay(b.NewStandard(), 20*time.Second) }
	c := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithBudget(b)))
	if backoff.Of(c.Options().Retryer) != b {
		t.Fatalf("backoff.Of(%T) does not find the budget", c.Options().Retryer)
	}
	const calls = 8
	var wg sync.WaitGroup
	took := make([]time.Duration, calls)
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
			defer cancel()
			start := time.Now()
			invokeStream.run(ctx, c)
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	longest := slicesMax(took)
	if longest > 600*time.Millisecond {
		t.Fatalf("MaxElapsed 100ms with zero-delay shapes, retryer retry.AddWithMaxBackoffDelay(budget.NewStandard(), 20s): the longest of %d calls took %v (all: %v); a retry began past MaxElapsed", calls, longest.Round(time.Millisecond), took)
	}
}

func slicesMax(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// TestDefect_AdaptiveRateLimiterWaitPastMaxElapsed: budget.NewAdaptive,
// the README's "or budget.NewAdaptive()". After a throttle the SDK's
// adaptive rate limiter makes the next GetAttemptToken sleep (about 2s at
// its minimum fill rate). The budget approved the retry in GetRetryToken
// with a 0 delay, so the second attempt begins long after MaxElapsed.
func TestDefect_AdaptiveRateLimiterWaitPastMaxElapsed(t *testing.T) {
	srv := newServer(t)
	var mu sync.Mutex
	var at []time.Time
	srv.SetScript(func(fake.Call) fake.Response {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		return fake.Response{Steps: []fake.Step{fake.Exception("throttlingException", "slow down")}}
	})
	b := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 3; b.MaxElapsed = 300 * time.Millisecond })
	cfg := testConfig(srv, 0)
	cfg.Retryer = func() aws.Retryer { return b.NewAdaptive() }
	c := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithBudget(b)))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	start := time.Now()
	err := invokeStream.run(ctx, c).callErr
	mu.Lock()
	defer mu.Unlock()
	for i, a := range at {
		if d := a.Sub(start); d > 300*time.Millisecond+200*time.Millisecond {
			t.Fatalf("adaptive budget retryer, MaxElapsed 300ms: attempt %d began %v after the call started (err %v)", i+1, d.Round(time.Millisecond), err)
		}
	}
}
