package backoff_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"

	"github.com/streamstatus/streamstatus/backoff"
)

// busyValue is a retryable attempt error that is not a pointer, as a
// user's middleware inside the SDK's retry loop may return (review y1
// took such errors as legitimate).
type busyValue struct{ code string }

func (e busyValue) Error() string      { return "busy: " + e.code }
func (busyValue) RetryableError() bool { return true }

// TestDefect_EqualValueErrorsRefuseConcurrentRetry: budget.NewStandard()
// unwrapped, with the middlewares' call state, serves two calls of one
// client at once that fail with equal errors that are not pointers. The
// doc says such calls "may take each other's token, of the same cost,
// each once", as if harmless: but RetryDelay marks the *other* call's
// token as delayed by the budget, so a call whose delay is short (the
// Immediate shape) and whose next attempt comes before the other call's
// RetryDelay is refused as "the client's retryer replaced the retry
// budget's delay": a false refusal of the configuration the README
// recommends. The steps are the SDK's retry loop of each call
// (GetAttemptToken, GetRetryToken, RetryDelay, sleep 0, GetAttemptToken),
// call B's goroutine preempted between its GetRetryToken and RetryDelay.
func TestDefect_EqualValueErrorsRefuseConcurrentRetry(t *testing.T) {
	b := backoff.NewBudget(func(b *backoff.Budget) {
		b.Bucket = backoff.NewTokenBucket(1000)
		b.Transient, b.Throttle = backoff.Immediate, backoff.Immediate
	})
	r := b.NewStandard()
	callA, callB := callCtx(t), callCtx(t)
	for _, ctx := range []context.Context{callA, callB} {
		if _, err := r.GetAttemptToken(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.GetRetryToken(callA, busyValue{"Busy"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GetRetryToken(callB, busyValue{"Busy"}); err != nil { // B fails at the same time
		t.Fatal(err)
	}
	if _, err := r.RetryDelay(1, busyValue{"Busy"}); err != nil { // A's delay: the budget's, 0
		t.Fatal(err)
	}
	if _, err := r.GetAttemptToken(callA); err != nil { // A's retry, after the budget's delay
		t.Errorf("call A's retry, delayed by the budget itself: %v; want it made", err)
	}
}

// TestDefect_RetryStreamCancelledRerunKeepsToken: stream.go and the
// README: "A retry not made gives its tokens back" (and a cancelled wait
// does). When the caller's context ends just after RetryStream's wait,
// during open's own work before it calls the client (b.NewStandard()
// with the middlewares' call state, run through the SDK's retry loop),
// the SDK makes no attempt (it checks the context before its attempt
// token) and no budget's retryer took the rerun, yet the 14 tokens
// RetryStream took for that retry stay taken.
func TestDefect_RetryStreamCancelledRerunKeepsToken(t *testing.T) {
	bucket := backoff.NewTokenBucket(100)
	b := backoff.NewBudget(func(b *backoff.Budget) {
		b.Bucket = bucket
		b.Transient, b.Throttle = backoff.Immediate, backoff.Immediate
	})
	r := b.NewStandard()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opens := 0
	err := backoff.RetryStream(ctx, b, func(ctx context.Context) (backoff.Stream[string], error) {
		opens++
		if opens == 1 { // the stream fails before any event
			ch := make(chan string)
			close(ch)
			return &fakeStream{ch: ch, err: exception("internalServerException", `{}`, 0)}, nil
		}
		cancel() // the caller gives up while open prepares the rerun
		return nil, sdkCall(ctx, r, true)
	}, func(string) error { return nil }, withTimer(&immediateTimer{}))
	if !errors.Is(err, context.Canceled) || opens != 2 {
		t.Fatalf("%d opens, err %v; want 2 and the context's cancellation", opens, err)
	}
	if got := bucket.Available(); got != 100 {
		t.Errorf("bucket holds %d after a rerun the SDK never attempted; want 100 (the retry's %d tokens given back)", got, backoff.DefaultRetryCost)
	}
}

// TestDefect_NilBucketPointerPassesValidate: Validate "returns why the
// budget cannot be used": a Bucket set to a nil *TokenBucket (a shared
// bucket variable not initialized yet) is not caught by NewBudget's
// defaulting (the interface is not nil) nor by Validate, and the first
// call that succeeds panics on its success refund instead of failing
// with an error naming the field.
func TestDefect_NilBucketPointerPassesValidate(t *testing.T) {
	var shared *backoff.TokenBucket // assigned later, or never
	b := backoff.NewBudget(func(b *backoff.Budget) { b.Bucket = shared })
	if err := b.Validate(); err == nil {
		t.Errorf("Validate of a budget whose Bucket is a nil *TokenBucket: nil; want an error naming Bucket")
	}
	open, _ := script(attempt{})
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("RetryStream with that budget, a call that succeeds: panic %v; want an error naming Bucket", p)
			}
		}()
		_ = backoff.RetryStream(context.Background(), b, open, func(string) error { return nil })
	}()
}

// TestDefect_EqualValueErrorsLoseFleetTokens (review z1) asked that a
// refused retry whose attempt error is a value equal to another call's be
// refunded. No retryer can tell two equal values apart without call state,
// and matching them by value gave the refund to the other call's take
// (released twice, the fleet bucket 14 low); the retryer now leaves value
// errors' tokens untracked, as documented (no refund on that refusal). The
// case is TestEqualValueErrorsReleaseNoOthersTake: each take released at
// most once, and never by another call.

// hourDelay is a retry.BackoffDelayer that waits an hour.
type hourDelay struct{}

func (hourDelay) BackoffDelay(int, error) (time.Duration, error) { return time.Hour, nil }

// TestDefect_OptFnBackoffSilentlyReplacesShapes: a wrapper that replaces
// the budget's delays (retry.AddWithMaxBackoffDelay) is refused at its
// first retry, naming the fix ("Cap delays with the budget's shapes"), and
// RetryDelay's doc says its delay "is the inner retryer's, that is the
// budget's". The same replacement through NewStandard's own optFns
// (o.Backoff, documented only as "optFns run after the budget's") passes
// silently: with the middlewares' call state, the budget's retryer answers
// an hour for a budget whose shapes say 0, and the retry after it is made.
func TestDefect_OptFnBackoffSilentlyReplacesShapes(t *testing.T) {
	b := backoff.NewBudget(func(b *backoff.Budget) { b.Transient, b.Throttle = backoff.Immediate, backoff.Immediate })
	r := b.NewStandard(func(o *retry.StandardOptions) { o.Backoff = hourDelay{} })
	ctx := callCtx(t)
	if _, err := r.GetAttemptToken(ctx); err != nil {
		// The earliest refusal: the retryer's first call, naming the
		// field and the fix (see Budget.NewStandard).
		if msg := err.Error(); !strings.Contains(msg, "StandardOptions.Backoff") || !strings.Contains(msg, "Budget.Transient") {
			t.Fatalf("first attempt refused with %q; want the refusal to name StandardOptions.Backoff and the fix (Budget.Transient)", msg)
		}
		return
	}
	opErr := exception("internalServerException", `{}`, 0)
	if _, err := r.GetRetryToken(ctx, opErr); err != nil {
		t.Fatal(err)
	}
	d, derr := r.RetryDelay(1, opErr)
	_, aerr := r.GetAttemptToken(ctx)
	if derr == nil && aerr == nil && d > b.Transient.MaxDelay(1) {
		t.Errorf("budget.NewStandard(o.Backoff = an hour): the budget's retryer waits %v (its shape allows %v) and makes the retry; want the budget's delay, or a refusal naming the fix", d, b.Transient.MaxDelay(1))
	}
}
