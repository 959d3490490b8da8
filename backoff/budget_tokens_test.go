package backoff_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	smithymiddleware "github.com/aws/smithy-go/middleware"

	"github.com/streamstatus/streamstatus/backoff"
)

// sdkCall runs one call through the SDK's retry loop (retry.Attempt) with
// the retryer r, every attempt failing with a retryable error; with
// callStart, backoff.CallStart gives the call its state.
func sdkCall(ctx context.Context, r aws.Retryer, callStart bool) error {
	stack := smithymiddleware.NewStack("op", func() any { return struct{}{} })
	if callStart {
		if err := stack.Initialize.Add(backoff.CallStart(), smithymiddleware.Before); err != nil {
			return err
		}
	}
	if err := stack.Finalize.Add(retry.NewAttemptMiddleware(r, func(in any) any { return in }), smithymiddleware.After); err != nil {
		return err
	}
	h := smithymiddleware.DecorateHandler(smithymiddleware.HandlerFunc(func(context.Context, any) (any, smithymiddleware.Metadata, error) {
		return nil, smithymiddleware.Metadata{}, exception("internalServerException", `{}`, 0)
	}), stack)
	_, _, err := h.Handle(ctx, struct{}{})
	return err
}

// waitsAnHour replaces the budget's delay with an hour.
type waitsAnHour struct{ aws.RetryerV2 }

func (waitsAnHour) RetryDelay(int, error) (time.Duration, error) { return time.Hour, nil }

// TestCancelledRetrySleepLeavesNoTrackedToken: the SDK's retry loop takes a
// retry token, asks the client's retryer for the delay (here a wrapper's
// own, which never reaches the budget's RetryDelay) and sleeps; a context
// cancelled during that sleep ends the call with no further attempt to
// take the token back. The call's end (CallStart, or RetryStream around a
// call without it) untracks it: nothing stays behind in the retryer.
func TestCancelledRetrySleepLeavesNoTrackedToken(t *testing.T) {
	b := backoff.NewBudget(func(b *backoff.Budget) { b.Bucket = backoff.NewTokenBucket(1 << 20) })
	for _, tc := range []struct {
		name string
		run  func(ctx context.Context, r aws.Retryer) error
	}{
		{"CallStart", func(ctx context.Context, r aws.Retryer) error { return sdkCall(ctx, r, true) }},
		{"RetryStream", func(ctx context.Context, r aws.Retryer) error {
			return backoff.RetryStream(ctx, b, func(ctx context.Context) (backoff.Stream[int], error) {
				return nil, sdkCall(ctx, r, false)
			}, func(int) error { return nil })
		}},
	} {
		inner := b.NewStandard()
		r := waitsAnHour{inner} // sleeps until the context is done
		for range 3 {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			err := tc.run(ctx, r)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%s: err %v; want the retry's sleep cancelled", tc.name, err)
			}
		}
		if n := backoff.Tracked(inner); n != 0 {
			t.Errorf("%s: %d retry tokens still tracked after 3 calls whose retry sleep was cancelled; want 0", tc.name, n)
		}
	}
}

// TestManyPendingRetriesKeepTheirDelays: one client's retryer serves every
// call at once; with more than 256 calls waiting out a retry (a throttle
// storm), the budget still finds the token of each one's retry when its
// RetryDelay comes, so a retry the budget delayed is made, not taken for
// one whose delay the client replaced.
func TestManyPendingRetriesKeepTheirDelays(t *testing.T) {
	b := backoff.NewBudget(func(b *backoff.Budget) {
		b.Bucket = backoff.NewTokenBucket(1 << 20)
		b.Transient, b.Throttle = backoff.Immediate, backoff.Immediate
	})
	r := b.NewStandard()
	opErr := exception("internalServerException", `{}`, 0)
	first := callCtx(t)
	if _, err := r.GetAttemptToken(first); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GetRetryToken(first, opErr); err != nil {
		t.Fatal(err)
	}
	for range 300 {
		ctx := callCtx(t)
		if _, err := r.GetAttemptToken(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := r.GetRetryToken(ctx, exception("internalServerException", `{}`, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.RetryDelay(1, opErr); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GetAttemptToken(first); err != nil {
		t.Errorf("the first call's retry, delayed by the budget, with 300 other retries pending: %v; want it made", err)
	}
}
