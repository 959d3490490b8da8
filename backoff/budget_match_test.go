package backoff_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"

	"github.com/streamstatus/streamstatus/backoff"
)

// codesError is an error value that == cannot compare (it holds a slice).
type codesError struct{ codes []string }

func (e codesError) Error() string { return "busy: " + strings.Join(e.codes, ",") }

// TestRetryAfterUncomparableErrorIsMade: an attempt error that == cannot
// compare (comparing two panics) cannot be matched with its retry token;
// the budget's retryer neither panics nor takes the retry it delayed
// itself for one whose delay the client replaced.
func TestRetryAfterUncomparableErrorIsMade(t *testing.T) {
	b := backoff.NewBudget(func(b *backoff.Budget) { b.Transient, b.Throttle = backoff.Immediate, backoff.Immediate })
	r := b.NewStandard()
	ctx := callCtx(t)
	if _, err := r.GetAttemptToken(ctx); err != nil {
		t.Fatal(err)
	}
	opErr := codesError{[]string{"Busy"}}
	if _, err := r.GetRetryToken(ctx, opErr); err != nil {
		t.Fatal(err)
	}
	if _, err := r.RetryDelay(1, opErr); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GetAttemptToken(ctx); err != nil {
		t.Errorf("the retry after an uncomparable error, delayed by the budget: %v; want it made", err)
	}
}

// annotating is a retryer wrapper that leaves every decision to the
// budget's retryer but wraps the attempt's error it passes on, differently
// in GetRetryToken and RetryDelay (a logging or tracing wrapper).
type annotating struct{ aws.RetryerV2 }

func (w annotating) GetRetryToken(ctx context.Context, err error) (func(error) error, error) {
	return w.RetryerV2.GetRetryToken(ctx, fmt.Errorf("retry token: %w", err))
}

func (w annotating) RetryDelay(attempt int, err error) (time.Duration, error) {
	return w.RetryerV2.RetryDelay(attempt, fmt.Errorf("attempt %d: %w", attempt, err))
}

// takes is a Bucket that counts the releases of each take, by take number
// (from 1); its capacity is unbounded.
type takes struct {
	mu       sync.Mutex
	releases []int
}

func (b *takes) GetToken(context.Context, uint) (func() error, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.releases = append(b.releases, 0)
	i := len(b.releases) - 1
	return func() error {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.releases[i]++
		return nil
	}, nil
}

func (*takes) AddTokens(uint) error { return nil }

func (b *takes) released() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.releases)
}

// errBusySentinel is a package-level error that concurrent calls return as
// it is.
var errBusySentinel = errors.New("busy")

// TestSentinelErrorOfConcurrentCallsIsNotRefused: two calls with call state
// fail at once with the same package-level error. RetryDelay cannot tell
// whose retry it is asked for: each call's retry counts as delayed by the
// budget, and neither is refused as delay-replaced, whichever call's
// RetryDelay comes first.
func TestSentinelErrorOfConcurrentCallsIsNotRefused(t *testing.T) {
	b := backoff.NewBudget(func(b *backoff.Budget) { b.Transient, b.Throttle = backoff.Immediate, backoff.Immediate })
	for _, r := range []aws.RetryerV2{b.NewStandard(), annotating{b.NewStandard()}} {
		callA, callB := callCtx(t), callCtx(t)
		for _, ctx := range []context.Context{callA, callB} {
			if _, err := r.GetAttemptToken(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := r.GetRetryToken(ctx, errBusySentinel); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := r.RetryDelay(1, errBusySentinel); err != nil { // A's
			t.Fatal(err)
		}
		if _, err := r.GetAttemptToken(callA); err != nil {
			t.Errorf("%T: call A's retry, delayed by the budget: %v; want it made", r, err)
		}
		if _, err := r.RetryDelay(1, errBusySentinel); err != nil { // B's
			t.Fatal(err)
		}
		if _, err := r.GetAttemptToken(callB); err != nil {
			t.Errorf("%T: call B's retry, delayed by the budget: %v; want it made", r, err)
		}
		if n := backoff.Tracked(unwrapRetryer(r)); n != 0 {
			t.Errorf("%T: %d tokens still tracked after both retries; want 0", r, n)
		}
	}
}

// unwrapRetryer returns the budget's retryer inside annotating.
func unwrapRetryer(r aws.RetryerV2) aws.RetryerV2 {
	if a, ok := r.(annotating); ok {
		return a.RetryerV2
	}
	return r
}

// TestRefusedRetryRefundsItsOwnTake: the budget's retryer alone (no call
// state) under retry.AddWithMaxAttempts(5) refuses in RetryDelay a retry
// past MaxAttempts = 2 and gives back the token taken for it: the take of
// that call, found through a wrapper that wraps the error differently in
// GetRetryToken and RetryDelay. When two calls' errors are the same
// package-level error, whose take it is is ambiguous: none is given back
// (the other call's take, released again when its retry succeeds, would be
// settled twice and the refused one's never).
func TestRefusedRetryRefundsItsOwnTake(t *testing.T) {
	for _, tc := range []struct {
		name       string
		errA, errB error
		want       []int // releases of A's take and B's
	}{
		{"distinct", fmt.Errorf("call A: %w", errBusySentinel), fmt.Errorf("call B: %w", errBusySentinel), []int{1, 1}},
		{"sentinel", errBusySentinel, errBusySentinel, []int{0, 1}},
	} {
		bucket := &takes{}
		b := backoff.NewBudget(func(b *backoff.Budget) {
			b.MaxAttempts = 2
			b.Bucket = bucket
			b.Transient, b.Throttle = backoff.Immediate, backoff.Immediate
		})
		r := annotating{retry.AddWithMaxAttempts(b.NewStandard(), 5).(aws.RetryerV2)}
		ctx := context.Background()
		if _, err := r.GetRetryToken(ctx, tc.errA); err != nil { // A, after its attempt 2
			t.Fatal(err)
		}
		releaseB, err := r.GetRetryToken(ctx, tc.errB) // B, after its attempt 1
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.RetryDelay(2, tc.errA); err == nil {
			t.Fatalf("%s: A's third attempt allowed; want it refused", tc.name)
		}
		if _, err := r.RetryDelay(1, tc.errB); err != nil {
			t.Fatal(err)
		}
		if err := releaseB(nil); err != nil { // B's retry succeeded
			t.Fatal(err)
		}
		if got := bucket.released(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: releases of A's take and B's: %v; want %v", tc.name, got, tc.want)
		}
	}
}

// TestWrappedValueErrorIsNotRefused: a wrapper that wraps an attempt
// error that is not a pointer, differently in GetRetryToken and
// RetryDelay, leaves no pointer the two errors share: the token, tracked
// under the wrapper's wrapping, is given the benefit of the doubt (the
// RetryDelay's error holds a value of the same type), not refused as
// delay-replaced.
func TestWrappedValueErrorIsNotRefused(t *testing.T) {
	b := backoff.NewBudget(func(b *backoff.Budget) { b.Transient, b.Throttle = backoff.Immediate, backoff.Immediate })
	r := annotating{b.NewStandard()}
	ctx := callCtx(t)
	if _, err := r.GetAttemptToken(ctx); err != nil {
		t.Fatal(err)
	}
	opErr := busyValue{"Busy"}
	if _, err := r.GetRetryToken(ctx, opErr); err != nil {
		t.Fatal(err)
	}
	if _, err := r.RetryDelay(1, opErr); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GetAttemptToken(ctx); err != nil {
		t.Errorf("the retry after a wrapped error value, delayed by the budget: %v; want it made", err)
	}
}

// TestEqualValueErrorsReleaseNoOthersTake: two calls without call state
// fail at once with equal errors that are not pointers; A is past
// MaxAttempts, B at its first failure. Equal values cannot be told apart,
// so neither token is tracked: A's refused retry is not refunded (as
// documented), and B's take is released once, by the SDK, never by A's
// refusal (matching by value released it twice: review z1).
func TestEqualValueErrorsReleaseNoOthersTake(t *testing.T) {
	bucket := &takes{}
	b := backoff.NewBudget(func(b *backoff.Budget) {
		b.MaxAttempts = 2
		b.Bucket = bucket
		b.Transient, b.Throttle = backoff.Immediate, backoff.Immediate
	})
	r := retry.AddWithMaxAttempts(b.NewStandard(), 5).(aws.RetryerV2)
	ctx := context.Background()
	if _, err := r.GetRetryToken(ctx, busyValue{"Busy"}); err != nil { // A, after its attempt 2
		t.Fatal(err)
	}
	releaseB, err := r.GetRetryToken(ctx, busyValue{"Busy"}) // B, after its attempt 1
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.RetryDelay(2, busyValue{"Busy"}); err == nil {
		t.Fatal("A's third attempt allowed; want it refused")
	}
	if _, err := r.RetryDelay(1, busyValue{"Busy"}); err != nil {
		t.Fatal(err)
	}
	if err := releaseB(nil); err != nil { // B's retry succeeded
		t.Fatal(err)
	}
	if got := bucket.released(); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("releases of A's take and B's: %v; want [0 1]", got)
	}
}
