package middleware

import (
	"fmt"
	"reflect"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	smithymiddleware "github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/streamstatus/streamstatus/backoff"
)

// IDs of the middlewares, stable across releases. A third stream
// middleware, "streamstatus.AwaitReadAhead", goes right outside the SDK's
// OperationEventStreamDeserializer (deserialize.go). The request-body
// guard is part of the DeserializeID middleware (it was a finalize
// middleware of its own, "streamstatus.RequestBodyGuard", before issue 20:
// each middleware on a stack costs an allocation per call); a second copy
// under that ID goes last in the deserialize step only when the client
// logs request bodies (aws.LogRequestWithBody).
const (
	DeserializeID = "streamstatus.Deserialize"
	FinalizeID    = "streamstatus.Finalize"
)

// IDs of the SDK middlewares ours are placed against.
const (
	eventStreamDeserializerID = "OperationEventStreamDeserializer"
	retryID                   = "Retry"
	// Present only on operations with an input event stream.
	inputStreamWriterID = "InitializeStreamWriter"
	inputStreamBuildID  = "EventStreamBuildMiddleware"
)

// WithBedrock returns the option that installs the middlewares on a
// bedrockruntime client:
//
//	client := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock())
//
// It may also be passed per call, as the last argument of ConverseStream or
// InvokeModelWithResponseStream.
//
// WithBedrock also makes one client safe for many goroutines: smithy-go
// v1.28.9 encodes and decodes every event stream of a client through one
// shared event-stream codec, so concurrent streams race and, with an event
// type the SDK does not know, receive each other's bytes (smithy-go #714).
// WithBedrock gives each response stream its own codec, and each input event
// (InvokeModelWithBidirectionalStream's Send) a codec of its own for the
// time it is encoded (protocol.go), at construction or per call.
//
// Cost: at construction, none per stream measurable. Per call, build the
// option once and pass the same value to every call: the isolation then
// costs about 2 allocations per stream (codecs are pooled per option value);
// an option built anew for every call pools nothing and costs about 9.
//
// To do this WithBedrock wraps the client's Protocol option when it is a
// restJson1 protocol (*restjson1.Protocol), which bedrockruntime.New always
// sets before applying options; a restJson1 protocol you set yourself cannot
// be told apart from it and is wrapped too (its requests and responses still
// go through it; only event-stream messages use WithBedrock's codecs). A
// protocol of any other type is left as it is, and then its streams are
// isolated only if it does that itself.
func WithBedrock(opts ...Option) func(*bedrockruntime.Options) {
	r := resolve(opts)
	apiOption := r.apiOption()
	codecs := newCodecPool()
	replacements := &budgetRetryers{}
	return func(o *bedrockruntime.Options) {
		o.APIOptions = append(o.APIOptions, apiOption)
		isolateClientProtocol(o, codecs) // one event-stream codec per stream: protocol.go
		if r.budget == nil {
			return
		}
		if used := backoff.Of(o.Retryer); used != r.budget {
			b := replacements.retryer(r.budget, adaptive(o), o.RetryMaxAttempts)
			if own := ownRetryer(o.Retryer); own != nil {
				b = keepClientRules(b, own) // one WithBedrock installed before: the client's own retryer is inside
			} else if used == nil { // the client's own retryer, not another budget's (replaced whole)
				b = keepClientRules(b, o.Retryer)
			}
			o.Retryer = b
		}
	}
}

// keepClientRules returns the budget's retryer b, installed in place of the
// client's own retryer c, with what c decided that the budget does not:
// which errors are retried (c's IsErrorRetryable: retry.AddWithErrorCodes
// adds to it, a NewStandard's Retryables may take from it; the SDK's
// default is the budget retryer's own), and a limit of attempts below the
// budget's, unless it is the SDK's default (retry.DefaultMaxAttempts, which
// cannot be told from the default a client gets without a retryer of its
// own; the budget's MaxAttempts then decides).
func keepClientRules(b, c aws.Retryer) aws.Retryer {
	if c == nil {
		return b
	}
	if n := c.MaxAttempts(); n > 0 && n != retry.DefaultMaxAttempts && n < b.MaxAttempts() {
		b = retry.AddWithMaxAttempts(b, n)
	}
	v2, ok := b.(aws.RetryerV2)
	if !ok {
		return b
	}
	return &clientRetryables{RetryerV2: v2, client: c}
}

// clientRetryables is the budget's retryer (RetryerV2) with the client's
// own retryer deciding which errors are retried: backoff.Of sees through
// it, as it leaves every other decision to the budget's.
type clientRetryables struct {
	aws.RetryerV2
	client aws.Retryer
}

// IsErrorRetryable reports whether the client's own retryer would retry
// err.
func (r *clientRetryables) IsErrorRetryable(err error) bool {
	return r.client.IsErrorRetryable(err)
}

// budgetRetryers are the budget's retryers one WithBedrock option value
// installs in place of clients' own, one per retry mode and
// RetryMaxAttempts: the same option passed on every call installs the same
// retryer, so an adaptive mode's client-side rate limiter keeps what
// earlier calls met (a fresh one per call would never slow the client
// down). Clients given one option value share its retryers, as they share
// its budget.
type budgetRetryers struct {
	mu sync.Mutex
	m  map[budgetRetryerKey]aws.Retryer
}

type budgetRetryerKey struct {
	adaptive    bool
	maxAttempts int
}

// retryer returns the budget's retryer for the mode and RetryMaxAttempts,
// built on first use. Per call, the SDK does not wrap a replaced retryer
// in the client's RetryMaxAttempts again (only a per-call value that
// differs): the user's limit is kept here. At construction the SDK wraps
// it once more with the same value, which changes nothing.
func (rs *budgetRetryers) retryer(b *backoff.Budget, adaptive bool, maxAttempts int) aws.Retryer {
	key := budgetRetryerKey{adaptive, max(maxAttempts, 0)}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if r, ok := rs.m[key]; ok {
		return r
	}
	var r aws.Retryer
	if adaptive {
		r = b.NewAdaptive()
	} else {
		r = b.NewStandard()
	}
	if key.maxAttempts > 0 {
		r = retry.AddWithMaxAttempts(r, key.maxAttempts)
	}
	if rs.m == nil {
		rs.m = map[budgetRetryerKey]aws.Retryer{}
	}
	rs.m[key] = r
	return r
}

// adaptive reports whether a client retries in the adaptive mode: its
// RetryMode says so, or its retryer is a retry.AdaptiveMode, alone or
// inside wrappers that embed the retryer they wrap (the SDK's
// retry.AddWithMaxAttempts and the like, or a type of yours, by pointer or
// by value), as config.WithRetryer(func() aws.Retryer { return
// retry.NewAdaptiveMode() }) sets it. The budget's retryer keeps that mode:
// the adaptive mode's client-side rate limiter slows a client down under
// throttling, which the budget bounds but does not replace.
func adaptive(o *bedrockruntime.Options) bool {
	if o.RetryMode == aws.RetryModeAdaptive {
		return true
	}
	found := false
	eachRetryer(o.Retryer, func(r aws.Retryer) bool {
		_, found = r.(*retry.AdaptiveMode)
		return !found
	})
	return found
}

// ownRetryer returns the client's own retryer that an earlier WithBedrock
// kept inside the budget retryer it installed (clientRetryables), or nil.
func ownRetryer(r aws.Retryer) aws.Retryer {
	var own aws.Retryer
	eachRetryer(r, func(r aws.Retryer) bool {
		if c, ok := r.(*clientRetryables); ok {
			own = c.client
		}
		return own == nil
	})
	return own
}

// eachRetryer calls fn with r and each retryer r wraps, outermost first,
// following the first embedded retryer of each wrapper (by pointer or by
// value; an embedded nil is none), until fn returns false, for at most 16
// levels.
func eachRetryer(r aws.Retryer, fn func(aws.Retryer) bool) {
	for range 16 {
		if r == nil || !fn(r) {
			return
		}
		v := reflect.ValueOf(r)
		if v.Kind() == reflect.Pointer && !v.IsNil() {
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			return
		}
		var inner aws.Retryer
		for i := range v.NumField() { // the first embedded retryer: aws.RetryerV2, aws.Retryer, *retry.AdaptiveMode, ...
			f := v.Type().Field(i)
			if !f.Anonymous || !f.IsExported() {
				continue
			}
			fv := v.Field(i)
			if !fv.CanInterface() || (fv.Kind() == reflect.Pointer || fv.Kind() == reflect.Interface) && fv.IsNil() {
				continue
			}
			if w, ok := fv.Interface().(aws.Retryer); ok {
				inner = w
				break
			}
		}
		r = inner
	}
}

// APIOption returns the middlewares as a generic API option, for any
// aws-sdk-go-v2 client:
//
//	c := sagemakerruntime.NewFromConfig(cfg, sagemakerruntime.WithAPIOptions(middleware.APIOption()))
//
// On an operation without a response event stream it installs nothing
// (an invalid option still fails the call, as on every operation),
// unless a budget is set (WithBudget): the budget is then the retryer of
// every operation, so its call state and retryer check go on all of them
// (see WithBudget). Installing
// twice on one stack (for example through both AppendMiddlewares and
// WithBedrock) installs once, with the options of both: what the later,
// more specific installation sets (WithClassifier, WithBudget, ...) takes
// precedence, and what it leaves unset keeps the earlier one's value.
//
// An API option sees an operation's stack, never the client's options, so
// it cannot give each stream its own event-stream codec the way WithBedrock
// does: concurrent streams of one bedrockruntime client then share the
// SDK's codec exactly as without streamstatus (smithy-go #714). For Bedrock
// clients used from many goroutines, use WithBedrock, or add it per call:
// c.ConverseStream(ctx, in, middleware.WithBedrock()).
//
// The stall timeouts (WithFirstEventTimeout, WithIdleTimeout) follow the
// same rule: a per-call option that names them sets them for that call.
func APIOption(opts ...Option) func(*smithymiddleware.Stack) error {
	return resolve(opts).apiOption()
}

// apiOption is the API option that installs the middlewares with r.
func (r *resolved) apiOption() func(*smithymiddleware.Stack) error {
	return func(stack *smithymiddleware.Stack) error { return install(stack, r) }
}

// AppendMiddlewares installs the middlewares on every client made from a
// config, in the style of the OpenTelemetry AWS instrumentation:
//
//	middleware.AppendMiddlewares(&cfg.APIOptions)
//
// Like APIOption, it cannot isolate concurrent streams of one client from
// each other (smithy-go #714): for Bedrock clients used from many
// goroutines, construct them with WithBedrock as well (it installs once).
func AppendMiddlewares(apiOptions *[]func(*smithymiddleware.Stack) error, opts ...Option) {
	*apiOptions = append(*apiOptions, APIOption(opts...))
}

// install places the middlewares on one operation's stack: on an operation
// with a response event stream, all of them; on any other operation of a
// client with a budget, the budget's (CallStart and the finalize
// middleware's retryer check), since the budget is the client's retryer
// for every operation; on any other operation without a budget, nothing,
// at no cost per call.
func install(stack *smithymiddleware.Stack, r *resolved) error {
	if r.err != nil {
		return r.err // an invalid option fails every operation's call, streaming or not
	}
	streaming := hasResponseStreamOnly(stack)
	if !streaming && r.budget == nil {
		return nil
	}
	if m, ok := stack.Finalize.Get(FinalizeID); ok {
		return reinstall(stack, m.(*finalizeMiddleware).opts, r)
	}
	if _, ok := stack.Finalize.Get(retryID); !ok {
		return fmt.Errorf("streamstatus: operation %s has no %q finalize middleware to install after; "+
			"streamstatus needs the SDK's retry middleware (is a custom stack removing it?)", stack.ID(), retryID)
	}
	if streaming {
		if err := stack.Deserialize.Insert(r.deserialize, eventStreamDeserializerID, smithymiddleware.After); err != nil {
			return fmt.Errorf("streamstatus: install %s on %s: %w", DeserializeID, stack.ID(), err)
		}
		if err := stack.Deserialize.Insert(awaitReadAhead, eventStreamDeserializerID, smithymiddleware.Before); err != nil {
			return fmt.Errorf("streamstatus: install %s on %s: %w", awaitReadAhead.ID(), stack.ID(), err)
		}
	}
	if err := stack.Finalize.Insert(r.finalize, retryID, smithymiddleware.After); err != nil {
		return fmt.Errorf("streamstatus: install %s on %s: %w", FinalizeID, stack.ID(), err)
	}
	if streaming { // non-streaming operations have no stream to observe
		if err := addObserver(stack); err != nil {
			return err
		}
		if err := guardAfterRequestLogger(stack); err != nil {
			return err
		}
	}
	if _, ok := stack.Initialize.Get(backoff.CallStartID); !ok {
		if err := stack.Initialize.Add(backoff.CallStart(), smithymiddleware.Before); err != nil {
			return fmt.Errorf("streamstatus: install %s on %s: %w", backoff.CallStartID, stack.ID(), err)
		}
	}
	return nil
}

// requestLoggerID is the SDK's request/response logger, a deserialize
// middleware inside ours.
const requestLoggerID = "RequestResponseLogger"

// guardAfterRequestLogger guards the request body once more, last in the
// deserialize step, when the client logs request bodies
// (aws.LogRequestWithBody): the SDK's logger then replaces the request
// stream with its dump, a buffer with WriteTo, after the deserialize
// middleware guarded it. Only then: each middleware on a stack costs an
// allocation per call.
func guardAfterRequestLogger(stack *smithymiddleware.Stack) error {
	m, ok := stack.Deserialize.Get(requestLoggerID)
	if !ok {
		return nil
	}
	if l, ok := m.(*smithyhttp.RequestResponseLogger); !ok || !l.LogRequestWithBody {
		return nil
	}
	if err := stack.Deserialize.Add(innerBodyGuard, smithymiddleware.After); err != nil {
		return fmt.Errorf("streamstatus: install %s on %s: %w", innerBodyGuard.ID(), stack.ID(), err)
	}
	return nil
}

// hasResponseStreamOnly reports whether the operation has a response event
// stream and no input event stream (bidirectional operations are out of
// scope for the stream middlewares).
func hasResponseStreamOnly(stack *smithymiddleware.Stack) bool {
	if _, ok := stack.Deserialize.Get(eventStreamDeserializerID); !ok {
		return false
	}
	if _, ok := stack.Finalize.Get(inputStreamWriterID); ok {
		return false
	}
	_, ok := stack.Build.Get(inputStreamBuildID)
	return !ok
}

// reinstall applies a later installation's options to a stack installed
// with earlier ones (see APIOption).
func reinstall(stack *smithymiddleware.Stack, earlier, later *resolved) error {
	r := later.over(earlier)
	if r == earlier {
		return nil
	}
	if _, ok := stack.Deserialize.Get(DeserializeID); ok {
		if _, err := stack.Deserialize.Swap(DeserializeID, r.deserialize); err != nil {
			return fmt.Errorf("streamstatus: reinstall %s on %s: %w", DeserializeID, stack.ID(), err)
		}
	}
	if _, err := stack.Finalize.Swap(FinalizeID, r.finalize); err != nil {
		return fmt.Errorf("streamstatus: reinstall %s on %s: %w", FinalizeID, stack.ID(), err)
	}
	return nil
}
