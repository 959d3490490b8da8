package backoff_test

import (
	"strings"
	"testing"

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
