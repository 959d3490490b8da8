package backoff

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"

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
	// After returns a channel that receives once a wait of d is over; nil
	// means time.After. Tests inject their own.
	After func(d time.Duration) <-chan time.Time
}

// RetryStream runs a streaming call (open, then every event to deliver) and
// runs it again as a whole when its stream fails with a retryable error that
// the budget allows: the attempts, the elapsed time and the bucket of b,
// with b's throttle or transient delay in between. The context ends a wait
// at once.
//
// RetryStream and the SDK share one budget: open receives a context that
// carries the call's state, so the SDK retries a client with b's retryer
// makes inside open count against the same attempts and the same elapsed
// time, measured from RetryStream's start. The bucket counts the whole as
// one call, as the SDK's retryer counts one: the first attempt, if it
// succeeds, refunds SuccessRefund once, and each retry takes its cost and
// gets it back only if the attempt it paid for succeeds. b's retryer counts
// the attempts inside open as usual (the first attempt's refund comes with
// its response, before the stream, as for any stream call); RetryStream
// refunds the first attempt when no budget's retryer refunded b's bucket
// (the retryer of another budget sharing b's Bucket counts as b's, and so
// does one whose RedisBucket is on the same key of the same Redis: the
// bucket gets one refund), pays for its own retries, and gives a retry's
// tokens back through the release GetToken returned (to where they came
// from) when the run it paid for succeeds at its first attempt and to the
// end of its stream. The first attempt of such a run refunds no
// SuccessRefund. RetryStream sees only retryers built by a budget
// (NewStandard, NewAdaptive): a client retryer that refunds b's bucket
// without being one, such as retry.NewStandard(b.StandardOptions), is
// invisible to it, and a call that succeeds at once is then refunded twice
// (use b.NewStandard() instead). Failures of open have already been
// through the SDK's retryer and are returned as they are, except one that
// holds the budget's refusal (an *ExhaustedError, or the SDK's
// *retry.MaxAttemptsError once the call's attempts reached MaxAttempts):
// that is returned alone, an *ExhaustedError, as CallStart returns it,
// without open's own wrapping (the SDK's retry loop joins a refusal to the
// attempt's error).
//
// A failure after events were delivered is retried only when opts set
// Reset. Before a retry, RetryStream asks in this order: the budget's
// attempts and elapsed time (a retry whose longest possible delay would end
// past MaxElapsed is not made), then Reset, then the bucket for a token,
// then the elapsed time again (Reset may have taken long), and only then
// waits; a Reset that refuses costs neither token nor wait. A retry that
// would begin past MaxElapsed after all (a slow Notify, or open's own work
// before it calls a client with b's retryer, which then refuses the run's
// first attempt for the elapsed time) is not made either. A retry not made
// gives its tokens back: refused by the budget, by its wait's end, by a
// budget's retryer at the run's first attempt, or because open failed after
// the context ended without a budget's retryer being asked for that
// attempt (the SDK's retry loop checks the context before its first
// attempt; open's own work before it calls the client may have seen the
// end). Such a failure of open counts as no attempt even with a client
// whose retryer is not a budget's, which RetryStream cannot see. Errors
// from deliver stop
// RetryStream and are returned as they are.
//
// When the budget stops retries, the error is an *ExhaustedError wrapping
// the last attempt's error (and the *QuotaExceededError when the bucket ran
// out).
func RetryStream[E any](ctx context.Context, b *Budget, open func(context.Context) (Stream[E], error), deliver func(E) error, optFns ...func(*StreamOptions)) error {
	if b == nil {
		return errors.New("streamstatus: RetryStream needs a budget; build one with backoff.NewBudget")
	}
	if err := b.Validate(); err != nil {
		return err
	}
	var o StreamOptions
	for _, fn := range optFns {
		fn(&o)
	}
	after := o.After
	if after == nil {
		after = time.After
	}
	ctx, c := withCall(ctx)
	c.begin(b)
	defer c.end() // a call inside without CallStart may leave a retry token tracked
	transient, throttle := b.Transient.exponential(0, b.Now), b.Throttle.exponential(0, b.Now)
	release := func() error { return nil } // gives back the tokens of the last retry
	for opens := 1; ; opens++ {
		before := c.attempts.Load()
		c.rerun.Store(opens > 1) // a budget's retryer makes no success refund for this run's first attempt
		delivered, opened, final, err := runStream(ctx, open, deliver)
		// A budget's retryer took the flag (at its first attempt) but
		// counted no attempt: it refused to send the run's first attempt.
		taken := !c.rerun.Swap(false)
		refused := opens > 1 && taken
		made := c.attempts.Load() - before
		if made == 0 && refused && final {
			_ = release() // no retry was made
			return err
		}
		// open failed once the context had ended, and no budget's
		// retryer took the flag: the SDK's retry loop, which checks the
		// context before it asks for an attempt token, made no attempt
		// (or open never reached the client).
		if opens > 1 && !opened && !taken && made == 0 && ctx.Err() != nil {
			_ = release() // no retry was made
			return err
		}
		if made == 0 {
			c.attempts.Add(1) // open made no attempt through a budget's retryer
		}
		if final {
			return err
		}
		if err == nil {
			// As the SDK's retryer counts: the first attempt of a call
			// that succeeds refunds SuccessRefund, a retry that succeeds
			// gets its own tokens back, nothing else. A run whose first
			// attempt failed (the SDK retried it inside open) gets
			// nothing: the SDK's retry has had its tokens back.
			switch {
			case made > 1: // this run's first attempt failed
			case opens > 1:
				_ = release() // where they came from
			case made == 1 && sameBucket(c.retryer.Load(), b): // the budget's retryer has refunded it
			default:
				_ = b.Bucket.AddTokens(b.SuccessRefund)
			}
			return nil
		}
		if !classify.Classify(err).Retryable || (delivered > 0 && o.Reset == nil) {
			return err // not retryable, or retrying would deliver events twice
		}
		if ex := b.refuse(c, err, 0); ex != nil {
			return ex
		}
		if delivered > 0 {
			if rerr := o.Reset(delivered, err); rerr != nil {
				return fmt.Errorf("streamstatus: reset before attempt %d: %w", c.attempts.Load()+1, rerr)
			}
		}
		cost := b.cost(err)
		rel, qerr := b.Bucket.GetToken(ctx, cost)
		if qerr != nil {
			var qe *QuotaExceededError
			if errors.As(qerr, &qe) {
				return &ExhaustedError{Reason: "retry quota", Attempts: int(c.attempts.Load()), Err: err, Cause: qerr}
			}
			return qerr
		}
		release = rel
		// Reset and the bucket took time: the retry must still begin
		// within MaxElapsed.
		if ex := b.refuse(c, err, 0); ex != nil {
			_ = release() // no retry was made
			return ex
		}
		eb := transient
		if classify.IsThrottle(err) {
			eb = throttle
		}
		d := eb.NextBackOff()
		if o.Notify != nil {
			o.Notify(err, d)
		}
		wait := after(d)
		select {
		case <-ctx.Done():
			_ = release() // no retry was made
			return ctx.Err()
		case <-wait:
		}
		// Notify or a late timer may have taken the retry past the
		// budget's approval (a retryer of b would otherwise refuse the
		// retry's first attempt as waited too long).
		if a := c.retry.Load(); a != nil && !time.Now().Before(a.deadline) {
			_ = release() // no retry was made
			attempts := int(c.attempts.Load())
			return &ExhaustedError{Reason: "elapsed time", Attempts: attempts, Err: err,
				detail: fmt.Sprintf("attempt %d would begin past %v (Notify or the wait took longer than the budget's delay)", attempts+1, b.MaxElapsed)}
		}
	}
}

// sameBucket reports whether used, the budget whose retryer made a call's
// attempts (nil if none did), refunds b's bucket: b itself, a budget
// sharing its bucket, or a budget whose RedisBucket keeps its tokens in the
// same Redis key as b's (see RedisBucket.sameQuota). A bucket that is not
// comparable is the same only as b's own budget.
func sameBucket(used, b *Budget) bool {
	switch {
	case used == nil:
		return false
	case used == b:
		return true
	}
	if x, ok := used.Bucket.(*RedisBucket); ok {
		if y, ok := b.Bucket.(*RedisBucket); ok {
			return x.sameQuota(y)
		}
	}
	return reflect.ValueOf(used.Bucket).Comparable() && used.Bucket == b.Bucket
}

// runStream runs one attempt: open, then deliver every event. opened is
// false when open failed; final is true when err must be returned as it is
// (open or deliver failed).
func runStream[E any](ctx context.Context, open func(context.Context) (Stream[E], error), deliver func(E) error) (delivered int, opened, final bool, err error) {
	stream, err := open(ctx)
	if err != nil {
		// The SDK's retryer has had its say. The SDK's retry loop joins a
		// budget's refusal to the attempt's error (two lines): the
		// refusal is the error, alone, as CallStart returns it.
		return 0, false, true, callFrom(ctx).exhaustedAlone(err)
	}
	defer stream.Close()
	for ev := range stream.Events() {
		if err := deliver(ev); err != nil {
			return delivered, true, true, err
		}
		delivered++
	}
	return delivered, true, false, stream.Err()
}

var _ retry.BackoffDelayer = (*Budget)(nil)
