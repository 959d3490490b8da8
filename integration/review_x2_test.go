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

// TestDefect_X2BudgetRetryerAloneLiftedByRetryMaxAttempts: Budget.NewStandard
// says "Use it as aws.Config.Retryer", MaxAttempts "bounds the attempts of
// one call", and the retryer's own comment says a cfg.RetryMaxAttempts
// wrap cannot lift it. Set as cfg.Retryer (the README's config-wide recipe,
// here with AppendMiddlewares as "every client made from cfg" shows it), a
// non-streaming call gets no call state, and AWS_MAX_ATTEMPTS=5 silently
// lifts the budget's 2 to 5 attempts.
func TestDefect_X2BudgetRetryerAloneLiftedByRetryMaxAttempts(t *testing.T) {
	srv := newServer(t)
	srv.SetDefault(fake.Response{Status: 503, ErrorType: "ServiceUnavailableException", ErrorMessage: "busy"})
	b := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 2 })
	cfg := testConfig(srv, 0)
	cfg.Retryer = func() aws.Retryer { return b.NewStandard() }
	cfg.RetryMaxAttempts = 5 // AWS_MAX_ATTEMPTS=5
	middleware.AppendMiddlewares(&cfg.APIOptions)
	_, err := bedrockruntime.NewFromConfig(cfg).Converse(context.Background(), &bedrockruntime.ConverseInput{
		ModelId: aws.String("anthropic.claude-test"),
		Messages: []types.Message{{Role: types.ConversationRoleUser,
			Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: "hi"}}}},
	})
	if srv.CallCount() > 2 {
		t.Fatalf("Converse, cfg.Retryer = budget.NewStandard() (MaxAttempts 2), RetryMaxAttempts 5: %d attempts (err %v); want at most the budget's 2, or a loud error", srv.CallCount(), err)
	}
}

// TestDefect_X2BudgetAttemptsErrorDependsOnRetryMaxAttempts: README: "When
// the budget stops a call, the error is one line, a *backoff.ExhaustedError
// that unwraps to the last attempt's error" (Reason "attempts" is one of its
// documented reasons). The same budget running out of attempts on the same
// stream is an *ExhaustedError only when cfg.RetryMaxAttempts is set above
// MaxAttempts; without it the caller gets the SDK's *retry.MaxAttemptsError
// and errors.As(err, &ex) fails.
func TestDefect_X2BudgetAttemptsErrorDependsOnRetryMaxAttempts(t *testing.T) {
	for _, retryMax := range []int{5, 0} {
		srv := newServer(t)
		srv.SetDefault(fake.Response{Steps: []fake.Step{fake.Exception("throttlingException", "slow down")}})
		b := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 2 })
		cfg := testConfig(srv, 0)
		cfg.RetryMaxAttempts = retryMax
		c := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithBudget(b)))
		res := invokeStream.run(context.Background(), c)
		var ex *backoff.ExhaustedError
		if srv.CallCount() != 2 || !errors.As(res.callErr, &ex) || ex.Reason != "attempts" {
			t.Errorf("RetryMaxAttempts=%d: %d attempts, err %T %v; want 2 attempts ending in *backoff.ExhaustedError (attempts)",
				retryMax, srv.CallCount(), res.callErr, res.callErr)
		}
	}
}

// TestDefect_X2RetryStreamRefundsAfterSDKRetry: the SDK's quota semantics
// (core v1.48, followed by the budget: "a first attempt that succeeds adds
// 1"; a successful retry refunds only its own cost) give a call whose first
// attempt was throttled and whose SDK retry succeeded a net change of 0.
// RetryStream promises to share the budget with the SDK and refund "once"
// for a first attempt that succeeds; when the SDK retried inside open, it
// still adds SuccessRefund, so the shared bucket gains a token nobody gave
// back on every such call (the same call without RetryStream: net 0).
func TestDefect_X2RetryStreamRefundsAfterSDKRetry(t *testing.T) {
	for _, viaRetryStream := range []bool{false, true} {
		srv := newServer(t)
		clean, _ := invokeStream.healthy(2, "ok")
		srv.Enqueue(fake.Response{Steps: []fake.Step{fake.Exception("throttlingException", "slow down")}}, fake.Response{Steps: clean})
		bucket := backoff.NewTokenBucket(100)
		if _, err := bucket.GetToken(context.Background(), 50); err != nil {
			t.Fatal(err)
		}
		b := immediateBudget(func(b *backoff.Budget) { b.Bucket = bucket })
		client := budgetClient(srv, b, "standard")
		var err error
		if viaRetryStream {
			err = backoff.RetryStream(context.Background(), b, openInvoke(client), func(types.ResponseStream) error { return nil })
		} else {
			res := invokeStream.run(context.Background(), client)
			err = errors.Join(res.callErr, res.streamErr)
		}
		if err != nil || srv.CallCount() != 2 {
			t.Fatalf("RetryStream=%v: err %v, %d server calls; want a throttle retried by the SDK, then success", viaRetryStream, err, srv.CallCount())
		}
		if got := bucket.Available(); got != 50 {
			t.Errorf("RetryStream=%v: bucket holds %d tokens after a throttled first attempt and a successful SDK retry; want 50 (the SDK's net 0)", viaRetryStream, got)
		}
	}
}

// TestDefect_X2RetryStreamReplayBlamedOnRetryerWrapper: RetryStream approves
// a retry on the budget's elapsed time, then (as documented) calls Reset,
// takes a token and waits its delay. Time spent in Reset is not accounted:
// the next open's first SDK attempt finds the approval's deadline passed
// and fails with "the client waited longer than the budget's delay (a
// retryer wrapper such as retry.AddWithMaxBackoffDelay replaces it: use
// budget.NewStandard() unwrapped)" although the client's retryer is exactly
// budget.NewStandard(): the error names a cause that is not there, after
// the caller already reset its output and the bucket paid for the retry.
func TestDefect_X2RetryStreamReplayBlamedOnRetryerWrapper(t *testing.T) {
	srv := newServer(t)
	content, _ := invokeStream.content(2, "partial")
	clean, _ := invokeStream.healthy(2, "ok")
	srv.Enqueue(fake.Response{Steps: steps(content, []fake.Step{fake.Exception("serviceUnavailableException", "busy")})}, fake.Response{Steps: clean})
	b := backoff.NewBudget(func(b *backoff.Budget) {
		b.MaxElapsed = 600 * time.Millisecond
		b.Transient = backoff.Shape{Initial: 300 * time.Millisecond, Max: 300 * time.Millisecond, Multiplier: 1}
	})
	cfg := testConfig(srv, 0)
	cfg.Retryer = func() aws.Retryer { return b.NewStandard() } // unwrapped
	client := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithBudget(b)))
	err := backoff.RetryStream(context.Background(), b, openInvoke(client), func(types.ResponseStream) error { return nil },
		func(o *backoff.StreamOptions) {
			o.Reset = func(int, error) error { time.Sleep(400 * time.Millisecond); return nil } // e.g. tell the UI
		})
	if err != nil && strings.Contains(err.Error(), "AddWithMaxBackoffDelay") {
		t.Fatalf("client retryer is budget.NewStandard() unwrapped, %d server calls; yet the error blames a retryer wrapper: %v", srv.CallCount(), err)
	}
}

// TestDefect_X2ConfigWideDelayWrapperSilentlyReplacesBudgetBackoff: README:
// "a wrapper that replaces its delays (retry.AddWithMaxBackoffDelay) is not
// the budget's retryer", and "WithBudget on a client whose retryer is not
// built from the budget fails the call before it is sent, saying how to fix
// it". Config-wide (cfg.Retryer + AppendMiddlewares(WithBudget)), with no
// MaxElapsed, such a wrapper passes the check: the calls are sent and
// retried 1ms apart, the budget's 400ms backoff silently gone.
func TestDefect_X2ConfigWideDelayWrapperSilentlyReplacesBudgetBackoff(t *testing.T) {
	srv := newServer(t)
	var mu sync.Mutex
	var at []time.Time
	srv.SetScript(func(fake.Call) fake.Response {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		return fake.Response{Steps: []fake.Step{fake.Exception("serviceUnavailableException", "busy")}}
	})
	shape := backoff.Shape{Initial: 400 * time.Millisecond, Max: 400 * time.Millisecond, Multiplier: 1}
	b := backoff.NewBudget(func(b *backoff.Budget) { b.MaxAttempts = 2; b.Transient = shape })
	cfg := testConfig(srv, 0)
	cfg.Retryer = func() aws.Retryer { return retry.AddWithMaxBackoffDelay(b.NewStandard(), time.Millisecond) }
	middleware.AppendMiddlewares(&cfg.APIOptions, middleware.WithBudget(b))
	res := invokeStream.run(context.Background(), bedrockruntime.NewFromConfig(cfg))
	mu.Lock()
	defer mu.Unlock()
	if len(at) == 2 && at[1].Sub(at[0]) < 300*time.Millisecond {
		t.Fatalf("budget backoff 400ms, retryer AddWithMaxBackoffDelay(budget.NewStandard(), 1ms) config-wide: attempts %v apart, err %v; want the call refused before it is sent (naming budget.NewStandard) or the budget's backoff",
			at[1].Sub(at[0]).Round(time.Millisecond), res.callErr)
	}
}

// TestDefect_X2BudgetLiteralPanicsOnFirstCall: Budget is an exported struct
// with exported fields, and "&backoff.Budget{MaxAttempts: 2}" compiles.
// Given to WithBedrock(WithBudget), its first call panics with a nil
// pointer dereference in the caller's goroutine (Budget.Now is nil,
// budget.go (*call).begin), instead of failing with an error that names the
// fix (backoff.NewBudget), as RetryStream does for a nil budget.
func TestDefect_X2BudgetLiteralPanicsOnFirstCall(t *testing.T) {
	srv := newServer(t)
	clean, _ := invokeStream.healthy(2, "ok")
	srv.SetDefault(fake.Response{Steps: clean})
	b := &backoff.Budget{MaxAttempts: 2}
	c := bedrockruntime.NewFromConfig(testConfig(srv, 0), middleware.WithBedrock(middleware.WithBudget(b)))
	var res result
	panicked := func() (p any) {
		defer func() { p = recover() }()
		res = invokeStream.run(context.Background(), c)
		return nil
	}()
	if panicked != nil || res.callErr == nil || !strings.Contains(res.callErr.Error(), "NewBudget") {
		t.Fatalf("WithBudget(&backoff.Budget{MaxAttempts: 2}): panic %v, err %v; want an error naming backoff.NewBudget", panicked, res.callErr)
	}
}

// TestDefect_X2WithBudgetNilSilentlyIgnored: WithBudget(nil) (a budget
// variable not yet built, say) installs no budget and says nothing: the
// client keeps its own retryer and every limit the caller meant to set is
// off. RetryStream refuses a nil budget ("RetryStream needs a budget; build
// one with backoff.NewBudget"); the middleware option should fail as loudly.
func TestDefect_X2WithBudgetNilSilentlyIgnored(t *testing.T) {
	srv := newServer(t)
	clean, _ := invokeStream.healthy(2, "ok")
	srv.SetDefault(fake.Response{Steps: clean})
	var budget *backoff.Budget // not built yet
	c := bedrockruntime.NewFromConfig(testConfig(srv, 0), middleware.WithBedrock(middleware.WithBudget(budget)))
	res := invokeStream.run(context.Background(), c)
	if res.callErr == nil {
		t.Fatalf("WithBudget(nil): the call went through (%d server calls) with no budget and no error; want an error naming WithBudget", srv.CallCount())
	}
}
