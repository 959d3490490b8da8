package middleware

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	smithymiddleware "github.com/aws/smithy-go/middleware"

	"github.com/streamstatus/streamstatus/backoff"
)

// IDs of the middlewares, stable across releases.
const (
	DeserializeID = "streamstatus.Deserialize"
	FinalizeID    = "streamstatus.Finalize"
	BodyGuardID   = "streamstatus.RequestBodyGuard"
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
func WithBedrock(opts ...Option) func(*bedrockruntime.Options) {
	r := resolve(opts)
	apiOption := r.apiOption()
	return func(o *bedrockruntime.Options) {
		o.APIOptions = append(o.APIOptions, apiOption)
		if r.budget != nil && backoff.Of(o.Retryer) != r.budget {
			o.Retryer = r.budget.NewStandard()
		}
	}
}

// APIOption returns the middlewares as a generic API option, for any
// aws-sdk-go-v2 client:
//
//	c := sagemakerruntime.NewFromConfig(cfg, sagemakerruntime.WithAPIOptions(middleware.APIOption()))
//
// On a stack without a response event stream it does nothing. Installing
// twice on one stack (for example through both AppendMiddlewares and
// WithBedrock) installs once; the first installation's options win, except
// the stall timeouts (WithFirstEventTimeout, WithIdleTimeout): those of the
// last installation that names any win, so a per-call option can set them
// for one call.
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
func AppendMiddlewares(apiOptions *[]func(*smithymiddleware.Stack) error, opts ...Option) {
	*apiOptions = append(*apiOptions, APIOption(opts...))
}

// The finalize middlewares hold no state; one value of each serves every
// stack.
var (
	finalize  = &finalizeMiddleware{}
	bodyGuard = &bodyGuardMiddleware{}
)

// install places the middlewares on one operation's stack.
func install(stack *smithymiddleware.Stack, r *resolved) error {
	if _, ok := stack.Deserialize.Get(eventStreamDeserializerID); !ok {
		return nil // no response event stream: nothing to do, at no cost per call
	}
	if _, ok := stack.Finalize.Get(inputStreamWriterID); ok {
		return nil // input event streams (bidirectional) are out of scope
	}
	if _, ok := stack.Build.Get(inputStreamBuildID); ok {
		return nil
	}
	if r.err != nil {
		return r.err
	}
	if existing, ok := stack.Deserialize.Get(DeserializeID); ok {
		return r.overrideTimeouts(stack, existing) // already installed
	}
	if _, ok := stack.Finalize.Get(retryID); !ok {
		return fmt.Errorf("streamstatus: operation %s has no %q finalize middleware to install after; "+
			"streamstatus needs the SDK's retry middleware (is a custom stack removing it?)", stack.ID(), retryID)
	}
	if err := stack.Deserialize.Insert(r.deserialize, eventStreamDeserializerID, smithymiddleware.After); err != nil {
		return fmt.Errorf("streamstatus: install %s on %s: %w", DeserializeID, stack.ID(), err)
	}
	if err := stack.Finalize.Insert(finalize, retryID, smithymiddleware.After); err != nil {
		return fmt.Errorf("streamstatus: install %s on %s: %w", FinalizeID, stack.ID(), err)
	}
	if err := stack.Finalize.Add(bodyGuard, smithymiddleware.After); err != nil {
		return fmt.Errorf("streamstatus: install %s on %s: %w", BodyGuardID, stack.ID(), err)
	}
	if r.callStart != nil {
		if err := stack.Initialize.Add(r.callStart, smithymiddleware.Before); err != nil {
			return fmt.Errorf("streamstatus: install %s on %s: %w", backoff.CallStartID, stack.ID(), err)
		}
	}
	return nil
}

// overrideTimeouts lets the stall timeouts of a later installation on the
// same stack (a per-call option over the client's, a client option over
// the config's) win for that call, when it names any; the rest of the
// first installation's options stay.
func (r *resolved) overrideTimeouts(stack *smithymiddleware.Stack, existing smithymiddleware.DeserializeMiddleware) error {
	m, ok := existing.(*deserializeMiddleware)
	if !r.timeoutsSet || !ok || (m.opts.firstEvent == r.firstEvent && m.opts.idle == r.idle) {
		return nil
	}
	o := *m.opts
	o.firstEvent, o.idle = r.firstEvent, r.idle
	if _, err := stack.Deserialize.Swap(DeserializeID, &deserializeMiddleware{opts: &o}); err != nil {
		return fmt.Errorf("streamstatus: set the stall timeouts of %s on %s: %w", DeserializeID, stack.ID(), err)
	}
	return nil
}
