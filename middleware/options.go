package middleware

import (
	"fmt"
	"time"

	smithymiddleware "github.com/aws/smithy-go/middleware"

	"github.com/streamstatus/streamstatus/backoff"
	"github.com/streamstatus/streamstatus/classify"
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
	// Defaults to classify.Default().
	Classifier *classify.Classifier

	// NonContentEvents lists the :event-type values that do not count as
	// content. Defaults to DefaultNonContentEvents. An empty, non-nil slice
	// makes every event count as content.
	NonContentEvents []string

	// ReadAheadLimit bounds the bytes of non-content events held before the
	// first content event. Defaults to DefaultReadAheadLimit.
	ReadAheadLimit int

	// DisableEnvelopes turns off the detection of in-band error envelopes
	// (an Anthropic {"type":"error"} chunk on Bedrock's
	// InvokeModelWithResponseStream), which is on by default.
	DisableEnvelopes bool

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

	timeoutsSet bool // WithFirstEventTimeout or WithIdleTimeout was used
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

// WithoutErrorEnvelopes turns off the detection of in-band error envelopes:
// such chunks then reach the consumer as content, as with the bare SDK.
func WithoutErrorEnvelopes() Option {
	return func(o *Options) { o.DisableEnvelopes = true }
}

// WithBudget puts the clients under a retry budget.
//
// With WithBedrock, the client's retryer becomes budget.NewStandard()
// (unless it already is a retryer of this budget, for example
// budget.NewAdaptive() set as aws.Config.Retryer). With APIOption and
// AppendMiddlewares, which cannot reach a client's retryer, set it yourself:
//
//	cfg.Retryer = func() aws.Retryer { return budget.NewStandard() }
//	middleware.AppendMiddlewares(&cfg.APIOptions, middleware.WithBudget(budget))
//
// In both cases the middlewares mark when each call starts, which the
// budget's elapsed-time limit measures from.
func WithBudget(budget *backoff.Budget) Option {
	return func(o *Options) { o.Budget = budget }
}

// WithFirstEventTimeout fails an attempt whose stream carries no content
// event within d of its response headers: the plugin closes the connection
// and the attempt fails with a retryable *smithyext.StatusError (code
// classify.CodeStreamStalled, no HTTP status), which the client's retryer
// retries like a first-frame throttle. Non-content events
// (NonContentEvents, such as messageStart) do not stop the clock. It
// measures time to first content, the model's cold start included: pick d
// well above the model's usual time to first token.
//
// Off by default. Given per call (as an argument of the operation), it
// overrides the timeouts of the client's installation for that call.
// A negative d fails the first call with an error naming the option.
func WithFirstEventTimeout(d time.Duration) Option {
	return func(o *Options) { o.FirstEventTimeout = d; o.timeoutsSet = true }
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
	return func(o *Options) { o.IdleTimeout = d; o.timeoutsSet = true }
}

// resolved is Options after defaults, in the form the middlewares use.
type resolved struct {
	classifier     *classify.Classifier
	nonContent     map[string]struct{}
	readAheadLimit int
	budget         *backoff.Budget
	envelopes      bool
	// deserialize and callStart (with a budget) are the middleware values
	// every stack gets, built once.
	deserialize *deserializeMiddleware
	callStart   smithymiddleware.InitializeMiddleware

	// Stall timeouts (0: off); timeoutsSet when an option named them, so
	// a per-call installation can override the client's; err reports an
	// invalid value on the first call.
	firstEvent, idle time.Duration
	timeoutsSet      bool
	err              error
}

func resolve(opts []Option) *resolved {
	var o Options
	for _, fn := range opts {
		fn(&o)
	}
	r := &resolved{classifier: o.Classifier, readAheadLimit: o.ReadAheadLimit, budget: o.Budget, envelopes: !o.DisableEnvelopes}
	if r.classifier == nil {
		r.classifier = classify.Default()
	}
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
	r.firstEvent, r.idle, r.timeoutsSet = o.FirstEventTimeout, o.IdleTimeout, o.timeoutsSet
	switch {
	case r.firstEvent < 0:
		r.err = fmt.Errorf("streamstatus: WithFirstEventTimeout(%v): the timeout must be positive, or 0 for none", r.firstEvent)
	case r.idle < 0:
		r.err = fmt.Errorf("streamstatus: WithIdleTimeout(%v): the timeout must be positive, or 0 for none", r.idle)
	}
	r.deserialize = &deserializeMiddleware{opts: r}
	if r.budget != nil {
		r.callStart = r.budget.CallStart()
	}
	return r
}
