package backoff_test

import (
	"context"
	"testing"

	"github.com/streamstatus/streamstatus/backoff"
)

// TestDefect_SentinelCollisionLosesLaterRefunds: the budget's retryer alone
// (no call state; cfg.RetryMaxAttempts above MaxAttempts), a
// package-level error returned as it is. Two calls meet once, concurrently:
// their tokens are ambiguous, documented as not refunded. But the two
// tokens are never dropped (only 256 newer loose tokens push them out), so
// every later call failing with that error, alone, with nothing
// concurrent, is ambiguous too: its refused retry never gets its token
// back, and each such token stays tracked in turn. The README limits the
// loss to "a pointer that concurrent calls share".
func TestDefect_SentinelCollisionLosesLaterRefunds(t *testing.T) {
	bucket := &takes{}
	b := backoff.NewBudget(func(b *backoff.Budget) {
		b.MaxAttempts = 2
		b.Transient, b.Throttle = backoff.Immediate, backoff.Immediate
		b.Bucket = bucket
	})
	r := b.NewStandard()
	ctx := context.Background() // no call state: the budget's retryer alone
	// Once: two calls fail at the same time with the sentinel (takes 1, 2).
	for range 2 {
		if _, err := r.GetRetryToken(ctx, errBusySentinel); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if _, err := r.RetryDelay(1, errBusySentinel); err != nil {
			t.Fatal(err)
		}
	}
	// Later, one call alone: its retry past MaxAttempts is refused (take 3).
	if _, err := r.GetRetryToken(ctx, errBusySentinel); err != nil {
		t.Fatal(err)
	}
	if _, err := r.RetryDelay(2, errBusySentinel); err == nil {
		t.Fatal("RetryDelay(2) with MaxAttempts 2: want a refusal")
	}
	if got := bucket.released(); len(got) != 3 || got[2] != 1 {
		t.Errorf("releases by take %v: a call alone, long after the concurrent ones, had its refused retry's token released %d times; want 1 (tracked tokens: %d)",
			got, got[len(got)-1], backoff.Tracked(r))
	}
}
