package integration_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	smithymiddleware "github.com/aws/smithy-go/middleware"

	"github.com/streamstatus/streamstatus/backoff"
	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/middleware"
)

// busyValueError is a retryable error that is not a pointer, as a
// middleware of the user's (or any error type with value receivers) may
// return inside the SDK's retry loop.
type busyValueError struct{ code string }

func (e busyValueError) Error() string      { return "busy: " + e.code }
func (busyValueError) RetryableError() bool { return true }

// failEveryAttempt returns an API option adding a finalize middleware,
// inside the SDK's retry loop, that fails every attempt with err before
// it is sent, and the attempt counter.
func failEveryAttempt(err error) (func(*smithymiddleware.Stack) error, *atomic.Int32) {
	var n atomic.Int32
	return func(s *smithymiddleware.Stack) error {
		return s.Finalize.Add(smithymiddleware.FinalizeMiddlewareFunc("y1.failEveryAttempt",
			func(ctx context.Context, in smithymiddleware.FinalizeInput, next smithymiddleware.FinalizeHandler) (
				smithymiddleware.FinalizeOutput, smithymiddleware.Metadata, error,
			) {
				n.Add(1)
				return smithymiddleware.FinalizeOutput{}, smithymiddleware.Metadata{}, err
			}), smithymiddleware.After)
	}, &n
}

// TestValueErrorRefusedRetryKeepsToken: the budget's retryer alone
// (Converse without the middlewares) under cfg.RetryMaxAttempts = 5 holds
// MaxAttempts = 2 by refusing the second retry in RetryDelay. With an
// attempt error that is not a pointer, RetryDelay cannot tell the call's
// token from an equal error's of another call, so (as documented) the
// refused retry's token is not given back: the bucket keeps the cost of
// the retry made and of the refused one.
func TestValueErrorRefusedRetryKeepsToken(t *testing.T) {
	srv := newServer(t)
	bucket := backoff.NewTokenBucket(100)
	b := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 2; b.Bucket = bucket })
	cfg := testConfig(srv, 0)
	cfg.Retryer = func() aws.Retryer { return b.NewStandard() }
	cfg.RetryMaxAttempts = 5
	fail, n := failEveryAttempt(busyValueError{"Busy"})
	err := converse(context.Background(), bedrockruntime.NewFromConfig(cfg, bedrockruntime.WithAPIOptions(fail)))
	var ex *backoff.ExhaustedError
	if !errors.As(err, &ex) || ex.Reason != "attempts" || n.Load() != 2 {
		t.Fatalf("%d attempts, err %v; want the budget's 2 and *backoff.ExhaustedError (attempts)", n.Load(), err)
	}
	if got, want := bucket.Available(), uint(100-2*backoff.DefaultRetryCost); got != want {
		t.Errorf("bucket holds %d, want %d (the retry made keeps its cost; the refused one after an error value keeps its token)", got, want)
	}
}

// TestValueErrorDelayReplacedNotRefused: config-wide, a wrapper that
// replaces the budget's delays (retry.AddWithMaxBackoffDelay) is refused
// at its first retry only when the attempt error is a pointer (it finds
// its token). After an attempt error that is not a pointer, the token is
// not tracked and its retry counts as delayed by the budget (documented):
// never refused as delay-replaced, so the call makes the budget's
// attempts.
func TestValueErrorDelayReplacedNotRefused(t *testing.T) {
	srv := newServer(t)
	b := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 3; b.Bucket = backoff.NewTokenBucket(100) })
	cfg := testConfig(srv, 0)
	cfg.Retryer = func() aws.Retryer { return retry.AddWithMaxBackoffDelay(b.NewStandard(), 1) }
	middleware.AppendMiddlewares(&cfg.APIOptions, middleware.WithBudget(b))
	fail, n := failEveryAttempt(busyValueError{"Busy"})
	err := converse(context.Background(), bedrockruntime.NewFromConfig(cfg, bedrockruntime.WithAPIOptions(fail)))
	var ex *backoff.ExhaustedError
	if n.Load() != 3 || !errors.As(err, &ex) || ex.Reason != "attempts" || strings.Contains(err.Error(), "use budget.NewStandard() unwrapped") {
		t.Errorf("%d attempts, err %v; want the budget's 3, then *backoff.ExhaustedError (attempts), no delay-replaced refusal", n.Load(), err)
	}
}

// TestDefect_WithBedrockDropsWrapperBudgetAccepts: a wrapper that asks the
// budget's RetryDelay with the error wrapped "still counts as the budget's
// delay" (config-wide, its retries are made as the budget says), and
// retry.AddWithErrorCodes around the budget's retryer is "fine". Yet
// WithBedrock(WithBudget(b)) at construction takes the same retryer for
// another (backoff.Of asks RetryDelay with an unwrapped probe) and silently
// replaces it with budget.NewStandard(): the user's retryable error code
// is dropped, and the call that config-wide is retried 3 times is not
// retried at all.
func TestDefect_WithBedrockDropsWrapperBudgetAccepts(t *testing.T) {
	for _, construction := range []bool{false, true} {
		srv := newServer(t)
		srv.SetDefault(fake.Response{Status: 400, ErrorType: "BusyException", ErrorMessage: "busy"})
		b := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 3 })
		cfg := testConfig(srv, 0)
		cfg.Retryer = func() aws.Retryer { return retry.AddWithErrorCodes(wrapsDelayErr{b.NewStandard()}, "BusyException") }
		var c *bedrockruntime.Client
		if construction {
			c = bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithBudget(b)))
		} else {
			middleware.AppendMiddlewares(&cfg.APIOptions, middleware.WithBudget(b))
			c = bedrockruntime.NewFromConfig(cfg)
		}
		err := converse(context.Background(), c)
		if srv.CallCount() != 3 {
			t.Errorf("WithBedrock at construction %v: %d attempts, err %v; want the budget's 3 (the client's retryer kept: BusyException is retryable)",
				construction, srv.CallCount(), err)
		}
	}
}

// TestDefect_RetryStreamBudgetStopIsTwoLines: README: "When the budget
// stops a call, the error is one line, a *backoff.ExhaustedError";
// RetryStream: "When the budget stops retries, the error is an
// *ExhaustedError". Inside RetryStream, a client whose retryer is the
// budget's (no streamstatus middlewares: RetryStream gives the call its
// state) is stopped by the budget's MaxAttempts in the SDK's retry loop,
// which joins the refusal to the attempt's error; RetryStream returns that
// as it is: not an *ExhaustedError, and two lines.
func TestDefect_RetryStreamBudgetStopIsTwoLines(t *testing.T) {
	srv := newServer(t)
	srv.SetDefault(fake.Response{Status: 503, ErrorType: "ServiceUnavailableException", ErrorMessage: "busy"})
	b := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 2 })
	cfg := testConfig(srv, 0)
	cfg.Retryer = func() aws.Retryer { return b.NewStandard() }
	cfg.RetryMaxAttempts = 5 // the budget, not the SDK's count, stops the call
	err := backoff.RetryStream(context.Background(), b, openInvoke(bedrockruntime.NewFromConfig(cfg)),
		func(types.ResponseStream) error { return nil })
	var ex *backoff.ExhaustedError
	if srv.CallCount() != 2 || !errors.As(err, &ex) {
		t.Fatalf("%d attempts, err %v; want the budget's 2 and an *ExhaustedError", srv.CallCount(), err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("err (%T inside) is not one line:\n%s", errors.Unwrap(err), err)
	}
}

// TestDefect_RetryerAloneQuotaStopNotExhausted: README: "When the budget
// stops a call, the error is one line, a *backoff.ExhaustedError ... Only
// the budget's retryer alone, on an operation without the middlewares,
// with nothing lifting the SDK's own count, ends with the SDK's
// *retry.MaxAttemptsError instead". The budget's retryer alone stopped by
// its retry quota (an empty bucket) ends with the SDK's join of the
// attempt's error and "failed to get rate limit token": two lines, no
// *ExhaustedError (the attempts case on the same path is one).
//
// Resolved by documenting it (fix f): the SDK's retry loop joins whatever
// GetRetryToken returns to the attempt's error (aws/retry/middleware.go),
// and without call state nothing outside that loop can take the join
// apart. README and ExhaustedError's doc now name this case as the second
// exception; the test asserts what they say: the SDK's errors.Join of the
// attempt's error (the modeled exception) and the quota's.
func TestDefect_RetryerAloneQuotaStopNotExhausted(t *testing.T) {
	srv := newServer(t)
	srv.SetDefault(fake.Response{Status: 503, ErrorType: "ServiceUnavailableException", ErrorMessage: "busy"})
	b := immediateBudget(func(b *backoff.Budget) { b.Bucket = backoff.NewTokenBucket(backoff.DefaultRetryCost - 1) })
	cfg := testConfig(srv, 0)
	cfg.Retryer = func() aws.Retryer { return b.NewStandard() }
	err := converse(context.Background(), bedrockruntime.NewFromConfig(cfg))
	var qe *backoff.QuotaExceededError
	if srv.CallCount() != 1 || !errors.As(err, &qe) {
		t.Fatalf("%d attempts, err %v; want 1 attempt stopped by the retry quota", srv.CallCount(), err)
	}
	var ex *backoff.ExhaustedError
	if errors.As(err, &ex) {
		t.Errorf("err %v; README: the retryer alone stopped by its quota ends with the SDK's join, not an *ExhaustedError", err)
	}
	var joined interface{ Unwrap() []error }
	var unavailable *types.ServiceUnavailableException
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 2 ||
		!errors.As(joined.Unwrap()[0], &unavailable) || !errors.As(joined.Unwrap()[1], &qe) {
		t.Errorf("err %v; want the SDK's errors.Join of the attempt's error (*types.ServiceUnavailableException) and the quota's (*backoff.QuotaExceededError)", err)
	}
}

// TestDefect_RetryStreamRerunRefusedKeepsToken: RetryStream: "A retry
// that would begin past MaxElapsed after all ... is not made either. A
// retry not made gives its tokens back." When the rerun reaches the
// budget's retryer past the approved deadline (open took its time before
// calling the client), the retryer refuses the attempt as waited too long,
// but gives back only an SDK retry token: RetryStream's own token for the
// rerun is lost although no attempt was sent, and the error blames a
// retryer wrapper (retry.AddWithMaxBackoffDelay) the client does not have.
func TestDefect_RetryStreamRerunRefusedKeepsToken(t *testing.T) {
	content, _ := invokeStream.content(2, "partial")
	broken := fake.Response{Steps: steps(content, []fake.Step{fake.Exception("serviceUnavailableException", "busy")})}
	clean, _ := invokeStream.healthy(2, "ok")
	srv := newServer(t)
	srv.Enqueue(broken, fake.Response{Steps: clean})
	bucket := backoff.NewTokenBucket(100)
	if _, err := bucket.GetToken(context.Background(), 50); err != nil {
		t.Fatal(err)
	}
	b := immediateBudget(func(b *backoff.Budget) { b.Bucket = bucket; b.MaxElapsed = 300 * time.Millisecond })
	open := openInvoke(budgetClient(srv, b, "standard"))
	opens := 0
	err := backoff.RetryStream(context.Background(), b, func(ctx context.Context) (backoff.Stream[types.ResponseStream], error) {
		if opens++; opens == 2 {
			time.Sleep(400 * time.Millisecond) // the caller's own work before the call
		}
		return open(ctx)
	}, func(types.ResponseStream) error { return nil },
		func(o *backoff.StreamOptions) { o.Reset = func(int, error) error { return nil } })
	var ex *backoff.ExhaustedError
	if srv.CallCount() != 1 || !errors.As(err, &ex) || ex.Reason != "elapsed time" {
		t.Fatalf("%d server calls, err %v; want 1 and the rerun refused for elapsed time", srv.CallCount(), err)
	}
	if strings.Contains(err.Error(), "AddWithMaxBackoffDelay") {
		t.Errorf("err blames a retryer wrapper the client does not have (its retryer is budget.NewStandard()): %v", err)
	}
	if got, want := bucket.Available(), uint(50+backoff.DefaultSuccessRefund); got != want {
		t.Errorf("bucket holds %d tokens; want %d (the first attempt's refund; the retry not made gives its %d back)",
			got, want, backoff.DefaultRetryCost)
	}
}

// TestDefect_PerCallWithBedrockDropsRetryMaxAttempts: cfg.RetryMaxAttempts
// = 2 under a budget of 4, and a config-wide retryer wrapper that replaces
// the budget's delays, which WithBedrock(WithBudget(b)) replaces with
// budget.NewStandard(). At construction the SDK wraps the new retryer in
// the client's RetryMaxAttempts again: 2 attempts. Per call, it does not
// (the SDK re-wraps only a per-call RetryMaxAttempts that differs from the
// client's), so the user's limit of 2 silently becomes the budget's 4.
func TestDefect_PerCallWithBedrockDropsRetryMaxAttempts(t *testing.T) {
	for _, perCall := range []bool{false, true} {
		srv := newServer(t)
		srv.SetDefault(fake.Response{Status: 503, ErrorType: "ServiceUnavailableException", ErrorMessage: "busy"})
		b := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 4 })
		cfg := testConfig(srv, 0)
		cfg.Retryer = func() aws.Retryer { return retry.AddWithMaxBackoffDelay(b.NewStandard(), 1) }
		cfg.RetryMaxAttempts = 2
		var err error
		if perCall {
			_, err = bedrockruntime.NewFromConfig(cfg).Converse(context.Background(), y1ConverseInput(), middleware.WithBedrock(middleware.WithBudget(b)))
		} else {
			err = converse(context.Background(), bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithBudget(b))))
		}
		if srv.CallCount() != 2 {
			t.Errorf("per call %v: %d attempts, err %v; want 2 (cfg.RetryMaxAttempts, below the budget's 4)", perCall, srv.CallCount(), err)
		}
	}
}

func y1ConverseInput() *bedrockruntime.ConverseInput {
	return &bedrockruntime.ConverseInput{
		ModelId: aws.String("anthropic.claude-test"),
		Messages: []types.Message{{Role: types.ConversationRoleUser,
			Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: "hi"}}}},
	}
}

// TestDefect_RetryStreamSharedBucketRefundsTwice: "Share a bucket between
// budgets by setting the same bucket"; RetryStream counts the bucket as
// one call: "one refund for a first attempt that succeeds". A client under
// budget b2 and RetryStream under budget b, sharing one bucket: a healthy
// stream refunds the bucket twice (b2's retryer for the first attempt,
// then RetryStream, which sees no retryer of b).
func TestDefect_RetryStreamSharedBucketRefundsTwice(t *testing.T) {
	clean, _ := invokeStream.healthy(2, "ok")
	srv := newServer(t)
	srv.Enqueue(fake.Response{Steps: clean})
	bucket := backoff.NewTokenBucket(100)
	if _, err := bucket.GetToken(context.Background(), 50); err != nil {
		t.Fatal(err)
	}
	clientBudget := immediateBudget(func(b *backoff.Budget) { b.Bucket = bucket })
	streamBudget := immediateBudget(func(b *backoff.Budget) { b.Bucket = bucket; b.MaxAttempts = 5 })
	err := backoff.RetryStream(context.Background(), streamBudget, openInvoke(budgetClient(srv, clientBudget, "standard")),
		func(types.ResponseStream) error { return nil })
	if err != nil || srv.CallCount() != 1 {
		t.Fatalf("err %v, %d server calls; want success at once", err, srv.CallCount())
	}
	if got, want := bucket.Available(), uint(50+backoff.DefaultSuccessRefund); got != want {
		t.Errorf("shared bucket holds %d tokens; want %d (one refund for the one successful call)", got, want)
	}
}
