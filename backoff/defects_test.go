package backoff_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/streamstatus/streamstatus/backoff"
	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/smithyext"
)

// TestRetryStreamQuotaErrorIsReachable: out of tokens, the ExhaustedError
// leads both to the quota error and to the last attempt's typed error, in
// one line, and Classify counts the attempts.
func TestRetryStreamQuotaErrorIsReachable(t *testing.T) {
	b := backoff.NewBudget(func(b *backoff.Budget) { b.MaxAttempts = 10; b.Bucket = backoff.NewTokenBucket(5) })
	open, n := script(attempt{err: exception("throttlingException", `{}`, 0)})
	err := backoff.RetryStream(context.Background(), b, open, func(string) error { return nil }, withTimer(&immediateTimer{}))
	var qe *backoff.QuotaExceededError
	var ex *backoff.ExhaustedError
	if !errors.As(err, &ex) || ex.Reason != "retry quota" || !errors.As(err, &qe) || *n != 2 {
		t.Fatalf("%d attempts, err %v; want 2 attempts and a reachable *QuotaExceededError", *n, err)
	}
	var se *smithyext.StatusError
	if !errors.As(err, &se) || se.Status != 429 || !errors.As(err, new(*types.ThrottlingException)) {
		t.Fatalf("err %v: want the last attempt's StatusError (429) and ThrottlingException", err)
	}
	if strings.Contains(err.Error(), "\n") || classify.Classify(err).Attempts != 2 {
		t.Fatalf("err %q, Classify says %d attempts: want one line and 2 attempts", err, classify.Classify(err).Attempts)
	}
}

// TestRetryStreamAsksResetBeforeTakingATokenOrWaiting: a Reset that refuses
// costs no token and no wait.
func TestRetryStreamAsksResetBeforeTakingATokenOrWaiting(t *testing.T) {
	bucket := backoff.NewTokenBucket(100)
	b := backoff.NewBudget(func(b *backoff.Budget) { b.Bucket = bucket })
	open, n := script(attempt{events: []string{"a"}, err: exception("internalServerException", `{}`, 1)})
	timer := &immediateTimer{}
	refused := errors.New("the user has seen the answer")
	err := backoff.RetryStream(context.Background(), b, open, func(string) error { return nil }, withTimer(timer),
		func(o *backoff.StreamOptions) { o.Reset = func(int, error) error { return refused } })
	if !errors.Is(err, refused) || *n != 1 || bucket.Available() != 100 || len(timer.delays) != 0 {
		t.Fatalf("err %v, %d attempts, %d tokens, waits %v; want the refusal, 1 attempt, 100 tokens, no wait",
			err, *n, bucket.Available(), timer.delays)
	}
}

// TestRetryStreamChecksTheLongestDelay: a retry whose longest possible delay
// (1s ± 90%: up to 1.9s) would end past MaxElapsed (1.2s) is never made,
// whatever delay the draw would have given.
func TestRetryStreamChecksTheLongestDelay(t *testing.T) {
	clock := &manualClock{now: time.Unix(1e9, 0)}
	b := backoff.NewBudget(func(b *backoff.Budget) {
		b.MaxAttempts = 10
		b.MaxElapsed = 1200 * time.Millisecond
		b.Transient = backoff.Shape{Initial: time.Second, Max: time.Second, Multiplier: 1, Jitter: 0.9}
		b.Now = clock.Now
	})
	for i := 0; i < 30; i++ {
		open, n := script(attempt{err: exception("internalServerException", `{}`, 0)})
		err := backoff.RetryStream(context.Background(), b, open, func(string) error { return nil }, withTimer(&immediateTimer{}))
		var ex *backoff.ExhaustedError
		if !errors.As(err, &ex) || ex.Reason != "elapsed time" || *n != 1 {
			t.Fatalf("run %d: %d attempts, err %v; want 1 attempt and an elapsed-time stop", i, *n, err)
		}
	}
}

// TestTokenBucketRefusesACanceledContext: like the SDK's limiter, no token
// is taken for a call that is already canceled.
func TestTokenBucketRefusesACanceledContext(t *testing.T) {
	bucket := backoff.NewTokenBucket(10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := bucket.GetToken(ctx, 5); !errors.Is(err, context.Canceled) || bucket.Available() != 10 {
		t.Fatalf("err %v, %d tokens; want context.Canceled and 10 tokens", err, bucket.Available())
	}
}

// TestJitterOutsideZeroToOneFailsLoudly: a negative jitter would give delays
// above MaxDelay (breaking the elapsed-time promise), one above 1 negative
// delays; the budget refuses to run with either.
func TestJitterOutsideZeroToOneFailsLoudly(t *testing.T) {
	for _, jitter := range []float64{-0.5, 1.5} {
		b := backoff.NewBudget(func(b *backoff.Budget) {
			b.Transient = backoff.Shape{Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 1, Jitter: jitter}
		})
		if _, err := b.BackoffDelay(1, errors.New("x")); err == nil || !strings.Contains(err.Error(), "Jitter") {
			t.Fatalf("jitter %v: BackoffDelay err %v; want an error naming Jitter", jitter, err)
		}
		open, n := script(attempt{events: []string{"ok"}})
		if err := backoff.RetryStream(context.Background(), b, open, func(string) error { return nil }); err == nil || *n != 0 {
			t.Fatalf("jitter %v: RetryStream err %v after %d attempts; want an error before any", jitter, err, *n)
		}
		if _, err := b.NewStandard().GetAttemptToken(context.Background()); err == nil {
			t.Fatalf("jitter %v: the retryer accepted the budget", jitter)
		}
	}
}

// TestNonFiniteShapeFloatsFailLoudly: NaN passes every comparison and ±Inf
// overflows the delay arithmetic; a budget with either in a shape's floats
// fails on its first call, naming the field.
func TestNonFiniteShapeFloatsFailLoudly(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, tc := range []struct {
		field string
		set   func(*backoff.Budget)
	}{
		{"Transient.Jitter", func(b *backoff.Budget) { b.Transient = backoff.Shape{Initial: 1, Multiplier: 1, Jitter: nan} }},
		{"Transient.Jitter", func(b *backoff.Budget) { b.Transient = backoff.Shape{Initial: 1, Multiplier: 1, Jitter: inf} }},
		{"Throttle.Jitter", func(b *backoff.Budget) { b.Throttle = backoff.Shape{Initial: 1, Multiplier: 1, Jitter: -inf} }},
		{"Transient.Multiplier", func(b *backoff.Budget) { b.Transient = backoff.Shape{Initial: 1, Multiplier: nan} }},
		{"Throttle.Multiplier", func(b *backoff.Budget) { b.Throttle = backoff.Shape{Initial: 1, Multiplier: inf} }},
	} {
		b := backoff.NewBudget(tc.set)
		if _, err := b.BackoffDelay(1, errors.New("x")); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s non-finite: BackoffDelay err %v; want an error naming %s", tc.field, err, tc.field)
		}
	}
}
