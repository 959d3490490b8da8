package middleware

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/metrics"
	smithymiddleware "github.com/aws/smithy-go/middleware"
	"github.com/aws/smithy-go/tracing"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/streamstatus/streamstatus/classify"

	"github.com/streamstatus/streamstatus/internal/streamerr"
	"github.com/streamstatus/streamstatus/smithyext"
)

// ObserveID is the ID of the initialize middleware that marks when a call
// starts, for the time to first chunk. It is installed only on calls whose
// client records metrics or logs retries.
const ObserveID = "streamstatus.Observe"

// Instrument names. The failure counters and the time to first content use
// this project's namespace (OpenTelemetry has no convention for them); the
// time to first chunk is the GenAI semantic conventions' metric, recorded
// only where its Required attributes have a correct value (genAIOperation).
const (
	metricFailures            = "streamstatus.stream.failures"
	metricEventsBeforeFailure = "streamstatus.stream.events_before_failure"
	metricTimeToFirstContent  = "streamstatus.stream.time_to_first_content"
	metricTimeToFirstChunk    = "gen_ai.client.operation.time_to_first_chunk"
)

// Attribute keys. rpc.*, exception.type and http.response.status_code are
// the ones the SDK's own client.call.* instruments and spans use; error.type
// and gen_ai.provider.name follow the OpenTelemetry semantic conventions;
// streamstatus.* are this project's.
const (
	attrRPCService   = "rpc.service"
	attrRPCMethod    = "rpc.method"
	attrRPCSystem    = "rpc.system"
	attrException    = "exception.type"
	attrErrorType    = "error.type"
	attrStatusCode   = "http.response.status_code"
	attrRequestID    = "aws.request_id" // spans only: one value per call
	attrProvider     = "gen_ai.provider.name"
	attrOperation    = "gen_ai.operation.name"
	attrRequestModel = "gen_ai.request.model"
	attrRetryable    = "streamstatus.retryable"
	attrThrottle     = "streamstatus.throttle"
	attrPosition     = "streamstatus.position"
	attrSource       = "streamstatus.source"
	attrEvents       = "streamstatus.events" // spans only
	attrFirstChunkAt = "gen_ai.response.time_to_first_chunk"
)

// Values of streamstatus.position.
const (
	positionBefore = "before_content"
	positionAfter  = "after_content"
)

// streamSpanName names the span that covers one stream's life.
const streamSpanName = "EventStream"

// instruments are the metric instruments of one client call: the SDK hands
// its middlewares a new Meter on every call (addRetry calls
// MeterProvider.Meter per operation), so that is the meter they come from.
// The hot path only calls Add and Record.
type instruments struct {
	failures            metrics.Int64Counter
	eventsBeforeFailure metrics.Int64Histogram
	timeToFirstContent  metrics.Float64Histogram
	timeToFirstChunk    metrics.Float64Histogram
}

func newInstruments(meter metrics.Meter) (*instruments, error) {
	var in instruments
	var err error
	if in.failures, err = meter.Int64Counter(metricFailures, func(o *metrics.InstrumentOptions) {
		o.UnitLabel = "{failure}"
		o.Description = "The number of failures inside event streams that streamstatus converted to typed status errors"
	}); err != nil {
		return nil, err
	}
	if in.eventsBeforeFailure, err = meter.Int64Histogram(metricEventsBeforeFailure, func(o *metrics.InstrumentOptions) {
		o.UnitLabel = "{event}"
		o.Description = "The number of events a stream delivered before a failure after content"
	}); err != nil {
		return nil, err
	}
	if in.timeToFirstContent, err = meter.Float64Histogram(metricTimeToFirstContent, func(o *metrics.InstrumentOptions) {
		o.UnitLabel = "s"
		o.Description = "Time from the start of the call, retries included, to the first content event of the stream that delivered content"
	}); err != nil {
		return nil, err
	}
	if in.timeToFirstChunk, err = meter.Float64Histogram(metricTimeToFirstChunk, func(o *metrics.InstrumentOptions) {
		o.UnitLabel = "s"
		o.Description = "Time to receive the first chunk, measured from when the client issues the generation request to when the first chunk is received in the response stream"
	}); err != nil {
		return nil, err
	}
	return &in, nil
}

// callObserver is the per-call part of observation: the instruments (nil
// when the client's meter is the no-op one), whether the client logs
// retries, and when the call started. It is the initialize middleware that
// marks the start and hands itself to the deserialize middleware through
// the context.
type callObserver struct {
	inst  *instruments
	log   bool
	start time.Time
}

type callObserverKey struct{}

func (*callObserver) ID() string { return ObserveID }

func (c *callObserver) HandleInitialize(ctx context.Context, in smithymiddleware.InitializeInput, next smithymiddleware.InitializeHandler) (
	smithymiddleware.InitializeOutput, smithymiddleware.Metadata, error,
) {
	c.start = time.Now()
	return next.HandleInitialize(context.WithValue(ctx, callObserverKey{}, c), in)
}

// addObserver installs the call observer on a stack when the client
// records metrics or logs retries; otherwise it adds nothing, so a client
// with the SDK's defaults pays nothing per call.
//
// A middleware cannot see the client's Options. What it can see is the
// SDK's Retry middleware (*retry.Attempt), which the client builds on every
// call with OperationMeter = MeterProvider.Meter(<service scope>) and
// LogAttempts = ClientLogMode.IsRetries(). Reading those two exported fields
// works the same for every install path (client option, per-call option,
// API option, config-wide). The tracer needs no such route: the SDK puts it
// on the context (tracing.GetOperationTracer).
func addObserver(stack *smithymiddleware.Stack) error {
	m, _ := stack.Finalize.Get(retryID)
	attempt, ok := m.(*retry.Attempt)
	if !ok {
		return nil // a custom retry middleware: no meter or log mode to follow
	}
	var inst *instruments
	if meter := attempt.OperationMeter; meter != nil {
		if _, nop := meter.(metrics.NopMeter); !nop {
			var err error
			if inst, err = newInstruments(meter); err != nil {
				return fmt.Errorf("streamstatus: create metric instruments on %s: %w", stack.ID(), err)
			}
		}
	}
	if inst == nil && !attempt.LogAttempts {
		return nil
	}
	if err := stack.Initialize.Add(&callObserver{inst: inst, log: attempt.LogAttempts}, smithymiddleware.Before); err != nil {
		return fmt.Errorf("streamstatus: install %s on %s: %w", ObserveID, stack.ID(), err)
	}
	return nil
}

// nopTracer is what the SDK's default TracerProvider hands out.
var nopTracer = tracing.NopTracerProvider{}.Tracer("")

// streamObserver records how one stream went: a span over its life (when
// the client traces), the time to its first chunk and its failure (when the
// client meters), one log line per failure (when the client logs retries).
// A nil *streamObserver records nothing; every method accepts it.
//
// The stream's span starts when the response arrives, as a child of the
// SDK's Attempt span, and ends with the stream: a failure after content
// happens after the operation's span has ended, and the span that covers
// the stream is the only one still open to carry it.
type streamObserver struct {
	ctx  context.Context
	call *callObserver // nil when only tracing
	span tracing.Span  // nil when not tracing
	// classifier tells the codes its tables know from codes that came
	// off the wire; see code.
	classifier *streamerr.Classifier
	service    string
	method     string
	provider   string
	// genAIOp and model are gen_ai.operation.name and gen_ai.request.model
	// where the GenAI conventions fit the operation; genAIOp is "" elsewhere.
	genAIOp string
	model   string
	ended   atomic.Bool  // Close may race the reader's end
	events  atomic.Int64 // events handed to the reader, for a span closed early
}

func newStreamObserver(ctx context.Context, info streamerr.Stream, classifier *streamerr.Classifier, req *smithyhttp.Request) *streamObserver {
	call, _ := ctx.Value(callObserverKey{}).(*callObserver)
	tracer, _ := tracing.GetOperationTracer(ctx)
	traced := tracer != nopTracer
	if call == nil && !traced {
		return nil
	}
	o := &streamObserver{ctx: ctx, call: call, classifier: classifier, service: info.Service, method: info.Operation, provider: providerOf(info.Service)}
	if o.genAIOp = genAIOperation(info.Service, info.Operation); o.genAIOp != "" && call != nil && call.inst != nil {
		o.model = requestModel(req)
	}
	if traced {
		_, o.span = tracer.StartSpan(ctx, streamSpanName, func(so *tracing.SpanOptions) {
			so.Properties.Set(attrRPCSystem, "aws-api")
			so.Properties.Set(attrRPCService, o.service)
			so.Properties.Set(attrRPCMethod, o.method)
			if o.provider != "" {
				so.Properties.Set(attrProvider, o.provider)
			}
			if info.RequestID != "" {
				so.Properties.Set(attrRequestID, info.RequestID)
			}
		})
	}
	return o
}

// providerOf returns the gen_ai.provider.name of a service, or "" when the
// conventions name none for it.
func providerOf(service string) string {
	if strings.HasPrefix(service, "Bedrock") {
		return "aws.bedrock"
	}
	return ""
}

// event counts one event the stream handed to the SDK's reader, for the
// span of a stream closed early. Safe from any goroutine.
func (o *streamObserver) event() {
	if o != nil {
		o.events.Add(1)
	}
}

// firstContent records the stream's first content event: the time to
// first chunk and the span's first_chunk event. The stream body calls it
// once, and only for an event that is content.
func (o *streamObserver) firstContent() {
	if o == nil {
		return
	}
	var since float64
	if o.call != nil {
		since = time.Since(o.call.start).Seconds()
		if o.call.inst != nil {
			o.call.inst.timeToFirstContent.Record(o.ctx, since, o.operation)
			if o.genAIOp != "" {
				o.call.inst.timeToFirstChunk.Record(o.ctx, since, o.genAI)
			}
		}
	}
	if o.span != nil {
		if o.call != nil {
			o.span.SetProperty(attrFirstChunkAt, since)
		}
		o.span.AddEvent("first_chunk")
	}
}

// end records how the stream ended, once: err is io.EOF for a clean end, a
// *smithyext.StatusError for a converted failure, or another error (a
// canceled context). afterContent tells a failure the consumer sees from
// stream.Err() from one the retryer sees. It is called from the goroutine
// that reads the stream.
func (o *streamObserver) end(err error, afterContent bool, events int) {
	if o == nil || !o.ended.CompareAndSwap(false, true) {
		return
	}
	var se *smithyext.StatusError
	failed := errors.As(err, &se) && se.Code != classify.CodeRequestCanceled
	if failed {
		o.failure(se, afterContent)
	}
	if o.span == nil {
		return
	}
	o.span.SetProperty(attrEvents, events)
	switch {
	case failed:
		o.span.SetStatus(tracing.SpanStatusError)
	case err == io.EOF:
		o.span.SetStatus(tracing.SpanStatusOK)
	case se != nil: // the caller's context ended: not the stream's failure
		o.span.SetProperty(attrErrorType, se.ErrorCode())
	case err != nil:
		o.span.SetProperty(attrErrorType, fmt.Sprintf("%T", err))
	}
	o.span.End()
}

// closed ends the span of a stream its consumer closed before the end,
// with the number of events handed to the reader so far; the status stays
// unset (neither a failure nor a clean end). Safe from any goroutine.
func (o *streamObserver) closed() {
	if o == nil || !o.ended.CompareAndSwap(false, true) {
		return
	}
	if o.span != nil {
		o.span.SetProperty(attrEvents, int(o.events.Load()))
		o.span.End()
	}
}

// failure records one converted failure on every signal the client has on.
// Nothing of the request or the payload is recorded: the service's message
// is left out too, since it can quote the input.
func (o *streamObserver) failure(se *smithyext.StatusError, afterContent bool) {
	position := positionBefore
	if afterContent {
		position = positionAfter
	}
	source := sourceOf(se.Kind)
	code := o.code(se)
	props := func(set func(k, v any)) {
		set(attrRPCService, o.service)
		set(attrRPCMethod, o.method)
		if o.provider != "" {
			set(attrProvider, o.provider)
		}
		set(attrException, code)
		set(attrErrorType, code)
		if se.Status != 0 {
			set(attrStatusCode, se.Status)
		}
		set(attrRetryable, se.Retryable)
		set(attrThrottle, se.Throttle)
		set(attrPosition, position)
		set(attrSource, source)
	}
	if o.call != nil && o.call.inst != nil {
		opt := func(ro *metrics.RecordMetricOptions) { props(ro.Properties.Set) }
		o.call.inst.failures.Add(o.ctx, 1, opt)
		if afterContent {
			o.call.inst.eventsBeforeFailure.Record(o.ctx, int64(se.Events), opt)
		}
	}
	if o.span != nil {
		props(o.span.SetProperty)
	}
	if o.call != nil && o.call.log {
		status := "no HTTP status"
		if se.Status != 0 {
			status = fmt.Sprintf("HTTP %d", se.Status)
		}
		smithymiddleware.GetLogger(o.ctx).Logf(logging.Debug,
			"event stream failure %s/%s: %s (%s, retryable=%t, throttle=%t), %s after %d events, source %s, request id %s",
			o.service, o.method, code, status, se.Retryable, se.Throttle, position, se.Events, source, se.RequestID)
	}
}

// Codes recorded in place of a code no table knows.
const (
	// codeUnknownEnvelope stands for an envelope error type that is not a
	// row of the Anthropic table: the type is text of the chunk's payload,
	// which the model provider writes.
	codeUnknownEnvelope = "UnknownEnvelopeError"
	// codeUnknown stands for an exception type or error code that no
	// table knows and that does not look like a modeled code.
	codeUnknown = "UnknownError"
	// maxCodeLen bounds a code recorded from the wire.
	maxCodeLen = 64
)

// code returns the error code recorded for a failure as exception.type,
// error.type and in the log line: a bounded set of values, never text of a
// payload. se.ErrorCode() is unchanged for the consumer.
//
//   - Envelopes: the code if a row of the Anthropic table (with the
//     client's overrides) has it, else UnknownEnvelopeError.
//   - Exceptions and error messages: the code comes from the frame's
//     :exception-type or :error-code header, which the AWS service sets (the
//     SDK's own client.call.errors records it as sent). It is recorded if a
//     table knows it, or if it looks like a modeled code (a letter, then
//     letters, digits, '_' or '.', at most 64 bytes), else UnknownError.
//   - Transport, corrupt frame, canceled: the classifier's own constants.
func (o *streamObserver) code(se *smithyext.StatusError) string {
	code := se.ErrorCode()
	switch se.Kind {
	case smithyext.KindEnvelope:
		if _, ok := o.classifier.Rule(classify.AnthropicServiceID, code); ok {
			return code
		}
		return codeUnknownEnvelope
	case smithyext.KindException, smithyext.KindErrorMessage:
		if _, ok := o.classifier.Rule(o.service, code); ok || isModeledCode(code) {
			return code
		}
		return codeUnknown
	}
	return code
}

// isModeledCode reports whether s has the shape of a modeled error code
// ("ThrottlingException", "ModelStreamErrorException"): it starts with an
// ASCII letter, has only ASCII letters, digits, '_' and '.', and is at
// most maxCodeLen bytes.
func isModeledCode(s string) bool {
	if s == "" || len(s) > maxCodeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// operation sets the attributes every record carries.
func (o *streamObserver) operation(ro *metrics.RecordMetricOptions) {
	ro.Properties.Set(attrRPCService, o.service)
	ro.Properties.Set(attrRPCMethod, o.method)
	if o.provider != "" {
		ro.Properties.Set(attrProvider, o.provider)
	}
}

// genAI sets the attributes of the GenAI conventions' metric: the Required
// gen_ai.operation.name and gen_ai.provider.name, gen_ai.request.model
// (Conditionally Required: if available), and rpc.service and rpc.method.
func (o *streamObserver) genAI(ro *metrics.RecordMetricOptions) {
	o.operation(ro)
	ro.Properties.Set(attrOperation, o.genAIOp)
	if o.model != "" {
		ro.Properties.Set(attrRequestModel, o.model)
	}
}

// genAIOperation returns the gen_ai.operation.name of a service's streaming
// operation where the GenAI conventions' well-known values (chat,
// text_completion, generate_content, embeddings, invoke_agent, ...) say
// which it is, or "" where they do not. Only ConverseStream qualifies: it
// is a chat by its API. What an InvokeModelWithResponseStream does depends
// on the model's own request body (a chat with the Anthropic messages
// body, a completion with a prompt body), which streamstatus does not
// parse; SageMaker endpoints run any container and have no
// gen_ai.provider.name. Those streams record only the time to first
// content, not a GenAI metric without its Required attributes.
func genAIOperation(service, operation string) string {
	if service == "Bedrock Runtime" && operation == "ConverseStream" {
		return "chat"
	}
	return ""
}

// requestModel returns the model ID of a Bedrock Runtime request, the
// {modelId} of its path /model/{modelId}/converse-stream, or "" when the
// path has no such segment.
func requestModel(req *smithyhttp.Request) string {
	if req == nil || req.URL == nil {
		return ""
	}
	p, ok := strings.CutSuffix(req.URL.EscapedPath(), "/converse-stream")
	if !ok {
		return ""
	}
	i := strings.LastIndex(p, "/model/")
	if i < 0 {
		return ""
	}
	id, err := url.PathUnescape(p[i+len("/model/"):])
	if err != nil || id == "" || strings.Contains(p[i+len("/model/"):], "/") {
		return ""
	}
	return id
}

// sourceOf names where a failure came from, as a low-cardinality attribute
// value.
func sourceOf(k smithyext.Kind) string {
	switch k {
	case smithyext.KindException:
		return "exception"
	case smithyext.KindErrorMessage:
		return "error_message"
	case smithyext.KindEnvelope:
		return "envelope"
	case smithyext.KindTransport:
		return "transport"
	case smithyext.KindCorrupt:
		return "corrupt_frame"
	}
	return strings.ReplaceAll(k.String(), " ", "_")
}
