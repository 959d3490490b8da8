package backoff

import (
	"fmt"
	"math"
	"time"

	cb "github.com/cenkalti/backoff/v4"
)

// Shape is the shape of an exponential backoff: the delay before retry n is
// Initial × Multiplier^(n-1), capped at Max, spread by ±Jitter (a fraction
// in [0, 1], cenkalti's RandomizationFactor). It is realised with cenkalti's
// ExponentialBackOff.
//
// The zero Shape means "the default shape" wherever a Budget takes one;
// Immediate retries without waiting.
//
// A Budget refuses a shape with a negative duration, a Multiplier below 1
// (other than 0) or a Jitter outside [0, 1], naming the field; Delay and
// MaxDelay of such a shape mean nothing.
type Shape struct {
	// Initial is the delay before the first retry; not negative.
	Initial time.Duration
	// Max caps every delay before jitter; a Max below Initial (0 for
	// one) is Initial. Not negative.
	Max time.Duration
	// Multiplier grows the delay from one retry to the next: 1 or more;
	// 0 means 1 (a constant delay).
	Multiplier float64
	// Jitter spreads each delay by up to ±Jitter of it, in [0, 1].
	Jitter float64
}

// Default shapes, following the SDK's convention of a longer base delay for
// throttles than for other transient errors.
var (
	// DefaultTransient is for transient server errors: 50ms, doubling, up
	// to 20s, ±50%.
	DefaultTransient = Shape{Initial: 50 * time.Millisecond, Max: 20 * time.Second, Multiplier: 2, Jitter: 0.5}
	// DefaultThrottle is for throttles: 1s, doubling, up to 20s, ±50%.
	DefaultThrottle = Shape{Initial: time.Second, Max: 20 * time.Second, Multiplier: 2, Jitter: 0.5}
	// Immediate retries at once; for tests.
	Immediate = Shape{Multiplier: 1}
)

// or returns def for the zero Shape, else s.
func (s Shape) or(def Shape) Shape {
	if s == (Shape{}) {
		return def
	}
	return s
}

// normal returns s as its fields' docs read it: a Multiplier of 0 is 1, a
// Max below Initial is Initial.
func (s Shape) normal() Shape {
	if s.Multiplier == 0 {
		s.Multiplier = 1
	}
	if s.Max < s.Initial {
		s.Max = s.Initial
	}
	return s
}

// validate reports a shape whose delays, or the MaxDelay bound the
// elapsed-time limit relies on, would be meaningless: a negative Initial
// (negative delays) or Max (a cap below every delay), a Jitter outside
// [0, 1] or not a number (a negative one gives delays above MaxDelay, one
// above 1 negative delays), or a Multiplier below 1 (other than 0, which
// means 1) or not a finite number (a shrinking delay is not a backoff).
func (s Shape) validate(field string) error {
	if s.Initial < 0 {
		return fmt.Errorf("streamstatus: budget %s.Initial is %v; set 0 or a positive duration", field, s.Initial)
	}
	if s.Max < 0 {
		return fmt.Errorf("streamstatus: budget %s.Max is %v; set 0 or a positive duration", field, s.Max)
	}
	if math.IsNaN(s.Jitter) || s.Jitter < 0 || s.Jitter > 1 {
		return fmt.Errorf("streamstatus: budget %s.Jitter is %v; set a fraction between 0 and 1", field, s.Jitter)
	}
	if math.IsNaN(s.Multiplier) || math.IsInf(s.Multiplier, 0) || (s.Multiplier < 1 && s.Multiplier != 0) {
		return fmt.Errorf("streamstatus: budget %s.Multiplier is %v; set a finite number, 1 or more (0 means 1)", field, s.Multiplier)
	}
	return nil
}

// exponential returns a fresh cenkalti ExponentialBackOff with this shape.
// maxElapsed 0 means no limit.
func (s Shape) exponential(maxElapsed time.Duration, now func() time.Time) *cb.ExponentialBackOff {
	s = s.normal()
	eb := &cb.ExponentialBackOff{
		InitialInterval:     s.Initial,
		RandomizationFactor: s.Jitter,
		Multiplier:          s.Multiplier,
		MaxInterval:         s.Max,
		MaxElapsedTime:      maxElapsed,
		Stop:                cb.Stop,
		Clock:               clockFunc(now),
	}
	eb.Reset()
	return eb
}

// Delay returns a delay before retry n (1 is the first retry), drawn from
// the shape.
func (s Shape) Delay(n int) time.Duration {
	eb := s.exponential(0, time.Now)
	var d time.Duration
	for i := 0; i < max(n, 1); i++ {
		d = eb.NextBackOff()
	}
	return d
}

// MaxDelay returns the longest delay Delay(n) can return.
func (s Shape) MaxDelay(n int) time.Duration {
	s = s.normal()
	d := float64(s.Initial)
	for i := 1; i < n && d < float64(s.Max); i++ {
		d *= s.Multiplier
	}
	d = min(d, float64(s.Max))
	return time.Duration(d*(1+s.Jitter)) + 1
}

// clockFunc is a cenkalti Clock reading the time from a func, so that
// Budget.Now keeps cenkalti's types out of this package's API.
type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f() }
