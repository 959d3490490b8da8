package backoff_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/streamstatus/streamstatus/backoff"
)

// TestBudgetRefusesFieldsThatWouldMeanSomethingElse: a negative duration
// (MaxElapsed would mean no limit, Initial no backoff, Max a cap below every
// delay), a negative MaxAttempts or a shrinking Multiplier fails the first
// call of every retryer and of RetryStream, naming the field, as an invalid
// Jitter does. Zero values keep their documented meaning.
func TestBudgetRefusesFieldsThatWouldMeanSomethingElse(t *testing.T) {
	shape := func(fn func(*backoff.Shape)) backoff.Shape {
		s := backoff.Shape{Initial: time.Millisecond, Max: time.Second, Multiplier: 2}
		fn(&s)
		return s
	}
	for field, fn := range map[string]func(*backoff.Budget){
		"MaxAttempts":          func(b *backoff.Budget) { b.MaxAttempts = -1 },
		"MaxElapsed":           func(b *backoff.Budget) { b.MaxElapsed = -time.Nanosecond },
		"Transient.Initial":    func(b *backoff.Budget) { b.Transient = shape(func(s *backoff.Shape) { s.Initial = -time.Second }) },
		"Transient.Max":        func(b *backoff.Budget) { b.Transient = shape(func(s *backoff.Shape) { s.Max = -time.Second }) },
		"Throttle.Initial":     func(b *backoff.Budget) { b.Throttle = shape(func(s *backoff.Shape) { s.Initial = -time.Second }) },
		"Throttle.Max":         func(b *backoff.Budget) { b.Throttle = shape(func(s *backoff.Shape) { s.Max = -1 }) },
		"Transient.Multiplier": func(b *backoff.Budget) { b.Transient = shape(func(s *backoff.Shape) { s.Multiplier = 0.5 }) },
		"Throttle.Multiplier":  func(b *backoff.Budget) { b.Throttle = shape(func(s *backoff.Shape) { s.Multiplier = -2 }) },
	} {
		b := backoff.NewBudget(fn)
		for name, call := range map[string]func() error{
			"NewStandard": func() error { _, err := b.NewStandard().GetAttemptToken(context.Background()); return err },
			"NewAdaptive": func() error { _, err := b.NewAdaptive().GetAttemptToken(context.Background()); return err },
			"RetryStream": func() error {
				open, _ := script(attempt{events: []string{"a"}})
				return backoff.RetryStream(context.Background(), b, open, func(string) error { return nil })
			},
		} {
			if err := call(); err == nil || !strings.Contains(err.Error(), "budget "+field+" is") || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s: %s's first call: err %v; want one line naming %s", field, name, err, field)
			}
		}
	}
	// Zero means the default, or no limit: all valid.
	b := backoff.NewBudget(func(b *backoff.Budget) {
		b.Transient = backoff.Shape{Initial: time.Millisecond} // Multiplier 0 is 1, Max 0 is Initial
	})
	if _, err := b.NewStandard().GetAttemptToken(context.Background()); err != nil {
		t.Fatalf("a budget of zero MaxAttempts and MaxElapsed and a shape without Max or Multiplier: %v", err)
	}
	if b.MaxAttempts != backoff.DefaultMaxAttempts {
		t.Fatalf("MaxAttempts %d, want the default %d", b.MaxAttempts, backoff.DefaultMaxAttempts)
	}
}

// TestShapeReadsItsFieldsAsDocumented: Delay and MaxDelay of a Shape used
// on its own (no NewBudget) read a Max below Initial (or none) as Initial
// and a Multiplier of 0 as 1, and MaxDelay(n) bounds Delay(n).
func TestShapeReadsItsFieldsAsDocumented(t *testing.T) {
	for _, s := range []backoff.Shape{
		{Initial: time.Second, Multiplier: 2},                        // no Max
		{Initial: time.Second, Max: time.Millisecond, Multiplier: 3}, // Max below Initial
		{Initial: time.Second},                                       // no Multiplier either
		{Initial: time.Second, Jitter: 0.5},
	} {
		for n := 1; n <= 5; n++ {
			d, m := s.Delay(n), s.MaxDelay(n)
			if d > m || m > time.Duration(float64(time.Second)*(1+s.Jitter))+1 {
				t.Errorf("%+v: Delay(%d) = %v, MaxDelay(%d) = %v; want Delay <= MaxDelay <= 1s(1+Jitter)", s, n, d, n, m)
			}
			if s.Jitter == 0 && d != time.Second {
				t.Errorf("%+v: Delay(%d) = %v; want 1s (Max is Initial)", s, n, d)
			}
		}
	}
}
