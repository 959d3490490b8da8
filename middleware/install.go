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
//
// WithBedrock also makes one client safe for many goroutines: smithy-go
// v1.28.9 decodes every response stream of a client through one shared
// event-stream codec, so concurrent streams race and, with an event type the
// SDK does not know, receive each other's bytes (smithy-go #714). WithBedrock
// gives each stream its own codec (protocol.go), at construction or per call.
// A Protocol you set yourself in the client's options is left as it is.
func WithBedrock(opts ...Option) func(*bedrockruntime.Options) {
	r := resolve(opts)
	apiOption := r.apiOption()
	return func(o *bedrockruntime.Options) {
		o.APIOptions = append(o.APIOptions, apiOption)
		isolateClientProtocol(o) // one event-stream codec per stream: protocol.go
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

// The body guard holds no state; one value serves every stack.
var bodyGuard = &bodyGuardMiddleware{}

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
	if m, ok := stack.Deserialize.Get(DeserializeID); ok {
		return reinstall(stack, m.(*deserializeMiddleware).opts, r)
	}
	if _, ok := stack.Finalize.Get(retryID); !ok {
		return fmt.Errorf("streamstatus: operation %s has no %q finalize middleware to install after; "+
			"streamstatus needs the SDK's retry middleware (is a custom stack removing it?)", stack.ID(), retryID)
	}
	if err := stack.Deserialize.Insert(r.deserialize, eventStreamDeserializerID, smithymiddleware.After); err != nil {
		return fmt.Errorf("streamstatus: install %s on %s: %w", DeserializeID, stack.ID(), err)
	}
	if err := stack.Finalize.Insert(r.finalize, retryID, smithymiddleware.After); err != nil {
		return fmt.Errorf("streamstatus: install %s on %s: %w", FinalizeID, stack.ID(), err)
	}
	if err := stack.Finalize.Add(bodyGuard, smithymiddleware.After); err != nil {
		return fmt.Errorf("streamstatus: install %s on %s: %w", BodyGuardID, stack.ID(), err)
	}
	if err := addObserver(stack); err != nil {
		return err
	}
	if _, ok := stack.Initialize.Get(backoff.CallStartID); !ok {
		if err := stack.Initialize.Add(backoff.CallStart(), smithymiddleware.Before); err != nil {
			return fmt.Errorf("streamstatus: install %s on %s: %w", backoff.CallStartID, stack.ID(), err)
		}
	}
	return nil
}

// reinstall applies a later installation's options to a stack installed
// with earlier ones (see APIOption).
func reinstall(stack *smithymiddleware.Stack, earlier, later *resolved) error {
	r := later.over(earlier)
	if r == earlier {
		return nil
	}
	if _, err := stack.Deserialize.Swap(DeserializeID, r.deserialize); err != nil {
		return fmt.Errorf("streamstatus: reinstall %s on %s: %w", DeserializeID, stack.ID(), err)
	}
	if _, err := stack.Finalize.Swap(FinalizeID, r.finalize); err != nil {
		return fmt.Errorf("streamstatus: reinstall %s on %s: %w", FinalizeID, stack.ID(), err)
	}
	return nil
}
