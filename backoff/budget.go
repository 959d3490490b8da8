package backoff

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	smithymiddleware "github.com/aws/smithy-go/middleware"
	cb "github.com/cenkalti/backoff/v4"

	"github.com/streamstatus/streamstatus/classify"
)

// Defaults of a Budget's fields. The costs follow the SDK's standard retryer
// (aws-sdk-go-v2 v1.48: a retry costs 14 tokens, a throttle retry 5, a first
// attempt that succeeds adds 1, a bucket holds 500).
const (
	DefaultMaxAttempts       = 3
	DefaultBucketCapacity    = 500
	DefaultRetryCost         = 14
	DefaultThrottleRetryCost = 5
	DefaultSuccessRefund     = 1
)

// Budget says how much retrying calls may do. Create one with NewBudget and
// share it: every retryer and RetryStream built from one Budget draws on its
// one Bucket. A Budget must not be changed after NewBudget returns it.
type Budget struct {
	// MaxAttempts bounds the attempts of one call, the first included.
	MaxAttempts int
	// MaxElapsed bounds the time from a call's start after which no retry
	// may begin: a retry whose longest possible delay would end past it is
	// not made. 0 means no limit. (SDK-level retries need the streamstatus
	// middleware on the client, which marks when a call starts.)
	MaxElapsed time.Duration
	// Transient is the backoff shape for retryable errors that are not
	// throttles. Zero means DefaultTransient.
	Transient Shape
	// Throttle is the backoff shape for throttles. Zero means
	// DefaultThrottle.
	Throttle Shape
	// Bucket is the retry quota. Nil means a new TokenBucket of
	// DefaultBucketCapacity for this Budget. Share a bucket between budgets
	// by setting the same bucket; a RedisBucket shares it between
	// processes.
	Bucket Bucket
	// RetryCost, ThrottleRetryCost and SuccessRefund are the bucket costs
	// of a retry, a retry after a throttle, and the refund of a first
	// attempt that succeeds. Zero means the default.
	RetryCost, ThrottleRetryCost, SuccessRefund uint
	// Clock tells the time for the elapsed-time limit; nil means the system
	// clock. Tests inject their own.
	Clock cb.Clock
}

// Bucket is a retry quota: the methods of the SDK's retry.RateLimiter, so
// any Bucket also plugs into retry.StandardOptions.RateLimiter. GetToken
// takes a retry's cost (or fails, for example with *QuotaExceededError) and
// returns the release that gives it back; AddTokens refunds up to the
// capacity. *TokenBucket (one process) and *RedisBucket (a fleet) are
// Buckets.
type Bucket interface {
	GetToken(ctx context.Context, cost uint) (release func() error, err error)
	AddTokens(n uint) error
}

// NewBudget returns a Budget with the defaults filled in, after the option
// functions have set what they want.
func NewBudget(optFns ...func(*Budget)) *Budget {
	b := &Budget{}
	for _, fn := range optFns {
		fn(b)
	}
	if b.MaxAttempts <= 0 {
		b.MaxAttempts = DefaultMaxAttempts
	}
	b.Transient = b.Transient.or(DefaultTransient)
	b.Throttle = b.Throttle.or(DefaultThrottle)
	if b.Bucket == nil {
		b.Bucket = NewTokenBucket(DefaultBucketCapacity)
	}
	if b.RetryCost == 0 {
		b.RetryCost = DefaultRetryCost
	}
	if b.ThrottleRetryCost == 0 {
		b.ThrottleRetryCost = DefaultThrottleRetryCost
	}
	if b.SuccessRefund == 0 {
		b.SuccessRefund = DefaultSuccessRefund
	}
	if b.Clock == nil {
		b.Clock = cb.SystemClock
	}
	return b
}

// IsThrottle reports whether err is a throttle for this package's purposes:
// the throttle shape and cost apply. It is classify.IsThrottle.
func IsThrottle(err error) bool { return classify.IsThrottle(err) }

func (b *Budget) shape(err error) Shape {
	if IsThrottle(err) {
		return b.Throttle
	}
	return b.Transient
}

func (b *Budget) cost(err error) uint {
	if IsThrottle(err) {
		return b.ThrottleRetryCost
	}
	return b.RetryCost
}

// BackoffDelay implements retry.BackoffDelayer: the delay before the retry
// that follows attempt number attempt, from the throttle or transient shape.
func (b *Budget) BackoffDelay(attempt int, err error) (time.Duration, error) {
	return b.shape(err).Delay(attempt), nil
}

// StandardOptions applies the budget to retry.NewStandard's options: max
// attempts, the budget's backoff, its bucket and costs, and streamstatus's
// retryable and throttle rules ahead of the SDK's.
func (b *Budget) StandardOptions(o *retry.StandardOptions) {
	o.MaxAttempts = b.MaxAttempts
	o.Backoff = b
	o.RateLimiter = b.Bucket
	o.RetryCost = b.RetryCost
	o.ThrottlingRetryCost = b.ThrottleRetryCost
	o.NoRetryIncrement = b.SuccessRefund
	o.Retryables = append([]retry.IsErrorRetryable{classify.StatusRetryable{}}, o.Retryables...)
	o.Throttles = append([]retry.IsErrorThrottle{classify.StatusThrottle{}}, o.Throttles...)
}

// AdaptiveOptions applies the budget to retry.NewAdaptiveMode's options:
// StandardOptions for the retryer underneath, and streamstatus's throttle
// rule for the adaptive rate limiter.
func (b *Budget) AdaptiveOptions(o *retry.AdaptiveModeOptions) {
	o.StandardOptions = append(o.StandardOptions, b.StandardOptions)
	o.Throttles = append([]retry.IsErrorThrottle{classify.StatusThrottle{}}, o.Throttles...)
}

// NewStandard returns the SDK's standard retryer configured by the budget,
// with the elapsed-time limit enforced. optFns run after the budget's.
// Use it as aws.Config.Retryer:
//
//	cfg.Retryer = func() aws.Retryer { return budget.NewStandard() }
func (b *Budget) NewStandard(optFns ...func(*retry.StandardOptions)) aws.RetryerV2 {
	return &retryer{RetryerV2: retry.NewStandard(append([]func(*retry.StandardOptions){b.StandardOptions}, optFns...)...), budget: b}
}

// NewAdaptive returns the SDK's adaptive retryer configured by the budget,
// with the elapsed-time limit enforced. optFns run after the budget's.
func (b *Budget) NewAdaptive(optFns ...func(*retry.AdaptiveModeOptions)) aws.RetryerV2 {
	return &retryer{RetryerV2: retry.NewAdaptiveMode(append([]func(*retry.AdaptiveModeOptions){b.AdaptiveOptions}, optFns...)...), budget: b}
}

// ExhaustedError reports that a retry budget stopped a call.
type ExhaustedError struct {
	// Reason is "attempts", "elapsed time" or "retry quota".
	Reason string
	// Attempts is the number of attempts made.
	Attempts int
	// Err is the error of the last attempt (or the quota error).
	Err error
}

// Error names the exhausted part of the budget and the last error.
func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("streamstatus: retry budget exhausted (%s) after %d attempts: %v", e.Reason, e.Attempts, e.Err)
}

// Unwrap returns the last attempt's error.
func (e *ExhaustedError) Unwrap() error { return e.Err }

// retryer adds the budget's elapsed-time limit to an SDK retryer.
type retryer struct {
	aws.RetryerV2
	budget *Budget
}

// Budget returns the budget the retryer enforces.
func (r *retryer) Budget() *Budget { return r.budget }

func (r *retryer) GetAttemptToken(ctx context.Context) (func(error) error, error) {
	if c := callFrom(ctx); c != nil {
		c.attempts.Add(1)
	}
	return r.RetryerV2.GetAttemptToken(ctx)
}

func (r *retryer) GetRetryToken(ctx context.Context, opErr error) (func(error) error, error) {
	if b := r.budget; b.MaxElapsed > 0 {
		if c := callFrom(ctx); c != nil {
			attempts := int(c.attempts.Load())
			elapsed := b.Clock.Now().Sub(c.start)
			if elapsed+b.shape(opErr).MaxDelay(attempts) > b.MaxElapsed {
				return nil, &ExhaustedError{Reason: "elapsed time", Attempts: attempts,
					Err: fmt.Errorf("%v elapsed of a %v budget", elapsed.Round(time.Millisecond), b.MaxElapsed)}
			}
		}
	}
	return r.RetryerV2.GetRetryToken(ctx, opErr)
}

// call is the per-call state the CallStart middleware puts in the context.
type call struct {
	start    time.Time
	attempts atomic.Int32
}

type callKey struct{}

func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// CallStartID is the ID of the middleware returned by CallStart.
const CallStartID = "streamstatus.CallStart"

// CallStart returns the initialize middleware that marks when a call
// starts, which the elapsed-time limit of retryers built by NewStandard and
// NewAdaptive measures from. The streamstatus middleware package installs
// it; install it yourself only on clients without that package's
// middlewares.
func (b *Budget) CallStart() smithymiddleware.InitializeMiddleware {
	return smithymiddleware.InitializeMiddlewareFunc(CallStartID, func(ctx context.Context, in smithymiddleware.InitializeInput, next smithymiddleware.InitializeHandler) (
		smithymiddleware.InitializeOutput, smithymiddleware.Metadata, error,
	) {
		if callFrom(ctx) == nil {
			ctx = context.WithValue(ctx, callKey{}, &call{start: b.Clock.Now()})
		}
		return next.HandleInitialize(ctx, in)
	})
}

// Of returns the Budget a retryer was built from by NewStandard or
// NewAdaptive, or nil.
func Of(r aws.Retryer) *Budget {
	if br, ok := r.(interface{ Budget() *Budget }); ok {
		return br.Budget()
	}
	return nil
}
