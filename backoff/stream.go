package backoff

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	cb "github.com/cenkalti/backoff/v4"

	"github.com/streamstatus/streamstatus/classify"
)

// Stream is what the SDK's event streams have in common
// (*bedrockruntime.ConverseStreamEventStream,
// *bedrockruntime.InvokeModelWithResponseStreamEventStream, ...).
type Stream[E any] interface {
	Events() <-chan E
	Err() error
	Close() error
}

// StreamOptions configure RetryStream.
type StreamOptions struct {
	// Reset is called before a call is run again after it delivered events:
	// it must undo what the consumer did with them (discard partial output,
	// tell the user the answer restarts), and may return an error to stop
	// instead. Without Reset, a failure after any event is not retried, so
	// no event is ever delivered twice.
	Reset func(delivered int, err error) error
	// Notify, when set, is called before each wait with the error and the
	// delay.
	Notify func(err error, delay time.Duration)
	// Timer is the timer waits use; nil means a real one. Tests inject
	// their own.
	Timer cb.Timer
}

// RetryStream runs a streaming call (open, then every event to deliver) and
// runs it again as a whole when its stream fails with a retryable error that
// the budget allows: the attempts, the elapsed time and the bucket of b,
// with b's throttle or transient delay in between. The context ends a wait
// at once.
//
// RetryStream retries only failures of the stream itself, after open
// returned: failures of open have already been through the SDK's retryer,
// with the same budget, and are returned as they are. A failure after
// events were delivered is retried only when opts set Reset, which runs
// before the next attempt. Errors from deliver stop RetryStream and are
// returned as they are.
//
// When the budget stops retries, the error is an *ExhaustedError wrapping
// the last attempt's error.
func RetryStream[E any](ctx context.Context, b *Budget, open func(context.Context) (Stream[E], error), deliver func(E) error, optFns ...func(*StreamOptions)) error {
	if b == nil {
		return errors.New("streamstatus: RetryStream needs a budget; build one with backoff.NewBudget")
	}
	var o StreamOptions
	for _, fn := range optFns {
		fn(&o)
	}

	bo := &streamBackOff{budget: b}
	attempts, delivered := 0, 0
	var lastCost uint
	operation := func() error {
		if delivered > 0 {
			// Only reached when Reset is set (see failed below).
			if err := o.Reset(delivered, bo.last); err != nil {
				return cb.Permanent(fmt.Errorf("streamstatus: reset before attempt %d: %w", attempts+1, err))
			}
			delivered = 0
		}
		attempts++
		stream, err := open(ctx)
		if err != nil {
			return cb.Permanent(err) // the SDK's retryer has had its say
		}
		defer stream.Close()
		for ev := range stream.Events() {
			if err := deliver(ev); err != nil {
				return cb.Permanent(err)
			}
			delivered++
		}
		if err := stream.Err(); err != nil {
			bo.last = err
			if !classify.Classify(err).Retryable {
				return cb.Permanent(err)
			}
			if delivered > 0 && o.Reset == nil {
				return cb.Permanent(err) // retrying would deliver events twice
			}
			return err
		}
		if attempts > 1 {
			_ = b.Bucket.AddTokens(lastCost) // a retry that succeeds gets its tokens back
		} else {
			_ = b.Bucket.AddTokens(b.SuccessRefund)
		}
		return nil
	}
	bo.onRetry = func(cost uint) { lastCost = cost }

	var notify cb.Notify
	if o.Notify != nil {
		notify = cb.Notify(o.Notify)
	}
	err := cb.RetryNotifyWithTimer(operation, cb.WithContext(bo, ctx), notify, o.Timer)
	if err != nil && bo.stopped != "" && ctx.Err() == nil {
		return &ExhaustedError{Reason: bo.stopped, Attempts: attempts, Err: err}
	}
	return err
}

// streamBackOff is a cenkalti BackOff over a Budget: it picks the throttle
// or transient shape by the last error, and stops when attempts, elapsed
// time or the bucket run out.
type streamBackOff struct {
	budget              *Budget
	transient, throttle *cb.ExponentialBackOff
	retries             int
	last                error
	stopped             string
	onRetry             func(cost uint)
}

func (s *streamBackOff) Reset() {
	b := s.budget
	s.transient = b.Transient.exponential(b.MaxElapsed, b.Clock)
	s.throttle = b.Throttle.exponential(b.MaxElapsed, b.Clock)
	s.retries, s.last, s.stopped = 0, nil, ""
}

func (s *streamBackOff) NextBackOff() time.Duration {
	b := s.budget
	if s.retries+1 >= b.MaxAttempts {
		s.stopped = "attempts"
		return cb.Stop
	}
	eb := s.transient
	if IsThrottle(s.last) {
		eb = s.throttle
	}
	d := eb.NextBackOff()
	if d == cb.Stop {
		s.stopped = "elapsed time"
		return cb.Stop
	}
	cost := b.cost(s.last)
	if _, err := b.Bucket.GetToken(context.Background(), cost); err != nil {
		s.stopped = "retry quota"
		s.last = errors.Join(s.last, err)
		return cb.Stop
	}
	s.retries++
	if s.onRetry != nil {
		s.onRetry(cost)
	}
	return d
}

var _ retry.BackoffDelayer = (*Budget)(nil)
