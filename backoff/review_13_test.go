package backoff

import (
	"errors"
	"math"
	"testing"
	"time"
)

// TestDefect_NaNJitterPassesValidation: NewBudget's doc promises a budget
// with a Jitter outside [0, 1] fails on its first call, naming the field.
// A NaN Jitter (0/0 from a computed fraction) passes the check
// (NaN < 0 and NaN > 1 are both false); the shape's delays and its
// MaxDelay, which the elapsed-time limit relies on, are then garbage.
func TestDefect_NaNJitterPassesValidation(t *testing.T) {
	b := NewBudget(func(b *Budget) {
		b.MaxElapsed = time.Second
		b.Transient = Shape{Initial: 10 * time.Second, Max: 10 * time.Second, Multiplier: 1, Jitter: math.NaN()}
	})
	d, err := b.BackoffDelay(1, errors.New("transient"))
	if err == nil {
		t.Fatalf("Transient.Jitter NaN accepted: BackoffDelay(1) = %v, MaxDelay(1) = %v; want an error naming Transient.Jitter",
			d, b.Transient.MaxDelay(1))
	}
}
