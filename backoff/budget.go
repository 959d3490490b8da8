package backoff

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	smithymiddleware "github.com/aws/smithy-go/middleware"

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
// one Bucket. A Budget must not be changed after NewBudget returns it. A
// Budget that NewBudget did not build (a struct literal such as
// &backoff.Budget{MaxAttempts: 2}) has none of its defaults: its
// retryers, RetryStream and middleware.WithBudget fail their first call
// with an error naming NewBudget (see Validate).
type Budget struct {
	// MaxAttempts bounds the attempts of one call, the first included,
	// whatever a retry.AddWithMaxAttempts around the budget's retryer
	// (cfg.RetryMaxAttempts, AWS_MAX_ATTEMPTS) says, with or without the
	// streamstatus middlewares on the operation. Zero means
	// DefaultMaxAttempts; not negative.
	MaxAttempts int
	// MaxElapsed bounds the time from a call's start after which no retry
	// may begin: a retry whose longest possible delay (the shape's, or a
	// longer X-Amz-Retry-After the SDK would honour) would end past it is
	// not made. 0 means no limit. SDK-level retries need the streamstatus
	// middlewares on the operation (or CallStart), which hold the call's
	// start and attempt count. Not negative.
	MaxElapsed time.Duration
	// Transient is the backoff shape for retryable errors that are not
	// throttles. Zero means DefaultTransient.
	Transient Shape
	// Throttle is the backoff shape for throttles. Zero means
	// DefaultThrottle.
	Throttle Shape
	// Bucket is the retry quota. Nil means a new TokenBucket of
	// DefaultBucketCapacity for this Budget; a nil pointer (a nil
	// *TokenBucket) is invalid, not nil. Share a bucket between budgets
	// by setting the same bucket; a RedisBucket shares it between
	// processes.
	Bucket Bucket
	// RetryCost, ThrottleRetryCost and SuccessRefund are the bucket costs
	// of a retry, a retry after a throttle, and the refund of a first
	// attempt that succeeds. Zero means the default.
	RetryCost, ThrottleRetryCost, SuccessRefund uint
	// Now tells the time for the elapsed-time limit; nil means time.Now.
	// Tests inject their own.
	Now func() time.Time

	// invalid is why the budget cannot be used (see NewBudget), or nil.
	invalid error
	// built is true for a budget NewBudget returned.
	built bool
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
// functions have set what they want. A budget with an invalid field (a
// negative MaxAttempts, MaxElapsed or shape duration, a shape's Multiplier
// below 1 or Jitter outside [0, 1], see Shape; a Bucket holding a nil
// pointer, such as a nil *TokenBucket) is returned too, but every
// retryer and RetryStream built from it fails on its first call, saying
// which field to fix.
func NewBudget(optFns ...func(*Budget)) *Budget {
	b := &Budget{}
	for _, fn := range optFns {
		fn(b)
	}
	b.invalid = b.invalidFields()
	if b.MaxAttempts == 0 {
		b.MaxAttempts = DefaultMaxAttempts
	}
	b.Transient = b.Transient.or(DefaultTransient).normal()
	b.Throttle = b.Throttle.or(DefaultThrottle).normal()
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
	if b.Now == nil {
		b.Now = time.Now
	}
	b.built = true
	return b
}

// invalidFields reports the first field of b, as the option functions left
// it, that would make its limits or delays meaningless, or nil. Each would
// otherwise silently mean something else (a negative MaxElapsed no limit at
// all, a negative Initial no backoff).
func (b *Budget) invalidFields() error {
	if b.MaxAttempts < 0 {
		return fmt.Errorf("streamstatus: budget MaxAttempts is %d; set 1 or more (0 means %d)", b.MaxAttempts, DefaultMaxAttempts)
	}
	if b.MaxElapsed < 0 {
		return fmt.Errorf("streamstatus: budget MaxElapsed is %v; set a positive duration, or 0 for no limit", b.MaxElapsed)
	}
	if err := b.Transient.validate("Transient"); err != nil {
		return err
	}
	if err := b.Throttle.validate("Throttle"); err != nil {
		return err
	}
	if nilInside(b.Bucket) {
		return fmt.Errorf("streamstatus: budget Bucket is a nil %T (a bucket variable not yet assigned?); "+
			"set a bucket built by backoff.NewTokenBucket or backoff.NewRedisBucket, or leave Bucket nil for a new TokenBucket", b.Bucket)
	}
	return nil
}

// nilInside reports whether v is an interface value holding a nil pointer
// (or another nil of a kind that can be nil), which == nil does not catch.
func nilInside(v any) bool {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Func, reflect.Chan, reflect.Slice, reflect.Interface, reflect.UnsafePointer:
		return rv.IsNil()
	}
	return false
}

// errNotBuilt is Validate's error for a Budget that NewBudget did not build.
var errNotBuilt = errors.New("streamstatus: the backoff.Budget was not built by backoff.NewBudget " +
	"(a struct literal has no clock, bucket or costs); build it with backoff.NewBudget(func(b *backoff.Budget) { ... })")

// Validate returns why the budget cannot be used, or nil: it is nil, it
// was not built by NewBudget (a struct literal has none of NewBudget's
// defaults), or a field is invalid (a negative MaxAttempts, MaxElapsed or
// shape duration, a shape's Multiplier below 1 or Jitter outside [0, 1], a
// Bucket holding a nil pointer such as a nil *TokenBucket, which
// NewBudget's default does not replace since the Bucket is not nil).
// Every retryer and RetryStream built from such a budget, and
// middleware.WithBudget given it, fail their first call with this error;
// call Validate to fail earlier.
func (b *Budget) Validate() error {
	switch {
	case b == nil:
		return errors.New("streamstatus: the budget is nil; build one with backoff.NewBudget")
	case !b.built:
		return errNotBuilt
	}
	return b.invalid
}

func (b *Budget) shape(err error) Shape {
	if classify.IsThrottle(err) {
		return b.Throttle
	}
	return b.Transient
}

func (b *Budget) cost(err error) uint {
	if classify.IsThrottle(err) {
		return b.ThrottleRetryCost
	}
	return b.RetryCost
}

// BackoffDelay implements retry.BackoffDelayer: the delay before the retry
// that follows attempt number attempt, from the throttle or transient shape.
func (b *Budget) BackoffDelay(attempt int, err error) (time.Duration, error) {
	if verr := b.Validate(); verr != nil {
		return 0, verr
	}
	return b.shape(err).Delay(attempt), nil
}

// StandardOptions applies the budget to retry.NewStandard's options: max
// attempts, the budget's backoff, its bucket and costs, and streamstatus's
// retryable and throttle rules ahead of the SDK's.
func (b *Budget) StandardOptions(o *retry.StandardOptions) {
	o.MaxAttempts = b.MaxAttempts
	o.Backoff = b
	if b.Bucket != nil { // nil only in a budget NewBudget did not build, which BackoffDelay refuses
		o.RateLimiter = b.Bucket
	}
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
// with the elapsed-time limit enforced. optFns run after the budget's;
// they may add Retryables, Throttles and Timeouts, but not change what
// the budget owns: MaxAttempts, Backoff, MaxBackoff and BaseDelay (the
// budget's shapes), RateLimiter (its Bucket), RetryCost,
// ThrottlingRetryCost and NoRetryIncrement (its costs). A retryer whose
// optFns changed one fails its first call (GetAttemptToken) with an error
// naming the field and the Budget field to set instead.
// Use it as aws.Config.Retryer:
//
//	cfg.Retryer = func() aws.Retryer { return budget.NewStandard() }
//
// Wrap it only with wrappers that leave RetryDelay to it
// (retry.AddWithMaxAttempts, retry.AddWithErrorCodes): on an operation
// with the streamstatus middlewares, a retry whose wait the client's
// retryer computed itself (retry.AddWithMaxBackoffDelay) is refused,
// naming the fix. Cap delays with the budget's shapes (Shape.Max) instead.
func (b *Budget) NewStandard(optFns ...func(*retry.StandardOptions)) aws.RetryerV2 {
	r := &retryer{budget: b}
	fns := append([]func(*retry.StandardOptions){b.StandardOptions}, optFns...)
	if len(optFns) > 0 {
		fns = append(fns, func(o *retry.StandardOptions) { r.overridden = b.overridden(o, "NewStandard") })
	}
	r.RetryerV2 = retry.NewStandard(fns...)
	return r
}

// NewAdaptive returns the SDK's adaptive retryer configured by the budget,
// with the elapsed-time limit enforced. optFns run after the budget's;
// the StandardOptions functions they add follow NewStandard's rule: a
// field the budget owns that they change fails the retryer's first call,
// naming it.
func (b *Budget) NewAdaptive(optFns ...func(*retry.AdaptiveModeOptions)) aws.RetryerV2 {
	r := &retryer{budget: b}
	fns := append([]func(*retry.AdaptiveModeOptions){b.AdaptiveOptions}, optFns...)
	if len(optFns) > 0 {
		fns = append(fns, func(o *retry.AdaptiveModeOptions) {
			o.StandardOptions = append(o.StandardOptions, func(o *retry.StandardOptions) { r.overridden = b.overridden(o, "NewAdaptive") })
		})
	}
	r.RetryerV2 = retry.NewAdaptiveMode(fns...)
	return r
}

// overridden returns the error of a budget retryer built by constructor
// whose option functions left o with a field the budget owns changed
// (StandardOptions sets them), or nil. A Bucket that is not comparable
// cannot be told from a replacement and counts as kept.
func (b *Budget) overridden(o *retry.StandardOptions, constructor string) error {
	var field, fix string
	switch {
	case o.MaxAttempts != b.MaxAttempts:
		field, fix = "MaxAttempts", "Budget.MaxAttempts"
	case o.Backoff != retry.BackoffDelayer(b):
		field, fix = "Backoff", "Budget.Transient and Budget.Throttle"
	case o.MaxBackoff != retry.DefaultMaxBackoff:
		field, fix = "MaxBackoff", "the shapes' Max (Budget.Transient.Max, Budget.Throttle.Max)"
	case o.BaseDelay != 0:
		field, fix = "BaseDelay", "the shapes' Initial (Budget.Transient.Initial, Budget.Throttle.Initial)"
	case reflect.ValueOf(b.Bucket).Comparable() && o.RateLimiter != retry.RateLimiter(b.Bucket):
		field, fix = "RateLimiter", "Budget.Bucket"
	case o.RetryCost != b.RetryCost:
		field, fix = "RetryCost", "Budget.RetryCost"
	case o.ThrottlingRetryCost != b.ThrottleRetryCost:
		field, fix = "ThrottlingRetryCost", "Budget.ThrottleRetryCost"
	case o.NoRetryIncrement != b.SuccessRefund:
		field, fix = "NoRetryIncrement", "Budget.SuccessRefund"
	default:
		return nil
	}
	return fmt.Errorf("streamstatus: budget.%s's option functions set retry.StandardOptions.%s, which the retry budget owns "+
		"and would be replaced behind its back; set %s in backoff.NewBudget instead", constructor, field, fix)
}

// ExhaustedError reports that a retry budget stopped a call. Its message is
// one line; it unwraps to the last attempt's error (so errors.As finds the
// *smithyext.StatusError and the modeled exception) and to Cause: the
// *QuotaExceededError when the retry quota stopped the call, a
// *retry.MaxAttemptsError when its attempts ran out (as the SDK reports its
// own limit, so code written for the bare SDK still finds it).
//
// On an operation with the streamstatus middlewares (or CallStart), a call
// its budget stops always ends with an *ExhaustedError, whether the
// budget's retryer or the SDK's retry loop, counting the same MaxAttempts,
// stopped it first. The budget's retryer alone (no middlewares on the
// operation) still holds MaxAttempts, but when nothing lifts the SDK's own
// count the SDK stops the call first, with its *retry.MaxAttemptsError;
// and when its retry quota stops such a call, the error is the SDK's
// errors.Join of the last attempt's error and the bucket's (which unwraps
// to the *QuotaExceededError), not an *ExhaustedError: the SDK's retry
// loop joins whatever GetRetryToken returns, and without call state
// nothing outside it takes the join apart.
type ExhaustedError struct {
	// Reason is "attempts", "elapsed time" or "retry quota".
	Reason string
	// Attempts is the number of attempts made.
	Attempts int
	// Err is the error of the last attempt.
	Err error
	// Cause is what in the budget refused the next retry: a
	// *QuotaExceededError for the retry quota, a *retry.MaxAttemptsError
	// for the attempts; nil for the elapsed time.
	Cause error

	detail string // e.g. "25s elapsed + up to 1.5s delay > 30s"
}

// Error names the exhausted part of the budget and the last attempt's error.
func (e *ExhaustedError) Error() string {
	reason := e.Reason
	if e.detail != "" {
		reason += ": " + e.detail
	} else if e.Cause != nil {
		reason += ": " + e.Cause.Error()
	}
	return fmt.Sprintf("streamstatus: retry budget exhausted (%s) after %d attempts: %s",
		reason, e.Attempts, oneLine(e.Err))
}

// Unwrap returns the last attempt's error and, if set, Cause.
func (e *ExhaustedError) Unwrap() []error {
	errs := make([]error, 0, 2)
	for _, err := range []error{e.Err, e.Cause} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// AttemptCount returns Attempts; classify.Classify reads it.
func (e *ExhaustedError) AttemptCount() int { return e.Attempts }

func oneLine(err error) string {
	if err == nil {
		return "<nil>"
	}
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

// retryer adds the budget's attempt and elapsed-time limits, measured per
// call, to an SDK retryer. The SDK may wrap it (cfg.RetryMaxAttempts, that
// is AWS_MAX_ATTEMPTS, wraps it with retry.AddWithMaxAttempts and a larger
// MaxAttempts): the budget's limits still hold, because they are checked
// here, against the call's own count (GetRetryToken), or, on an operation
// without call state (no streamstatus middlewares), against the attempt
// number the SDK's retry loop gives RetryDelay.
//
// RetryDelay has no context: it finds the retry token GetRetryToken took
// for the same attempt by its error, by identity: the token whose error's
// Unwrap chain shares a pointer with RetryDelay's (a wrapper may wrap the
// attempt's error, differently in each). The error of an attempt that is
// not a pointer (an error value, such as a struct type with value
// receivers, which a middleware inside the SDK's retry loop may return)
// cannot be told apart from an equal error of another call, so its token
// is not tracked (nor matched when the two errors share only such a
// value); and when the first pointer they share is held by the tokens of
// several calls (a package-level sentinel error returned as it is), none
// is matched. Such a retry counts as delayed by the budget (a wrapper that
// replaced the budget's delay is not caught on it), and a retry that
// RetryDelay refuses past MaxAttempts (without call state) does not give
// its token back (the bucket keeps the retry's cost).
type retryer struct {
	aws.RetryerV2
	budget *Budget
	// overridden fails every call when NewStandard's or NewAdaptive's
	// option functions changed a field the budget owns; nil otherwise.
	overridden error

	// calls and loose are the retry tokens GetRetryToken took whose
	// RetryDelay has not come yet. The SDK's retry loop asks RetryDelay
	// right after GetRetryToken, with the same error and no context: the
	// error finds the token (a retryer serves every call of a client at
	// once; see track and match). calls holds the tokens of calls with
	// call state (one each): RetryDelay, the call's next attempt or its
	// end takes each back, so they are bounded by the calls in flight,
	// and none is dropped (its call could no longer tell that the
	// client's retryer replaced the budget's delay). loose holds the
	// others, needed only to give a token back when RetryDelay refuses its
	// retry: at most maxTracked, the oldest dropped (a token RetryDelay
	// could not tell from another's stays until then).
	mu    sync.Mutex
	calls []*retryToken
	loose []*retryToken
}

// Budget returns the budget the retryer enforces.
func (r *retryer) Budget() *Budget { return r.budget }

func (r *retryer) GetAttemptToken(ctx context.Context) (release func(error) error, err error) {
	b := r.budget
	if p, ok := ctx.Value(probeKey{}).(*probe); ok {
		p.budget = b
		return nil, p
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	if r.overridden != nil {
		return nil, r.overridden
	}
	c := callFrom(ctx)
	if c == nil {
		return r.RetryerV2.GetAttemptToken(ctx)
	}
	c.begin(b)
	c.retryer.Store(b)
	rerun := c.rerun.Swap(false)
	if rerun {
		// The first attempt of a call RetryStream runs again is a retry
		// RetryStream took tokens for, and gets them back if it succeeds:
		// not the success refund of a call's first attempt too.
		defer func() {
			if err == nil {
				release = withoutSuccessRefund(release)
			}
		}()
	}
	pending := c.retry.Swap(nil)
	token := c.token.Swap(nil) // the SDK's retry token for this attempt, if it is an SDK retry
	token.untrack()
	// A retry the budget approved must begin by the call's deadline. A
	// client that waited past it used another delay than the budget's.
	if pending != nil && !time.Now().Before(pending.deadline) {
		token.refund()
		attempts := int(c.attempts.Load())
		detail := fmt.Sprintf("attempt %d would begin past %v; the client waited longer than the budget's delay "+
			"(a retryer wrapper such as retry.AddWithMaxBackoffDelay replaces it: use budget.NewStandard() unwrapped)", attempts+1, b.MaxElapsed)
		if rerun {
			// RetryStream approved this run and waited the budget's
			// delay: what came after (open's own work before calling
			// the client) took the rest. RetryStream gives its tokens
			// back.
			detail = fmt.Sprintf("attempt %d would begin past %v: %v elapsed since the call's start "+
				"(open's own work before calling the client outlasted what the budget had left)",
				attempts+1, b.MaxElapsed, b.Now().Sub(c.startTime()).Round(time.Millisecond))
		}
		return nil, &ExhaustedError{Reason: "elapsed time", Attempts: attempts, Err: pending.err, detail: detail}
	}
	// The wait before an SDK retry must be the budget's: a client whose
	// retryer answered RetryDelay itself waited another delay.
	if token != nil && !token.delayed.Load() {
		token.refund()
		return nil, &delayReplacedError{attempt: int(c.attempts.Load()) + 1, err: token.err}
	}
	if pending == nil {
		c.attempts.Add(1)
		return r.RetryerV2.GetAttemptToken(ctx)
	}
	// The inner retryer may still wait here (the adaptive mode's
	// client-side rate limiter sleeps until it has a token): bound that
	// wait.
	wctx, cancel := context.WithDeadline(ctx, pending.deadline)
	release, err = r.RetryerV2.GetAttemptToken(wctx)
	cancel()
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		token.refund()
		attempts := int(c.attempts.Load())
		return nil, &ExhaustedError{Reason: "elapsed time", Attempts: attempts, Err: pending.err,
			detail: fmt.Sprintf("the retryer's wait for attempt %d reached %v", attempts+1, b.MaxElapsed)}
	}
	if err == nil {
		c.attempts.Add(1)
	}
	return release, err
}

func (r *retryer) GetRetryToken(ctx context.Context, opErr error) (func(error) error, error) {
	b := r.budget
	if p := probeIn(opErr); p != nil {
		p.budget = b
		return nil, p
	}
	c := callFrom(ctx)
	if c != nil {
		if ex := b.refuse(c, opErr, retryAfter(opErr)); ex != nil {
			return nil, ex
		}
	}
	release, err := r.RetryerV2.GetRetryToken(ctx, opErr)
	if err != nil {
		var qe *QuotaExceededError
		if c != nil && errors.As(err, &qe) {
			return nil, &ExhaustedError{Reason: "retry quota", Attempts: int(c.attempts.Load()), Err: opErr, Cause: qe}
		}
		return release, err
	}
	t := &retryToken{err: opErr, release: release}
	r.track(t, c != nil)
	if c != nil {
		c.token.Swap(t).untrack() // a token left by an earlier SDK call sharing c
	}
	return release, nil
}

// withoutSuccessRefund returns the release of an SDK retryer's attempt
// token with the success refund of a first attempt left out: the SDK's
// release adds it only for an attempt without error, so it is told of one
// (errRerun) whatever happened. The adaptive mode's rate limiter, which
// reads the same error, only asks whether it was a throttle.
func withoutSuccessRefund(release func(error) error) func(error) error {
	return func(err error) error {
		if err == nil {
			err = errRerun
		}
		return release(err)
	}
}

var errRerun = errors.New("streamstatus: first attempt of a call RetryStream runs again (its retry tokens are refunded instead)")

// RetryDelay is the inner retryer's, that is the budget's, delay. The SDK
// gives it the number of the attempt that failed: past the budget's
// MaxAttempts (an operation without call state, under a
// retry.AddWithMaxAttempts that lifts the limit), it refuses the retry and
// gives back the token GetRetryToken took for it.
func (r *retryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	if p := probeIn(err); p != nil {
		p.budget = r.budget
		return 0, p
	}
	t := r.match(err)
	if b := r.budget; attempt >= b.MaxAttempts {
		t.refund()
		return 0, attemptsExhausted(attempt, b.MaxAttempts, err)
	}
	return r.RetryerV2.RetryDelay(attempt, err)
}

// attemptsExhausted is the error of a call the budget's MaxAttempts
// stopped after attempts attempts, the last failing with err. It unwraps to
// the *retry.MaxAttemptsError the SDK's own limit reports, so code written
// for the SDK's errors finds it.
func attemptsExhausted(attempts, maxAttempts int, err error) *ExhaustedError {
	return &ExhaustedError{Reason: "attempts", Attempts: attempts, Err: err,
		Cause:  &retry.MaxAttemptsError{Attempt: attempts, Err: err},
		detail: fmt.Sprintf("%d of %d", attempts, maxAttempts)}
}

// delayReplacedError fails an SDK retry whose wait the client's retryer
// computed itself instead of asking the budget.
type delayReplacedError struct {
	attempt int
	err     error // the error of the attempt before
}

func (e *delayReplacedError) Error() string {
	return fmt.Sprintf("streamstatus: attempt %d not made: the client's retryer replaced the retry budget's delay "+
		"(a wrapper such as retry.AddWithMaxBackoffDelay around budget.NewStandard()); "+
		"use budget.NewStandard() unwrapped (retry.AddWithMaxAttempts and retry.AddWithErrorCodes around it are fine); "+
		"the attempt before failed: %s", e.attempt, oneLine(e.err))
}

// Unwrap returns the error of the attempt before.
func (e *delayReplacedError) Unwrap() error { return e.err }

// refuse returns why the budget allows no retry after err in call c, or
// nil. extra is a delay the SDK will wait beyond the budget's own (from an
// X-Amz-Retry-After header); 0 if none.
func (b *Budget) refuse(c *call, err error, extra time.Duration) *ExhaustedError {
	attempts := int(c.attempts.Load())
	if attempts >= b.MaxAttempts {
		return attemptsExhausted(attempts, b.MaxAttempts, err)
	}
	if b.MaxElapsed <= 0 {
		return nil
	}
	elapsed := b.Now().Sub(c.startTime())
	wait := b.shape(err).MaxDelay(attempts)
	if extra > 0 {
		// The SDK waits the Retry-After value, clamped to [backoff,
		// backoff+5s]: at most max(longest backoff, min(extra, longest+5s)).
		wait = max(wait, min(extra, wait+5*time.Second))
	}
	if elapsed+wait > b.MaxElapsed {
		return &ExhaustedError{Reason: "elapsed time", Attempts: attempts, Err: err,
			detail: fmt.Sprintf("%v elapsed + up to %v delay > %v", elapsed.Round(time.Millisecond), wait.Round(time.Millisecond), b.MaxElapsed)}
	}
	// The deadline is read on the system clock, the one the SDK sleeps on.
	c.retry.Store(&approved{deadline: time.Now().Add(b.MaxElapsed - elapsed), err: err})
	return nil
}

// approved is a retry the budget allowed: it must begin by deadline; err is
// the error of the attempt before it.
type approved struct {
	deadline time.Time
	err      error
}

// retryAfter returns the X-Amz-Retry-After delay of an HTTP error answer,
// read as the SDK's retry middleware reads it; 0 if there is none.
func retryAfter(err error) time.Duration {
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.Response == nil || re.Response.Response == nil {
		return 0
	}
	return parseRetryAfter(re.Response.Header)
}

func parseRetryAfter(h http.Header) time.Duration {
	ms, err := strconv.ParseInt(h.Get("X-Amz-Retry-After"), 10, 64)
	if err != nil || ms < 0 {
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}

// call is the per-call state the CallStart middleware (or RetryStream)
// puts in the context: when the call started, how many attempts it made,
// and the budget whose retryer made them.
type call struct {
	startOnce sync.Once
	start     time.Time
	attempts  atomic.Int32
	retryer   atomic.Pointer[Budget]
	retry     atomic.Pointer[approved]   // set by an SDK retryer's approval, taken by its next attempt
	token     atomic.Pointer[retryToken] // the token an SDK retryer took for a retry, taken by its next attempt or the call's end
	rerun     atomic.Bool                // set by RetryStream while it runs the call again, taken by its first attempt
}

// end untracks the retry token an SDK retry loop left (its retry's sleep
// was cancelled, or a wrapper's RetryDelay failed): no attempt takes it.
func (c *call) end() { c.token.Swap(nil).untrack() }

// begin starts the call's clock on b's clock, unless it runs already.
func (c *call) begin(b *Budget) { c.startOnce.Do(func() { c.start = b.Now() }) }

func (c *call) startTime() time.Time {
	c.startOnce.Do(func() {}) // publishes start to this goroutine
	return c.start
}

type callKey struct{}

func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// withCall returns ctx with call state, reusing the state already there.
func withCall(ctx context.Context) (context.Context, *call) {
	if c := callFrom(ctx); c != nil {
		return ctx, c
	}
	cc := &callCtx{Context: ctx}
	return cc, &cc.call
}

// callCtx is a context carrying call state: context.WithValue's value
// context and the state in one allocation instead of two (it runs on every
// call of an instrumented client).
type callCtx struct {
	context.Context
	call call
}

// String describes the context as context.WithValue's does.
func (c *callCtx) String() string {
	return fmt.Sprintf("%v.WithValue(streamstatus call state)", c.Context)
}

// Value returns the call state for callKey, else asks the parent.
func (c *callCtx) Value(key any) any {
	if key == (callKey{}) {
		return &c.call
	}
	return c.Context.Value(key)
}

// CallStartID is the ID of the middleware returned by CallStart.
const CallStartID = "streamstatus.CallStart"

// CallStart returns the initialize middleware that gives each call the
// state a budget's retryer measures it by: its start (on the budget's
// clock, at the first attempt) and its attempts. It works for any budget,
// and does nothing else for clients without one. It also returns an
// *ExhaustedError as the call's only error, instead of joined after the
// last attempt's error as the SDK's retry loop joins it.
//
// The streamstatus middleware package installs it on every operation it
// instruments; install it yourself only on stacks without those
// middlewares. A call inside RetryStream shares RetryStream's state, so
// one budget bounds both.
func CallStart() smithymiddleware.InitializeMiddleware { return callStartMiddleware{} }

type callStartMiddleware struct{}

// ID returns CallStartID.
func (callStartMiddleware) ID() string { return CallStartID }

func (callStartMiddleware) HandleInitialize(ctx context.Context, in smithymiddleware.InitializeInput, next smithymiddleware.InitializeHandler) (
	smithymiddleware.InitializeOutput, smithymiddleware.Metadata, error,
) {
	ctx, c := withCall(ctx)
	out, md, err := next.HandleInitialize(ctx, in)
	c.end()
	return out, md, c.exhaustedAlone(err)
}

// exhaustedAlone returns the *ExhaustedError in err's chain, if any, as the
// call's only error, else err. A *retry.MaxAttemptsError of a call whose
// attempts reached its budget's MaxAttempts (the SDK's retry loop checks
// the same limit first when nothing lifted it) becomes the budget's
// *ExhaustedError, as when the budget stops the call itself.
func (c *call) exhaustedAlone(err error) error {
	if err == nil {
		return nil // before the variables below: their addresses escape, so they cost allocations
	}
	var ex *ExhaustedError
	if errors.As(err, &ex) {
		return ex
	}
	var mae *retry.MaxAttemptsError
	if b := c.retryer.Load(); b != nil && errors.As(err, &mae) {
		if attempts := int(c.attempts.Load()); attempts >= b.MaxAttempts {
			ex := attemptsExhausted(attempts, b.MaxAttempts, mae.Err)
			ex.Cause = mae
			return ex
		}
	}
	return err
}

// UsedBudget returns the budget whose retryer made the attempts of the
// call ctx belongs to, or nil: none yet, or not a budget's retryer. The
// streamstatus middlewares use it to fail calls whose client retryer does
// not match the budget they were given. A wrapper around the budget's
// retryer passes GetAttemptToken through, so UsedBudget cannot tell it
// apart; a wrapper that replaces the budget's delay is caught by the
// budget's retryer itself, at the first retry (see Budget.NewStandard).
func UsedBudget(ctx context.Context) *Budget {
	if c := callFrom(ctx); c != nil {
		return c.retryer.Load()
	}
	return nil
}

// Of returns the Budget a retryer was built from by NewStandard or
// NewAdaptive, or nil. It sees through wrappers that leave the budget's
// decisions alone, such as the SDK's retry.AddWithMaxAttempts (which the
// client adds itself for cfg.RetryMaxAttempts, and which the budget's own
// MaxAttempts bounds anyway) and retry.AddWithErrorCodes: a wrapper that
// replaces how long, or whether, the client waits before a retry (such as
// retry.AddWithMaxBackoffDelay) is not the budget's retryer. A wrapper
// that passes the error on wrapped (or wraps the answer) still leaves the
// decision to the budget, as the budget's retryer itself counts it.
//
// It asks r, without side effects on a budget's retryer: the three methods
// that decide a retry and its wait (GetAttemptToken, GetRetryToken and
// RetryDelay) must each be answered by the same budget's retryer. Other
// retryers are asked only RetryDelay, which the SDK's compute without side
// effects.
func Of(r aws.Retryer) *Budget {
	if br, ok := r.(interface{ Budget() *Budget }); ok {
		return br.Budget()
	}
	v2, ok := r.(aws.RetryerV2)
	if !ok {
		return nil
	}
	p := &probe{}
	if _, err := r.RetryDelay(1, p); !holds(err, p) || p.budget == nil {
		return nil
	}
	b := p.budget
	// The context is cancelled: a retryer that forwards it elsewhere takes
	// no token and sleeps not.
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), probeKey{}, p))
	cancel()
	p.budget = nil
	if _, err := v2.GetRetryToken(ctx, p); !holds(err, p) || p.budget != b {
		return nil
	}
	p.budget = nil
	if _, err := v2.GetAttemptToken(ctx); !holds(err, p) || p.budget != b {
		return nil
	}
	return b
}

// probe is the question Of asks a retryer; a budget's retryer answers it
// with its budget and the probe as the error. A wrapper may pass it on
// wrapped, or wrap the answer: the probe is found in either.
type probe struct{ budget *Budget }

// probeIn returns the probe in err's chain, or nil.
func probeIn(err error) *probe {
	var p *probe
	if errors.As(err, &p) {
		return p
	}
	return nil
}

func (*probe) Error() string { return "streamstatus: probe of the retryer (backoff.Of)" }

type probeKey struct{}
