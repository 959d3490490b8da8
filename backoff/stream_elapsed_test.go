package backoff_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/streamstatus/streamstatus/backoff"
)

// TestRetryStreamChecksElapsedAgainAfterReset: Reset runs after the budget
// approved a retry and may take long. A retry that Reset has pushed past
// MaxElapsed is not made: an elapsed-time ExhaustedError, with no wait and
// the bucket's tokens where they were.
func TestRetryStreamChecksElapsedAgainAfterReset(t *testing.T) {
	clock := &manualClock{now: time.Unix(1e9, 0)}
	bucket := backoff.NewTokenBucket(100)
	b := backoff.NewBudget(func(b *backoff.Budget) {
		b.MaxElapsed = 10 * time.Second
		b.Transient = backoff.Shape{Initial: time.Second, Max: time.Second, Multiplier: 1}
		b.Bucket = bucket
		b.Now = clock.Now
	})
	open, n := script(attempt{events: []string{"a"}, err: exception("internalServerException", `{}`, 1)}, attempt{events: []string{"b"}})
	timer := &immediateTimer{}
	err := backoff.RetryStream(context.Background(), b, open, func(string) error { return nil }, withTimer(timer),
		func(o *backoff.StreamOptions) {
			o.Reset = func(int, error) error { clock.advance(9500 * time.Millisecond); return nil } // 9.5s + up to 1s > 10s
		})
	var ex *backoff.ExhaustedError
	if !errors.As(err, &ex) || ex.Reason != "elapsed time" || *n != 1 || len(timer.delays) != 0 || bucket.Available() != 100 {
		t.Fatalf("err %v, %d attempts, waits %v, %d tokens; want an elapsed-time ExhaustedError after 1 attempt, no wait, 100 tokens",
			err, *n, timer.delays, bucket.Available())
	}
}

// TestRetryStreamChecksElapsedAfterTheWait: a Notify (or a timer) that
// takes the retry past MaxElapsed ends RetryStream with an elapsed-time
// ExhaustedError that says so (not one blaming the client's retryer), and
// the retry's tokens go back.
func TestRetryStreamChecksElapsedAfterTheWait(t *testing.T) {
	bucket := backoff.NewTokenBucket(100)
	b := backoff.NewBudget(func(b *backoff.Budget) {
		b.MaxElapsed = 100 * time.Millisecond
		b.Transient = backoff.Immediate
		b.Bucket = bucket
	})
	open, n := script(attempt{err: exception("internalServerException", `{}`, 0)}, attempt{events: []string{"b"}})
	err := backoff.RetryStream(context.Background(), b, open, func(string) error { return nil }, withTimer(&immediateTimer{}),
		func(o *backoff.StreamOptions) {
			o.Notify = func(error, time.Duration) { time.Sleep(150 * time.Millisecond) }
		})
	var ex *backoff.ExhaustedError
	if !errors.As(err, &ex) || ex.Reason != "elapsed time" || !strings.Contains(err.Error(), "Notify") || *n != 1 || bucket.Available() != 100 {
		t.Fatalf("err %v, %d attempts, %d tokens; want an elapsed-time ExhaustedError naming Notify after 1 attempt, 100 tokens",
			err, *n, bucket.Available())
	}
}
