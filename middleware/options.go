package middleware

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamstatus/streamstatus/backoff"
	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/internal/streamerr"
)

// DefaultNonContentEvents are the event types that do not count as content:
// an exception right after them is still retried transparently, because the
// consumer has seen nothing it would see twice.
//
// messageStart is ConverseStream's opening event (it carries only the role);
// initial-response is the opening event of RPC-style event-stream protocols.
var DefaultNonContentEvents = []string{"messageStart", "initial-response"}

// DefaultReadAheadLimit bounds how many bytes of non-content events are held
// while waiting for the first content event. Past it, the stream is treated
// as having started. With it, a stream holds at most its largest frame (the
// scanner's buffer) plus 64 KiB.
const DefaultReadAheadLimit = 64 << 10

// Options configure the middlewares.
type Options struct {
	// Classifier maps exceptions to status, code and retry decision.
	// Defaults to classify.New(classify.DefaultTables()...), built once and
	// shared by every installation that names none.
	Classifier *classify.Classifier

	// NonContentEvents lists the :event-type values that do not count as
	// content. Defaults to DefaultNonContentEvents. An empty, non-nil slice
	// makes every event count as content.
	NonContentEvents []string

	// ReadAheadLimit bounds the bytes of non-content events held before the
	// first content event (see WithReadAheadLimit). Zero means
	// DefaultReadAheadLimit.
	ReadAheadLimit int

	// DisableErrorEnvelopes turns off the detection of in-band error
	// envelopes (an Anthropic {"type":"error"} chunk on Bedrock's
	// InvokeModelWithResponseStream), which is on by default (see
	// WithDisableErrorEnvelopes).
	DisableErrorEnvelopes bool

	// Budget, when set, is the retry budget of the clients the middlewares
	// are installed on (see WithBudget).
	Budget *backoff.Budget

	// FirstEventTimeout, when positive, fails an attempt whose stream
	// carries no content event within this long of its response headers
	// (see WithFirstEventTimeout). Zero: no limit.
	FirstEventTimeout time.Duration

	// IdleTimeout, when positive, fails a stream that delivers no byte for
	// this long while the next frame is awaited (see WithIdleTimeout).
	// Zero: no limit.
	IdleTimeout time.Duration

	// firstEventSet, idleSet and readAheadSet record that
	// WithFirstEventTimeout, WithIdleTimeout and WithReadAheadLimit were
	// used, so that a later installation (per call) can set a timeout to 0
	// (none) or the read-ahead limit to 0 (the default) over an earlier
	// one's.
	firstEventSet, idleSet, readAheadSet bool

	// budgetSet records that WithBudget was used, so that WithBudget(nil)
	// fails instead of silently installing no budget.
	budgetSet bool
}

// Option changes Options.
type Option func(*Options)

// WithClassifier sets the classifier (see classify.New for overriding rows).
func WithClassifier(c *classify.Classifier) Option {
	return func(o *Options) { o.Classifier = c }
}

// WithNonContentEvents sets the event types that do not count as content,
// replacing DefaultNonContentEvents. Call it with no arguments to make every
// event count as content (then only an exception before the very first
// event is retried transparently).
func WithNonContentEvents(eventTypes ...string) Option {
	return func(o *Options) { o.NonContentEvents = append([]string{}, eventTypes...) }
}

// WithDisableErrorEnvelopes turns off the detection of in-band error
// envelopes: such chunks then reach the consumer as content, as with the
// bare SDK.
func WithDisableErrorEnvelopes() Option {
	return func(o *Options) { o.DisableErrorEnvelopes = true }
}

// WithReadAheadLimit sets how many bytes of non-content events a stream may
// hold while it waits for its first content event (DefaultReadAheadLimit by
// default). Past the limit the stream counts as started: an exception after
// it reaches the consumer through stream.Err() instead of being retried. A
// stream holds at most its largest frame plus this many bytes. 0 means
// DefaultReadAheadLimit, also given per call over a client's own limit. A
// negative n fails the first call with an error naming the option.
func WithReadAheadLimit(n int) Option {
	return func(o *Options) { o.ReadAheadLimit, o.readAheadSet = n, true }
}

// WithBudget puts the clients under a retry budget.
//
// With WithBedrock, the client's retryer becomes budget.NewStandard(), or
// budget.NewAdaptive() when the client is adaptive (its RetryMode is
// aws.RetryModeAdaptive, or its retryer a retry.AdaptiveMode, wrapped in the
// SDK's wrappers or not; one option value installs one such retryer per
// mode and RetryMaxAttempts, shared by the calls and clients it is given
// to, so per call the adaptive rate limiter keeps what earlier calls met;
// an option built anew for every call starts a fresh one each time; a
// retryer of the client's own keeps deciding which errors are retried, and
// its limit of attempts holds when below the budget's, unless it is the
// SDK's default 3),
// unless it already is a retryer
// of this budget (for example budget.NewAdaptive() set as
// aws.Config.Retryer), under the client's
// RetryMaxAttempts when it has one, at construction and per call alike (a
// limit below MaxAttempts still holds). With APIOption and
// AppendMiddlewares, which cannot reach a client's retryer, set it yourself:
//
//	cfg.Retryer = func() aws.Retryer { return budget.NewStandard() }
//	middleware.AppendMiddlewares(&cfg.APIOptions, middleware.WithBudget(budget))
//
// The budget is the client's retryer, so it holds for every operation of
// the client, streaming or not: with WithBudget, the install puts the
// call state the budget's limits measure (backoff.CallStart: each call's
// start and attempts) and the retryer check on every operation, and the
// event-stream middlewares on streaming ones only. A call whose
// retryer is not built from the budget fails before it is sent, with an
// error saying so: a budget is never silently off. A retryer wrapper that
// replaces the budget's delays (retry.AddWithMaxBackoffDelay around
// budget.NewStandard()) passes that check, since no middleware can see a
// client's retryer: its first retry is refused instead, naming the fix
// (WithBedrock replaces such a retryer with the budget's, as above). A
// cfg.RetryMaxAttempts or AWS_MAX_ATTEMPTS above the budget's MaxAttempts
// does not lift it.
// Without a budget, operations without a response event stream are left
// untouched.
//
// A nil budget, or one backoff.NewBudget did not build (a struct literal),
// fails every call with an error naming the fix (see
// backoff.Budget.Validate).
func WithBudget(budget *backoff.Budget) Option {
	return func(o *Options) { o.Budget, o.budgetSet = budget, true }
}

// WithFirstEventTimeout fails an attempt whose stream carries no content
// event within d of its response headers: the plugin closes the connection
// and the attempt fails with a retryable *smithyext.StatusError (code
// classify.CodeStreamStalled, no HTTP status), which the client's retryer
// retries with its backoff and quota, at the cost of a transient failure
// (not a throttle's discount). Non-content events (NonContentEvents, such
// as messageStart) do not stop the clock. The clock counts the time the
// plugin waits for bytes: when the read-ahead hands the stream over before
// content (ReadAheadLimit), the time the consumer spends before its next
// read does not count. It measures time to first content, the model's cold
// start included: pick d well above the model's usual time to first token.
//
// Off by default. Given per call (as an argument of the operation), it
// overrides the timeouts of the client's installation for that call.
// A negative d fails the first call with an error naming the option.
func WithFirstEventTimeout(d time.Duration) Option {
	return func(o *Options) { o.FirstEventTimeout, o.firstEventSet = d, true }
}

// WithIdleTimeout fails a stream that delivers no byte for d while the
// plugin waits for the next frame (time the consumer spends on an event
// does not count). Before content the attempt fails and is retried, as
// with WithFirstEventTimeout; after content stream.Err() is the retryable
// *smithyext.StatusError (code classify.CodeStreamStalled) counting the
// events delivered, and nothing is re-sent.
//
// Off by default. Given per call, it overrides the client's timeouts for
// that call. A negative d fails the first call with an error naming the
// option.
func WithIdleTimeout(d time.Duration) Option {
	return func(o *Options) { o.IdleTimeout, o.idleSet = d, true }
}

// resolved is Options after defaults, in the form the middlewares use.
type resolved struct {
	given          Options // as the options set them, before defaults
	classifier     *streamerr.Classifier
	nonContent     map[string]struct{}
	readAheadLimit int
	budget         *backoff.Budget
	envelopes      bool
	// deserialize and finalize are the middleware values every stack
	// gets, built once.
	deserialize *deserializeMiddleware
	finalize    *finalizeMiddleware
	// merged caches the last merge of this installation's options over an
	// earlier installation's (see over): one entry, so an option value
	// reused over many earlier installations (clients built per tenant, a
	// per-call option shared across them) holds nothing more.
	merged atomic.Pointer[mergedOptions]

	// waiting counts this installation's attempts waiting for their
	// responses (inside the deserialize step); while at least GOMAXPROCS
	// others wait, a response's read-ahead runs on the caller
	// (deserializeMiddleware.send, streamBody.callerReads).
	waiting atomic.Int64

	// Stall timeouts (0: off); err reports an invalid value on the first
	// call.
	firstEvent, idle time.Duration
	err              error
}

func resolve(opts []Option) *resolved {
	var o Options
	for _, fn := range opts {
		fn(&o)
	}
	return resolveOptions(o)
}

// defaultClassifier is the classifier of options that name none, built
// from the default tables on first use and shared by every installation
// (each built its own before: 93 allocations, 23 KB, about 10 µs per
// client): a classify.Classifier is read-only once built.
var defaultClassifier = sync.OnceValue(func() *classify.Classifier {
	return classify.New(classify.DefaultTables()...)
})

func resolveOptions(o Options) *resolved {
	r := &resolved{given: o, readAheadLimit: o.ReadAheadLimit, budget: o.Budget, envelopes: !o.DisableErrorEnvelopes}
	c := o.Classifier
	if c == nil {
		c = defaultClassifier()
	}
	r.classifier = streamerr.New(c)
	if r.readAheadLimit <= 0 {
		r.readAheadLimit = DefaultReadAheadLimit
	}
	events := o.NonContentEvents
	if events == nil {
		events = DefaultNonContentEvents
	}
	r.nonContent = make(map[string]struct{}, len(events))
	for _, e := range events {
		r.nonContent[e] = struct{}{}
	}
	r.firstEvent, r.idle = o.FirstEventTimeout, o.IdleTimeout
	switch {
	case r.firstEvent < 0:
		r.err = fmt.Errorf("streamstatus: WithFirstEventTimeout(%v): the timeout must be positive, or 0 for none", r.firstEvent)
	case r.idle < 0:
		r.err = fmt.Errorf("streamstatus: WithIdleTimeout(%v): the timeout must be positive, or 0 for none", r.idle)
	case o.ReadAheadLimit < 0:
		r.err = fmt.Errorf("streamstatus: WithReadAheadLimit(%d): the limit must be positive, or 0 for the default", o.ReadAheadLimit)
	case o.budgetSet && o.Budget == nil:
		r.err = errors.New("streamstatus: WithBudget(nil): the budget is nil; build it with backoff.NewBudget before passing it")
	case o.Budget != nil:
		r.err = o.Budget.Validate() // names backoff.NewBudget or the field to fix
	}
	r.deserialize = &deserializeMiddleware{opts: r}
	r.finalize = &finalizeMiddleware{opts: r}
	return r
}

// over returns the options of a later installation on a stack already
// installed with earlier: earlier's options, with every option this one
// sets explicitly taking precedence (a later install is the more specific:
// config-wide, then client, then call). It returns earlier itself when this
// installation changes nothing.
func (r *resolved) over(earlier *resolved) *resolved {
	if m := r.merged.Load(); m != nil && m.earlier == earlier {
		return m.merged
	}
	o, later, changed := earlier.given, r.given, false
	if later.Classifier != nil && later.Classifier != o.Classifier {
		o.Classifier, changed = later.Classifier, true
	}
	// An explicit empty list (every event is content) differs from the
	// default (nil), although slices.Equal says they are equal.
	if later.NonContentEvents != nil && (o.NonContentEvents == nil || !slices.Equal(later.NonContentEvents, o.NonContentEvents)) {
		o.NonContentEvents, changed = later.NonContentEvents, true
	}
	if (later.readAheadSet || later.ReadAheadLimit != 0) && later.ReadAheadLimit != o.ReadAheadLimit {
		o.ReadAheadLimit, changed = later.ReadAheadLimit, true
	}
	if later.DisableErrorEnvelopes && !o.DisableErrorEnvelopes {
		o.DisableErrorEnvelopes, changed = true, true
	}
	if later.Budget != nil && later.Budget != o.Budget {
		o.Budget, changed = later.Budget, true
	}
	if (later.firstEventSet || later.FirstEventTimeout != 0) && later.FirstEventTimeout != o.FirstEventTimeout {
		o.FirstEventTimeout, changed = later.FirstEventTimeout, true
	}
	if (later.idleSet || later.IdleTimeout != 0) && later.IdleTimeout != o.IdleTimeout {
		o.IdleTimeout, changed = later.IdleTimeout, true
	}
	merged := earlier
	if changed {
		merged = resolveOptions(o)
	}
	r.merged.Store(&mergedOptions{earlier: earlier, merged: merged})
	return merged
}

// mergedOptions is one cached result of over.
type mergedOptions struct{ earlier, merged *resolved }
