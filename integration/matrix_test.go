package integration_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/bedrockagentruntime"
	agenttypes "github.com/aws/aws-sdk-go-v2/service/bedrockagentruntime/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"
	smithy "github.com/aws/smithy-go"
	"github.com/aws/smithy-go/eventstream"
	smithymiddleware "github.com/aws/smithy-go/middleware"
	"go.uber.org/goleak"

	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/internal/framing"
	"github.com/streamstatus/streamstatus/middleware"
	"github.com/streamstatus/streamstatus/smithyext"
)

// The fault matrix (issue 8): every exception type of every supported
// service x where it arrives x how the plugin is installed, plus HTTP
// errors, transport faults, corrupt frames and unknown message types. Each
// case checks DESIGN.md §5: every event delivered exactly once and in order,
// the typed error and status the tables specify (written out in this
// package, independently of package classify), server call counts, every
// response body closed, and goroutines back to baseline. The test logs its
// number of cases:
//
//	go test -race -run TestFaultMatrix -v ./integration/ | grep 'fault matrix cases'

// ---- the operations of every supported service ----

// mop is one streaming operation as the matrix and the soak drive it.
type mop struct {
	name    string
	service string // SDK service ID
	// nonContent is the number of leading events of a healthy stream that
	// are not content (ConverseStream's messageStart): a failure after them
	// is still before content.
	nonContent int
	// healthy is a complete, clean stream with n content events, one event
	// per step, and how the consumer renders each event.
	healthy func(n int, tag string) ([]fake.Step, []string)
	// exceptions are the service's modeled stream exceptions, with the
	// outcome DESIGN.md and the classify sources document for each.
	exceptions []row
	// open makes a client from cfg with the plugin installed the given way
	// and returns a function that runs one streaming call on it. One client
	// is never used by two goroutines at once: the SDK's restjson1 protocol
	// shares one event decoder per client.
	open func(cfg aws.Config, how install, opts ...middleware.Option) streamRunner
}

// consumer says how the code reading a stream behaves.
type consumer struct {
	stopAfter   int // stop reading and Close the stream after this many events; 0: read to the end
	cancelAfter int // cancel the call's context after this many events (and keep reading); 0: never
}

var readAll = consumer{}

// streamResult is what one streaming call produced.
type streamResult struct {
	events    []string
	callErr   error // from the operation call
	streamErr error // from stream.Err() (read before Close)
	stopped   bool  // the consumer stopped early
	canceled  bool  // the consumer canceled the context
}

type streamRunner func(ctx context.Context, c consumer) streamResult

// readStream reads a stream the way consumer c says, then closes it.
func readStream[T any](ch <-chan T, s interface {
	Close() error
	Err() error
}, render func(T) string, c consumer, cancel context.CancelFunc) streamResult {
	var r streamResult
	for ev := range ch {
		r.events = append(r.events, render(ev))
		if len(r.events) == c.cancelAfter {
			cancel()
			r.canceled = true
		}
		if len(r.events) == c.stopAfter {
			r.stopped = true
			break
		}
	}
	if !r.stopped {
		r.streamErr = s.Err()
	}
	_ = s.Close()
	return r
}

func renderConverse(ev types.ConverseStreamOutput) string {
	switch v := ev.(type) {
	case *types.ConverseStreamOutputMemberMessageStart:
		return "start"
	case *types.ConverseStreamOutputMemberContentBlockDelta:
		if d, ok := v.Value.Delta.(*types.ContentBlockDeltaMemberText); ok {
			return "delta:" + d.Value
		}
		return "delta:?"
	case *types.ConverseStreamOutputMemberContentBlockStop:
		return "blockstop"
	case *types.ConverseStreamOutputMemberMessageStop:
		return "stop"
	case *types.ConverseStreamOutputMemberMetadata:
		return "metadata"
	}
	return fmt.Sprintf("%T", ev)
}

func renderChunk(ev types.ResponseStream) string {
	if c, ok := ev.(*types.ResponseStreamMemberChunk); ok {
		return "chunk:" + string(c.Value.Bytes)
	}
	return fmt.Sprintf("%T", ev)
}

func renderPayloadPart(ev smtypes.ResponseStream) string {
	if p, ok := ev.(*smtypes.ResponseStreamMemberPayloadPart); ok {
		return "part:" + string(p.Value.Bytes)
	}
	return fmt.Sprintf("%T", ev)
}

func renderAgentChunk(ev agenttypes.ResponseStream) string {
	if c, ok := ev.(*agenttypes.ResponseStreamMemberChunk); ok {
		return "chunk:" + string(c.Value.Bytes)
	}
	return fmt.Sprintf("%T", ev)
}

// newBedrockClient installs the plugin on a bedrockruntime client.
func newBedrockClient(cfg aws.Config, how install, opts ...middleware.Option) *bedrockruntime.Client {
	switch how {
	case clientOption:
		return bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(opts...))
	case apiOption:
		return bedrockruntime.NewFromConfig(cfg, bedrockruntime.WithAPIOptions(middleware.APIOption(opts...)))
	case configWide:
		middleware.AppendMiddlewares(&cfg.APIOptions, opts...)
	}
	return bedrockruntime.NewFromConfig(cfg)
}

// For the services without a dedicated option, clientOption is
// <svc>.WithAPIOptions(middleware.APIOption()) on the client and apiOption
// is the same option passed per call.

var matrixConverse = mop{
	name: "ConverseStream", service: "Bedrock Runtime", nonContent: 1,
	healthy:    converseStream.healthy,
	exceptions: append(append([]row{}, bedrockRows...), unknownRow),
	open: func(cfg aws.Config, how install, opts ...middleware.Option) streamRunner {
		c := newBedrockClient(cfg, how, opts...)
		return func(ctx context.Context, cons consumer) streamResult {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			out, err := c.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{
				ModelId: aws.String("anthropic.claude-test"),
				Messages: []types.Message{{
					Role:    types.ConversationRoleUser,
					Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: "hello"}},
				}},
			})
			if err != nil {
				return streamResult{callErr: err}
			}
			s := out.GetStream()
			return readStream(s.Events(), s, renderConverse, cons, cancel)
		}
	},
}

var matrixInvoke = mop{
	name: "InvokeModelWithResponseStream", service: "Bedrock Runtime",
	healthy:    chunks,
	exceptions: append(append([]row{}, bedrockRows...), unknownRow),
	open: func(cfg aws.Config, how install, opts ...middleware.Option) streamRunner {
		c := newBedrockClient(cfg, how, opts...)
		return func(ctx context.Context, cons consumer) streamResult {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			out, err := c.InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{
				ModelId: aws.String("anthropic.claude-test"), Body: []byte(`{"prompt":"hello"}`), ContentType: aws.String("application/json"),
			})
			if err != nil {
				return streamResult{callErr: err}
			}
			s := out.GetStream()
			return readStream(s.Events(), s, renderChunk, cons, cancel)
		}
	},
}

var matrixSageMaker = mop{
	name: "InvokeEndpointWithResponseStream", service: "SageMaker Runtime",
	healthy:    textSteps("part:", func(text string) fake.Step { return fake.PayloadPart([]byte(text)) }),
	exceptions: append(append([]row{}, sageMakerRows...), unknownRow),
	open: func(cfg aws.Config, how install, opts ...middleware.Option) streamRunner {
		c, perCall := installOn(cfg, how, sagemakerruntime.NewFromConfig, sagemakerruntime.WithAPIOptions, opts...)
		return func(ctx context.Context, cons consumer) streamResult {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			out, err := c.InvokeEndpointWithResponseStream(ctx, &sagemakerruntime.InvokeEndpointWithResponseStreamInput{
				EndpointName: aws.String("my-endpoint"), Body: []byte(`{"inputs":"hi"}`), ContentType: aws.String("application/json"),
			}, perCall...)
			if err != nil {
				return streamResult{callErr: err}
			}
			s := out.GetStream()
			return readStream(s.Events(), s, renderPayloadPart, cons, cancel)
		}
	},
}

var matrixAgent = mop{
	name: "InvokeAgent", service: "Bedrock Agent Runtime",
	healthy:    textSteps("chunk:", fake.AgentChunk),
	exceptions: append(append([]row{}, agentRows...), unknownRow),
	open: func(cfg aws.Config, how install, opts ...middleware.Option) streamRunner {
		c, perCall := installOn(cfg, how, bedrockagentruntime.NewFromConfig, bedrockagentruntime.WithAPIOptions, opts...)
		return func(ctx context.Context, cons consumer) streamResult {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			out, err := c.InvokeAgent(ctx, &bedrockagentruntime.InvokeAgentInput{
				AgentId: aws.String("AGENT1"), AgentAliasId: aws.String("ALIAS1"), SessionId: aws.String("session-1"), InputText: aws.String("hi"),
			}, perCall...)
			if err != nil {
				return streamResult{callErr: err}
			}
			s := out.GetStream()
			return readStream(s.Events(), s, renderAgentChunk, cons, cancel)
		}
	},
}

// installOn builds a client of any service the given install way: "client
// option" is WithAPIOptions on the client, "API option" the same per call.
func installOn[C, O any](cfg aws.Config, how install, newFromConfig func(aws.Config, ...func(*O)) C,
	withAPIOptions func(...func(*smithymiddleware.Stack) error) func(*O), opts ...middleware.Option) (C, []func(*O)) {
	switch how {
	case clientOption:
		return newFromConfig(cfg, withAPIOptions(middleware.APIOption(opts...))), nil
	case apiOption:
		return newFromConfig(cfg), []func(*O){withAPIOptions(middleware.APIOption(opts...))}
	case configWide:
		middleware.AppendMiddlewares(&cfg.APIOptions, opts...)
	}
	return newFromConfig(cfg), nil
}

var matrixOps = []mop{matrixConverse, matrixInvoke, matrixSageMaker, matrixAgent}

// ---- the status tables, written out independently of package classify ----

// sageMakerRows: Amazon SageMaker API Reference, runtime ResponseStream.
var sageMakerRows = []row{
	{"ModelStreamError", `{"Message":"connection to the model broke","ErrorCode":"StreamBroken"}`, "ModelStreamError", 400, true, false, as[*smtypes.ModelStreamError]},
	{"ModelStreamError", `{"Message":"model took too long","ErrorCode":"ModelInvocationTimeExceeded"}`, "ModelStreamError", 400, false, false, as[*smtypes.ModelStreamError]},
	{"InternalStreamFailure", `{"Message":"try again"}`, "InternalStreamFailure", 500, true, false, as[*smtypes.InternalStreamFailure]},
}

// agentRows: Amazon Bedrock API Reference, Agents for Amazon Bedrock
// Runtime ResponseStream.
var agentRows = []row{
	{"internalServerException", `{"message":"internal"}`, "InternalServerException", 500, true, false, as[*agenttypes.InternalServerException]},
	{"badGatewayException", `{"message":"upstream failed"}`, "BadGatewayException", 502, true, false, as[*agenttypes.BadGatewayException]},
	{"throttlingException", `{"message":"slow down"}`, "ThrottlingException", 429, true, true, as[*agenttypes.ThrottlingException]},
	{"dependencyFailedException", `{"message":"lambda failed"}`, "DependencyFailedException", 424, true, false, as[*agenttypes.DependencyFailedException]},
	{"modelNotReadyException", `{"message":"warming up"}`, "ModelNotReadyException", 424, true, false, as[*agenttypes.ModelNotReadyException]},
	{"conflictException", `{"message":"conflict"}`, "ConflictException", 409, false, false, as[*agenttypes.ConflictException]},
	{"serviceQuotaExceededException", `{"message":"quota"}`, "ServiceQuotaExceededException", 400, false, false, as[*agenttypes.ServiceQuotaExceededException]},
	{"validationException", `{"message":"bad input"}`, "ValidationException", 400, false, false, as[*agenttypes.ValidationException]},
	{"accessDeniedException", `{"message":"denied"}`, "AccessDeniedException", 403, false, false, as[*agenttypes.AccessDeniedException]},
	{"resourceNotFoundException", `{"message":"no such agent"}`, "ResourceNotFoundException", 404, false, false, as[*agenttypes.ResourceNotFoundException]},
}

// unknownRow is an exception type no table knows: status 500, not retried
// (nothing says sending the request again is safe), its code kept.
var unknownRow = row{"brandNewException", `{"message":"what is this"}`, "BrandNewException", 500, false, false, as[*smithy.GenericAPIError]}

// failureWant is the outcome a stream failure must have.
type failureWant struct {
	code      string
	status    int
	retryable bool
	throttle  bool
	kind      smithyext.Kind
	message   string           // "" = not checked
	modeled   func(error) bool // nil = not checked
	is        []error
	isAny     []error
}

func (r row) want() failureWant {
	return failureWant{code: r.code, status: r.status, retryable: r.retryable, throttle: r.throttle, kind: smithyext.KindException, modeled: r.modeled}
}

// streamFault is a failure sent in place of the rest of a stream.
type streamFault struct {
	name  string
	steps []fake.Step
	want  failureWant
	// sdkReports: the plugin leaves the frame to the SDK, whose behaviour
	// (the bare SDK's) is the reference.
	sdkReports bool
	// opts are the plugin options the fault needs (the stall timeouts).
	opts []middleware.Option
	// lossy: the fault may destroy bytes the server wrote before it. A TCP
	// reset (SO_LINGER 0) discards what is still queued on either side, so
	// the consumer may see a shorter prefix of the events sent; it must
	// still see each one once, in order, and the error must count exactly
	// those.
	lossy bool
}

// Codes and statuses of failures that carry no service code: transport
// failures are retryable, corrupt frames are not, neither has a status.
const (
	codeInterrupted = "StreamInterrupted"
	codeCorrupt     = "CorruptFrame"
)

func transportFaults() []streamFault {
	var out []streamFault
	for _, fc := range faultCases {
		w := failureWant{code: codeInterrupted, retryable: fc.retryable, kind: fc.kind, is: fc.is, isAny: fc.isAny}
		if fc.kind == smithyext.KindCorrupt {
			w.code = codeCorrupt
		}
		out = append(out, streamFault{name: fc.name, steps: fc.fault, want: w, lossy: fc.name == "connection reset"})
	}
	return append(out,
		streamFault{name: "prelude claiming 4 GiB", steps: []fake.Step{fake.Raw(claimPrelude(0xffffffff))},
			want: failureWant{code: codeCorrupt, kind: smithyext.KindCorrupt, is: []error{framing.ErrPreludeLength}}},
		// The format's limits: one byte over the payload or the header
		// limit is a corrupt frame (a 24 MiB payload passes: TestFrameSizeBounds).
		streamFault{name: "payload one byte over 24 MiB", steps: []fake.Step{fake.Raw(claimPreludeHeaders(framing.MinFrameLen+framing.MaxPayloadLen+1, 0))},
			want: failureWant{code: codeCorrupt, kind: smithyext.KindCorrupt, is: []error{framing.ErrPreludeLength}}},
		streamFault{name: "headers one byte over 128 KiB", steps: []fake.Step{fake.Raw(claimPreludeHeaders(framing.MinFrameLen+framing.MaxHeadersLen+1, framing.MaxHeadersLen+1))},
			want: failureWant{code: codeCorrupt, kind: smithyext.KindCorrupt, is: []error{framing.ErrPreludeLength}}},
		streamFault{name: "error message InternalFailure", steps: []fake.Step{fake.ErrorMsg("InternalFailure", "try again")},
			want: failureWant{code: "InternalFailure", status: 500, retryable: true, kind: smithyext.KindErrorMessage, message: "try again", modeled: as[*smithy.GenericAPIError]}},
		streamFault{name: "error message with an unknown code", steps: []fake.Step{fake.ErrorMsg("FutureFailure", "new")},
			want: failureWant{code: "FutureFailure", status: 500, kind: smithyext.KindErrorMessage, message: "new", modeled: as[*smithy.GenericAPIError]}},
		streamFault{name: "unknown message type", steps: []fake.Step{futureMessage()}, sdkReports: true},
		stallFault(),
	)
}

// matrixStallTimeout is the first-event and idle timeout of the stall
// fault; the server stalls far longer.
const matrixStallTimeout = 150 * time.Millisecond

// stallFault is a server that stops sending, with both stall timeouts on:
// before content the attempt is retried, after content the stream ends
// with the retryable StreamStalled.
func stallFault() streamFault {
	return streamFault{name: "stall", steps: []fake.Step{fake.Pause(time.Minute)},
		opts: []middleware.Option{middleware.WithFirstEventTimeout(matrixStallTimeout), middleware.WithIdleTimeout(matrixStallTimeout)},
		want: failureWant{code: "StreamStalled", retryable: true, kind: smithyext.KindTransport}}
}

// claimPrelude is a frame prelude declaring total bytes, with a valid
// prelude CRC, followed by a few bytes: a frame that can never arrive. Its
// headers length is the smallest that keeps the payload within the
// format's limit (0 for all but the largest frames).
func claimPrelude(total uint32) []byte {
	var headers uint32
	if total > framing.MinFrameLen+framing.MaxPayloadLen && total <= framing.MaxFrameLen {
		headers = total - framing.MinFrameLen - framing.MaxPayloadLen
	}
	return claimPreludeHeaders(total, headers)
}

// claimPreludeHeaders is claimPrelude with the given headers length.
func claimPreludeHeaders(total, headers uint32) []byte {
	p := binary.BigEndian.AppendUint32(nil, total)
	p = binary.BigEndian.AppendUint32(p, headers)
	p = binary.BigEndian.AppendUint32(p, crc32IEEE(p))
	return append(p, "not the frame it claims"...)
}

// futureMessage is a well-formed frame of a message type the SDK does not
// know (:message-type "future").
func futureMessage() fake.Step {
	var m eventstream.Message
	m.Headers.Set(eventstream.MessageTypeHeader, eventstream.StringValue("future"))
	m.Headers.Set(eventstream.EventTypeHeader, eventstream.StringValue("chunk"))
	m.Payload = []byte(`{}`)
	return fake.Raw(fake.Frame(m))
}

func exceptionFaults(op mop) []streamFault {
	var out []streamFault
	for _, r := range op.exceptions {
		name := r.exceptionType
		if strings.Contains(r.payload, "ErrorCode") {
			name += "/" + strings.Split(strings.Split(r.payload, `"ErrorCode":"`)[1], `"`)[0]
		}
		out = append(out, streamFault{name: name, steps: []fake.Step{r.step()}, want: r.want()})
	}
	if op.name == matrixInvoke.name {
		for _, e := range envelopeRows {
			out = append(out, streamFault{name: "envelope " + e.errType, steps: []fake.Step{fake.AnthropicError(e.errType, "It failed")},
				want: failureWant{code: e.errType, status: e.status, retryable: e.retryable, throttle: e.throttle, kind: smithyext.KindEnvelope, message: "It failed"}})
		}
	}
	return out
}

// ---- response bodies ----

// bodyCounter is an aws.HTTPClient that counts the response bodies it
// hands out and how many of them were closed.
type bodyCounter struct {
	next           aws.HTTPClient
	opened, closed atomic.Int64
}

func (c *bodyCounter) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.next.Do(req)
	if resp != nil && resp.Body != nil {
		c.opened.Add(1)
		resp.Body = &countedBody{ReadCloser: resp.Body, c: c}
	}
	return resp, err
}

type countedBody struct {
	io.ReadCloser
	c    *bodyCounter
	once sync.Once
}

func (b *countedBody) Close() error {
	b.once.Do(func() { b.c.closed.Add(1) })
	return b.ReadCloser.Close()
}

// balanced waits briefly for every body handed out to be closed (the SDK's
// reader goroutine may still be closing one) and reports the counts.
func (c *bodyCounter) balanced() (opened, closed int64, ok bool) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		opened, closed = c.opened.Load(), c.closed.Load()
		if opened == closed || time.Now().After(deadline) {
			return opened, closed, opened == closed
		}
		time.Sleep(time.Millisecond)
	}
}

// countingConfig is testConfig with a body-counting HTTP client.
func countingConfig(srv *fake.Server, maxAttempts int) (aws.Config, *bodyCounter) {
	cfg := testConfig(srv, maxAttempts)
	bc := &bodyCounter{next: awshttp.NewBuildableClient()}
	cfg.HTTPClient = bc
	return cfg, bc
}

// ---- checks ----

// checkWant pins everything a user may ask of a stream failure.
func checkWant(t *testing.T, err error, w failureWant, events int, requestID string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want a %s error, got nil", w.code)
	}
	checkNoSecrets(t, err)
	if got, ok := statusOf(err); !ok || got != w.status {
		t.Errorf("errors.As HTTPStatusCode = %d (found %v), want %d; err: %v", got, ok, w.status, err)
	}
	var se *smithyext.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("errors.As *smithyext.StatusError failed; err (%T): %v", err, err)
	}
	if se.ErrorCode() != w.code || se.RetryableError() != w.retryable || se.Throttle != w.throttle || se.Kind != w.kind {
		t.Errorf("code=%s retryable=%v throttle=%v kind=%v, want %s %v %v %v; err: %v",
			se.ErrorCode(), se.RetryableError(), se.Throttle, se.Kind, w.code, w.retryable, w.throttle, w.kind, err)
	}
	var api interface{ ErrorCode() string }
	if errors.As(err, &api) && api.ErrorCode() != w.code {
		t.Errorf("first ErrorCode() in the chain = %s, want %s", api.ErrorCode(), w.code)
	}
	if se.EventsDelivered() != events {
		t.Errorf("EventsDelivered = %d, want %d", se.EventsDelivered(), events)
	}
	if se.ServiceRequestID() != requestID || requestID == "" {
		t.Errorf("ServiceRequestID = %q, want %q", se.ServiceRequestID(), requestID)
	}
	if w.message != "" && se.ErrorMessage() != w.message {
		t.Errorf("ErrorMessage = %q, want %q", se.ErrorMessage(), w.message)
	}
	if w.modeled != nil && !w.modeled(err) {
		t.Errorf("errors.As to the modeled type failed; Unwrap = %T", se.Unwrap())
	}
	for _, target := range w.is {
		if !errors.Is(err, target) {
			t.Errorf("errors.Is(err, %v) = false; err: %v", target, err)
		}
	}
	if len(w.isAny) > 0 {
		found := false
		for _, target := range w.isAny {
			found = found || errors.Is(err, target)
		}
		if !found {
			t.Errorf("none of %v reachable from %v", w.isAny, err)
		}
	}
}

func checkEvents(t *testing.T, what string, got, want []string) {
	t.Helper()
	seen := make(map[string]bool, len(got))
	for _, e := range got {
		if seen[e] {
			t.Errorf("%s: event %q delivered twice", what, e)
		}
		seen[e] = true
	}
	if !equalStrings(got, want) {
		t.Errorf("%s: consumer saw %d events %s, want %d %s", what, len(got), abbrev(got), len(want), abbrev(want))
	}
}

// abbrev renders a long event list by its ends.
func abbrev(s []string) string {
	if len(s) <= 6 {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q ... %q", s[:3], s[len(s)-3:])
}

// ---- the matrix ----

// position is where a fault arrives: after `at` events of the healthy
// stream (total is the healthy stream's event count).
type position struct {
	name string
	at   func(total int) int
}

var positions = []position{
	{"first-frame", func(int) int { return 0 }},
	{"after-1-event", func(int) int { return 1 }},
	{"after-50-events", func(int) int { return 50 }},
	{"last-frame", func(total int) int { return total }},
}

// matrixContent is the number of content events of the healthy streams.
const matrixContent = 60

func TestFaultMatrix(t *testing.T) {
	baseline := goleak.IgnoreCurrent()
	var cases atomic.Int64
	t.Run("cases", func(t *testing.T) {
		for _, op := range matrixOps {
			faults := append(exceptionFaults(op), transportFaults()...)
			for _, f := range faults {
				for _, pos := range positions {
					for _, how := range installs {
						t.Run(fmt.Sprintf("%s/%s/%s/%s", op.name, f.name, pos.name, how), func(t *testing.T) {
							t.Parallel()
							cases.Add(1)
							if f.sdkReports {
								matrixSDKReports(t, op, f, pos, how)
							} else {
								matrixStreamFault(t, op, f, pos, how)
							}
						})
					}
				}
			}
			for _, hf := range httpFaults {
				for _, how := range installs {
					t.Run(fmt.Sprintf("%s/%s/%s", op.name, hf.name, how), func(t *testing.T) {
						t.Parallel()
						cases.Add(1)
						matrixHTTPFault(t, op, hf, how)
					})
				}
			}
		}
	})
	t.Logf("%d fault matrix cases", cases.Load())
	goleak.VerifyNone(t, baseline)
}

// matrixStreamFault: a healthy stream cut short by f after pos events.
// Before content, a retryable failure is retried by the SDK's retryer and
// the consumer sees exactly the clean second attempt; a non-retryable one
// fails the call after one server call. After content, the consumer gets
// exactly the events sent before the failure, then the typed error.
func matrixStreamFault(t *testing.T, op mop, f streamFault, pos position, how install) {
	srv := newServer(t)
	cfg, bodies := countingConfig(srv, 3)
	run := op.open(cfg, how, f.opts...)
	sent, sentEvents := op.healthy(matrixContent, "sent")
	clean, cleanEvents := op.healthy(matrixContent, "clean")
	k := pos.at(len(sentEvents))
	srv.Enqueue(fake.Response{Steps: steps(sent[:k:k], f.steps)}, fake.Response{Steps: clean})

	res := run(context.Background(), readAll)
	calls := srv.Calls()
	beforeContent := k <= op.nonContent
	if f.lossy && len(calls) == 1 && res.callErr == nil && len(res.events) < k {
		// Some of what was sent before the reset never arrived: the
		// consumer's events must be a prefix of what was sent.
		t.Logf("%d of the %d events sent before the reset arrived", len(res.events), k)
		k = len(res.events)
		beforeContent = k <= op.nonContent
		if beforeContent {
			t.Fatalf("%d events reached the consumer before the reset, yet the call was not retried", k)
		}
	}
	switch {
	case beforeContent && f.want.retryable:
		if res.callErr != nil || res.streamErr != nil || len(calls) != 2 {
			t.Fatalf("want one transparent retry: call error %v, stream error %v, %d server calls", res.callErr, res.streamErr, len(calls))
		}
		checkEvents(t, "retried", res.events, cleanEvents)
	case beforeContent:
		if len(calls) != 1 || len(res.events) != 0 {
			t.Fatalf("non-retryable before content: %d server calls, %d events; want 1 call, no events", len(calls), len(res.events))
		}
		checkWant(t, res.callErr, f.want, 0, calls[0].RequestID)
	default:
		if res.callErr != nil || len(calls) != 1 {
			t.Fatalf("after content: call error %v, %d server calls; want 1 call and the stream", res.callErr, len(calls))
		}
		checkEvents(t, "after content", res.events, sentEvents[:k])
		checkWant(t, res.streamErr, f.want, k, calls[0].RequestID)
	}
	if opened, closed, ok := bodies.balanced(); !ok {
		t.Errorf("%d response bodies opened, %d closed", opened, closed)
	}
}

// matrixSDKReports: a frame the plugin leaves to the SDK must come out
// exactly as from the bare SDK: same events, same call count, the same
// error types.
func matrixSDKReports(t *testing.T, op mop, f streamFault, pos position, how install) {
	outcome := func(how install) (streamResult, int, *bodyCounter) {
		srv := serverFor(t, how)
		cfg, bodies := countingConfig(srv, 3)
		run := op.open(cfg, how)
		sent, sentEvents := op.healthy(matrixContent, "sent")
		clean, _ := op.healthy(matrixContent, "clean")
		k := pos.at(len(sentEvents))
		srv.Enqueue(fake.Response{Steps: steps(sent[:k:k], f.steps)}, fake.Response{Steps: clean})
		return run(context.Background(), readAll), srv.CallCount(), bodies
	}
	ref, refCalls, _ := outcome(bare)
	got, calls, bodies := outcome(how)
	if ref.callErr != nil || ref.streamErr == nil {
		t.Fatalf("bare SDK: call error %v, stream error %v; the reference changed", ref.callErr, ref.streamErr)
	}
	if calls != refCalls || (got.callErr == nil) != (ref.callErr == nil) || (got.streamErr == nil) != (ref.streamErr == nil) {
		t.Fatalf("plugin: %d calls, call error %v, stream error %v; bare SDK: %d calls, %v, %v",
			calls, got.callErr, got.streamErr, refCalls, ref.callErr, ref.streamErr)
	}
	checkEvents(t, "vs bare SDK", got.events, ref.events)
	if g, r := errTypeChain(got.streamErr), errTypeChain(ref.streamErr); g != r {
		t.Errorf("stream error types %s, bare SDK %s", g, r)
	}
	if got.streamErr.Error() != ref.streamErr.Error() {
		t.Errorf("stream error %q, bare SDK %q", got.streamErr, ref.streamErr)
	}
	if opened, closed, ok := bodies.balanced(); !ok {
		t.Errorf("%d response bodies opened, %d closed", opened, closed)
	}
}

// httpFault is an HTTP error answer, written out as the SDK treats it (the
// plugin leaves HTTP errors alone).
type httpFault struct {
	name       string
	status     int
	errorType  string
	persistent bool // every attempt fails; else only the first
	retried    bool // the SDK's retryer retries it
}

var httpFaults = []httpFault{
	{"HTTP 400 ValidationException", 400, "ValidationException", false, false},
	{"HTTP 403 AccessDeniedException", 403, "AccessDeniedException", false, false},
	{"HTTP 404 ResourceNotFoundException", 404, "ResourceNotFoundException", false, false},
	{"HTTP 429 ThrottlingException once", 429, "ThrottlingException", false, true},
	{"HTTP 500 InternalServerException once", 500, "InternalServerException", false, true},
	{"HTTP 503 ServiceUnavailableException always", 503, "ServiceUnavailableException", true, true},
}

func matrixHTTPFault(t *testing.T, op mop, hf httpFault, how install) {
	srv := newServer(t)
	cfg, bodies := countingConfig(srv, 3)
	run := op.open(cfg, how)
	clean, cleanEvents := op.healthy(matrixContent, "clean")
	answer := fake.Response{Status: hf.status, ErrorType: hf.errorType, ErrorMessage: "http says no"}
	if hf.persistent {
		srv.SetDefault(answer)
	} else {
		srv.Enqueue(answer, fake.Response{Steps: clean})
	}
	res := run(context.Background(), readAll)
	calls := srv.CallCount()
	switch {
	case hf.retried && !hf.persistent:
		if res.callErr != nil || res.streamErr != nil || calls != 2 {
			t.Fatalf("call error %v, stream error %v, %d calls; want one retry", res.callErr, res.streamErr, calls)
		}
		checkEvents(t, "retried", res.events, cleanEvents)
	default:
		wantCalls := 1
		if hf.retried {
			wantCalls = 3
			var maxErr *retry.MaxAttemptsError
			if !errors.As(res.callErr, &maxErr) {
				t.Errorf("want *retry.MaxAttemptsError, got %T: %v", res.callErr, res.callErr)
			}
		}
		if calls != wantCalls || len(res.events) != 0 {
			t.Fatalf("%d calls, %d events; want %d calls, none", calls, len(res.events), wantCalls)
		}
		if got, _ := statusOf(res.callErr); got != hf.status {
			t.Errorf("status %d, want %d: %v", got, hf.status, res.callErr)
		}
		var api smithy.APIError
		if !errors.As(res.callErr, &api) || api.ErrorCode() != hf.errorType {
			t.Errorf("error code of %v, want %s", res.callErr, hf.errorType)
		}
		if as[*smithyext.StatusError](res.callErr) {
			t.Errorf("an HTTP error became a StatusError: %v", res.callErr)
		}
		checkNoSecrets(t, res.callErr)
	}
	if opened, closed, ok := bodies.balanced(); !ok {
		t.Errorf("%d response bodies opened, %d closed", opened, closed)
	}
}

// TestHTTPErrorBodiesClosed pins an SDK gap the matrix found: the SDK's
// schema-serde generation (bedrockruntime v1.63+, sagemakerruntime v1.50+)
// reads an event-stream operation's HTTP error body but never closes it.
// With the plugin installed every error body is closed.
func TestHTTPErrorBodiesClosed(t *testing.T) {
	for _, op := range matrixOps {
		t.Run(op.name, func(t *testing.T) {
			for _, how := range []install{bare, clientOption, apiOption, configWide} {
				srv := serverFor(t, how)
				cfg, bodies := countingConfig(srv, 1)
				srv.SetDefault(fake.Response{Status: 400, ErrorType: "ValidationException", ErrorMessage: "no"})
				res := op.open(cfg, how)(context.Background(), readAll)
				if got, _ := statusOf(res.callErr); got != 400 {
					t.Fatalf("%s: status %d, want 400: %v", how, got, res.callErr)
				}
				opened, closed := bodies.opened.Load(), bodies.closed.Load()
				if how == bare {
					t.Logf("bare SDK: %d error bodies opened, %d closed", opened, closed)
					continue
				}
				if opened != 1 || closed != 1 {
					t.Errorf("%s: %d error bodies opened, %d closed", how, opened, closed)
				}
			}
		})
	}
}

// TestBareSDKTruncationControl is the control for the truncation rows of
// the matrix: the SDK as shipped reports a stream cut off mid-frame, or
// ended inside a frame whose prelude claims more than arrives, as a clean
// end (stream.Err() == nil: smithy-go's event-stream codec takes
// io.ErrUnexpectedEOF for io.EOF), so the consumer cannot tell a truncated
// answer from a complete one. With the plugin the same streams end with a
// typed error. The bare SDK's answers are logged, not pinned, so an SDK
// upgrade that fixes them does not fail the suite.
func TestBareSDKTruncationControl(t *testing.T) {
	truncations := []struct {
		name string
		step []fake.Step
		code string
	}{
		{"connection closed mid-stream", []fake.Step{fake.Cut()}, codeInterrupted},
		{"truncated frame", []fake.Step{fake.Raw(chunkFrame("half a frame")[:20]), fake.Cut()}, codeInterrupted},
		{"oversized prelude", []fake.Step{fake.Raw(oversizedPrelude())}, codeCorrupt},
	}
	for _, op := range matrixOps {
		for _, tr := range truncations {
			t.Run(op.name+"/"+tr.name, func(t *testing.T) {
				outcome := func(how install) streamResult {
					srv := serverFor(t, how)
					cfg, _ := countingConfig(srv, 1)
					sent, _ := op.healthy(3, "s")
					srv.SetDefault(fake.Response{Steps: steps(sent, tr.step)})
					return op.open(cfg, how)(context.Background(), readAll)
				}
				ref := outcome(bare)
				t.Logf("bare SDK: %d events, call error %v, stream error %v", len(ref.events), ref.callErr, ref.streamErr)
				got := outcome(clientOption)
				var se *smithyext.StatusError
				if got.callErr != nil || !errors.As(got.streamErr, &se) || se.Code != tr.code || se.Events != len(got.events) {
					t.Fatalf("plugin: call error %v, stream error %v; want %s after %d events", got.callErr, got.streamErr, tr.code, len(got.events))
				}
			})
		}
	}
}

// chunkFrameOfSize is an InvokeModelWithResponseStream chunk frame whose
// payload is exactly payloadLen bytes: {"bytes":"<base64>"} padded with
// JSON whitespace. It returns the frame and the chunk's decoded bytes.
func chunkFrameOfSize(payloadLen int) ([]byte, []byte) {
	const wrap = len(`{"bytes":""}`)
	n := (payloadLen - wrap) / 4 * 3
	data := []byte(strings.Repeat("abc", n/3))
	payload := `{"bytes":"` + base64.StdEncoding.EncodeToString(data) + `"}`
	payload += strings.Repeat(" ", payloadLen-len(payload))
	var m eventstream.Message
	m.Headers.Set(eventstream.MessageTypeHeader, eventstream.StringValue("event"))
	m.Headers.Set(eventstream.EventTypeHeader, eventstream.StringValue("chunk"))
	m.Headers.Set(eventstream.ContentTypeHeader, eventstream.StringValue("application/json"))
	m.Payload = []byte(payload)
	return fake.Frame(m), data
}

// TestFrameSizeBounds: the format allows payloads up to 24 MiB. A 24 MiB
// chunk is delivered as by the bare SDK; one byte more is a corrupt frame,
// reported clearly (the bare SDK, which has no limit, delivers it).
func TestFrameSizeBounds(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 24 MiB frames")
	}
	const maxPayload = 24 << 20
	for _, tc := range []struct {
		name    string
		payload int
		reject  bool
	}{
		{"17 MiB", 17 << 20, false},
		{"24 MiB", maxPayload, false},
		{"24 MiB + 1", maxPayload + 1, true},
	} {
		frame, data := chunkFrameOfSize(tc.payload)
		for _, how := range append([]install{bare}, installs...) {
			t.Run(tc.name+"/"+how.String(), func(t *testing.T) {
				srv := serverFor(t, how)
				srv.Enqueue(fake.Response{Steps: []fake.Step{fake.Raw(frame), fake.Chunk([]byte("after"))}})
				c := newClient(srv, how, 3)
				res := invokeBig(context.Background(), c)
				if !tc.reject || how == bare {
					if res.callErr != nil {
						t.Fatalf("call failed: %v", res.callErr)
					}
					if res.streamErr != nil || len(res.events) != 2 || res.events[0] != len(data) {
						t.Fatalf("events %v, stream error %v; want the %d-byte chunk and one more", res.events, res.streamErr, len(data))
					}
					return
				}
				// The first frame: the call fails, not retried.
				var se *smithyext.StatusError
				if !errors.As(res.callErr, &se) || se.Code != codeCorrupt || se.Retryable || srv.CallCount() != 1 ||
					!errors.Is(res.callErr, framing.ErrPreludeLength) ||
					!strings.Contains(res.callErr.Error(), fmt.Sprintf("payload length %d exceeds the event-stream limit of %d bytes", tc.payload, maxPayload)) {
					t.Fatalf("call error %v, %d calls; want a CorruptFrame naming the payload limit, not retried", res.callErr, srv.CallCount())
				}
			})
		}
	}
}

type bigResult struct {
	events    []int // chunk sizes
	callErr   error
	streamErr error
}

func invokeBig(ctx context.Context, c *bedrockruntime.Client) bigResult {
	out, err := c.InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{
		ModelId: aws.String("anthropic.claude-test"), Body: []byte(`{}`), ContentType: aws.String("application/json"),
	})
	if err != nil {
		return bigResult{callErr: err}
	}
	s := out.GetStream()
	defer s.Close()
	var r bigResult
	for ev := range s.Events() {
		if ch, ok := ev.(*types.ResponseStreamMemberChunk); ok {
			r.events = append(r.events, len(ch.Value.Bytes))
		}
	}
	r.streamErr = s.Err()
	return r
}
