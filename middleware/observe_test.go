package middleware

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go/metrics"
	smithymiddleware "github.com/aws/smithy-go/middleware"
	"github.com/aws/smithy-go/tracing"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/streamstatus/streamstatus/classify"

	"github.com/streamstatus/streamstatus/internal/streamerr"
	"github.com/streamstatus/streamstatus/smithyext"
)

// countingMeter counts records per instrument name.
type countingMeter struct {
	metrics.NopMeter
	mu     sync.Mutex
	counts map[string]int
}

type countingInstrument struct {
	m    *countingMeter
	name string
}

func (i countingInstrument) count() {
	i.m.mu.Lock()
	i.m.counts[i.name]++
	i.m.mu.Unlock()
}
func (i countingInstrument) Add(context.Context, int64, ...metrics.RecordMetricOption) { i.count() }
func (i countingInstrument) Record(context.Context, int64, ...metrics.RecordMetricOption) {
	i.count()
}

type countingFloat struct{ countingInstrument }

func (i countingFloat) Record(context.Context, float64, ...metrics.RecordMetricOption) { i.count() }

func (m *countingMeter) Int64Counter(name string, _ ...metrics.InstrumentOption) (metrics.Int64Counter, error) {
	return countingInstrument{m, name}, nil
}
func (m *countingMeter) Int64Histogram(name string, _ ...metrics.InstrumentOption) (metrics.Int64Histogram, error) {
	return countingInstrument{m, name}, nil
}
func (m *countingMeter) Float64Histogram(name string, _ ...metrics.InstrumentOption) (metrics.Float64Histogram, error) {
	return countingFloat{countingInstrument{m, name}}, nil
}

// endCountingTracer hands out spans that count End calls and keep their
// status.
type endCountingTracer struct{ spans []*endCountingSpan }

type endCountingSpan struct {
	tracing.Span // nil: only the methods below are called
	mu           sync.Mutex
	ends         int
	status       tracing.SpanStatus
	props        map[any]any
}

func (t *endCountingTracer) StartSpan(ctx context.Context, _ string, _ ...tracing.SpanOption) (context.Context, tracing.Span) {
	s := &endCountingSpan{props: map[any]any{}}
	t.spans = append(t.spans, s)
	return tracing.WithSpan(ctx, s), s
}
func (s *endCountingSpan) AddEvent(string, ...tracing.EventOption) {}
func (s *endCountingSpan) SetProperty(k, v any)                    { s.mu.Lock(); s.props[k] = v; s.mu.Unlock() }
func (s *endCountingSpan) SetStatus(st tracing.SpanStatus)         { s.mu.Lock(); s.status = st; s.mu.Unlock() }
func (s *endCountingSpan) End()                                    { s.mu.Lock(); s.ends++; s.mu.Unlock() }

// stackWith returns an event-stream stack whose Retry middleware is a.
func stackWith(t *testing.T, a smithymiddleware.FinalizeMiddleware) *smithymiddleware.Stack {
	t.Helper()
	stack := smithymiddleware.NewStack("ConverseStream", nil)
	noop := func(id string) smithymiddleware.DeserializeMiddleware {
		return smithymiddleware.DeserializeMiddlewareFunc(id, func(ctx context.Context, in smithymiddleware.DeserializeInput, next smithymiddleware.DeserializeHandler) (smithymiddleware.DeserializeOutput, smithymiddleware.Metadata, error) {
			return next.HandleDeserialize(ctx, in)
		})
	}
	if err := stack.Deserialize.Add(noop(eventStreamDeserializerID), smithymiddleware.After); err != nil {
		t.Fatal(err)
	}
	if err := stack.Finalize.Add(a, smithymiddleware.After); err != nil {
		t.Fatal(err)
	}
	return stack
}

type customRetry struct{}

func (customRetry) ID() string { return retryID }
func (customRetry) HandleFinalize(ctx context.Context, in smithymiddleware.FinalizeInput, next smithymiddleware.FinalizeHandler) (smithymiddleware.FinalizeOutput, smithymiddleware.Metadata, error) {
	return next.HandleFinalize(ctx, in)
}

// TestObserverFollowsTheClient: the observer is installed exactly when the
// client's Retry middleware carries a recording meter or LogAttempts.
func TestObserverFollowsTheClient(t *testing.T) {
	attempt := func(meter metrics.Meter, log bool) smithymiddleware.FinalizeMiddleware {
		return retry.NewAttemptMiddleware(retry.NewStandard(), func(v any) any { return v }, func(a *retry.Attempt) {
			a.OperationMeter, a.LogAttempts = meter, log
		})
	}
	for _, tc := range []struct {
		name  string
		retry smithymiddleware.FinalizeMiddleware
		want  bool
	}{
		{"SDK defaults: no-op meter, no LogRetries", attempt(metrics.NopMeterProvider{}.Meter("x"), false), false},
		{"recording meter", attempt(&countingMeter{counts: map[string]int{}}, false), true},
		{"LogRetries", attempt(metrics.NopMeterProvider{}.Meter("x"), true), true},
		{"a custom retry middleware", customRetry{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stack := stackWith(t, tc.retry)
			if err := APIOption()(stack); err != nil {
				t.Fatal(err)
			}
			if _, got := stack.Initialize.Get(ObserveID); got != tc.want {
				t.Fatalf("%s installed = %v, want %v", ObserveID, got, tc.want)
			}
		})
	}
}

// TestDefaultProvidersCostNothing: with the SDK's defaults nothing is
// allocated per call, and no stream observer exists to cost anything per
// event.
func TestDefaultProvidersCostNothing(t *testing.T) {
	ctx := tracing.WithOperationTracer(context.Background(), (&tracing.NopTracerProvider{}).Tracer("scope"))
	var o *streamObserver
	allocs := testing.AllocsPerRun(100, func() { o = newStreamObserver(ctx, streamerr.Stream{Service: "Bedrock Runtime"}, nil, nil) })
	if o != nil || allocs != 0 {
		t.Fatalf("default providers: observer %v, %v allocations; want nil and 0", o, allocs)
	}
	stack := stackWith(t, retry.NewAttemptMiddleware(retry.NewStandard(), func(v any) any { return v }))
	if allocs := testing.AllocsPerRun(100, func() { _ = addObserver(stack) }); allocs != 0 {
		t.Fatalf("addObserver with default providers: %v allocations, want 0", allocs)
	}
}

// observed returns a stream body observed by a counting meter and tracer.
func observedWith(t *testing.T, ctx context.Context, opts []Option, frames ...[]byte) (*streamBody, *countingMeter, *endCountingTracer, error) {
	t.Helper()
	return observedOn(t, ctx, "ConverseStream", opts, bytes.Join(frames, nil))
}

// observedOn returns a body of operation op over stream, read ahead,
// observed by a counting meter and tracer.
func observedOn(t *testing.T, ctx context.Context, op string, opts []Option, stream []byte) (*streamBody, *countingMeter, *endCountingTracer, error) {
	t.Helper()
	meter := &countingMeter{counts: map[string]int{}}
	inst, err := newInstruments(meter)
	if err != nil {
		t.Fatal(err)
	}
	tracer := &endCountingTracer{}
	ctx = tracing.WithOperationTracer(ctx, tracer)
	ctx = context.WithValue(ctx, callObserverKey{}, &callObserver{inst: inst})
	info := streamerr.Stream{Service: "Bedrock Runtime", Operation: op}
	b := newStreamBody(ctx, &closeRecorder{Reader: bytes.NewReader(stream)}, info, resolve(opts))
	b.obs = newStreamObserver(ctx, info, b.opts.classifier, nil)
	err = b.readAhead()
	return b, meter, tracer, err
}

func observed(t *testing.T, ctx context.Context, frames ...[]byte) (*streamBody, *countingMeter, *endCountingTracer, error) {
	t.Helper()
	return observedWith(t, ctx, nil, frames...)
}

// A non-content event is not a first chunk, even the one the read-ahead
// limit hands to the reader early: the time to first chunk is recorded
// when the first content event passes, and never for a stream without one.
func TestTimeToFirstChunkWaitsForContent(t *testing.T) {
	tinyReadAhead := []Option{func(o *Options) { o.ReadAheadLimit = 1 }}
	for _, tc := range []struct {
		name   string
		frames [][]byte
		want   int
	}{
		{"non-content only", [][]byte{event(t, "messageStart")}, 0},
		{"content after the read-ahead limit", [][]byte{event(t, "messageStart"), event(t, "messageStart"), event(t, "contentBlockDelta")}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, meter, tracer, err := observedWith(t, context.Background(), tinyReadAhead, tc.frames...)
			if err != nil {
				t.Fatal(err)
			}
			if n := meter.counts[metricTimeToFirstChunk]; n != 0 {
				t.Fatalf("time to first chunk recorded %d times after the read-ahead of a non-content event, want 0", n)
			}
			if _, err := io.Copy(io.Discard, b); err != nil {
				t.Fatal(err)
			}
			if n := meter.counts[metricTimeToFirstChunk]; n != tc.want {
				t.Errorf("time to first chunk recorded %d times, want %d", n, tc.want)
			}
			if _, ok := tracer.spans[0].props[attrFirstChunkAt]; ok != (tc.want == 1) {
				t.Errorf("span %s set: %t, want %t", attrFirstChunkAt, ok, tc.want == 1)
			}
			if got := tracer.spans[0].props[attrEvents]; got != len(tc.frames) {
				t.Errorf("span %s = %v, want %d", attrEvents, got, len(tc.frames))
			}
		})
	}
}

func TestClosedStreamEndsItsSpanOnceAndRecordsNoFailure(t *testing.T) {
	b, meter, tracer, err := observed(t, context.Background(), event(t, "contentBlockDelta"), event(t, "contentBlockDelta"), frame(t, "exception", ":exception-type", "internalServerException", `{"message":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := b.Read(buf); err != nil {
		t.Fatal(err)
	}
	// The consumer closes mid-stream, from another goroutine, while the
	// reader goroutine keeps reading to the end.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = b.Close() }()
	_, _ = io.Copy(io.Discard, b)
	wg.Wait()
	s := tracer.spans[0]
	if s.ends != 1 {
		t.Fatalf("span ended %d times, want 1", s.ends)
	}
	if meter.counts[metricTimeToFirstChunk] != 1 {
		t.Errorf("time to first chunk recorded %d times, want 1", meter.counts[metricTimeToFirstChunk])
	}
	// Whichever came first wins: a close records nothing; the reader's end
	// records the failure once.
	if n := meter.counts[metricFailures]; n > 1 || (n == 1) != (s.status == tracing.SpanStatusError) {
		t.Errorf("failures recorded %d, span status %v", n, s.status)
	}
}

func TestCanceledStreamIsNotAFailure(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	b, meter, tracer, err := observed(t, ctx, event(t, "contentBlockDelta"), event(t, "contentBlockDelta"))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	b.src = &closeRecorder{Reader: readerFunc(func([]byte) (int, error) { return 0, io.ErrUnexpectedEOF })}
	b.scan.Reset(b.src)
	_, err = io.Copy(io.Discard, b)
	if err == nil {
		t.Fatal("want the canceled stream's error")
	}
	if meter.counts[metricFailures] != 0 || tracer.spans[0].ends != 1 || tracer.spans[0].status == tracing.SpanStatusError {
		t.Fatalf("canceled: %d failures recorded, span ended %d times with status %v; want 0, 1, not Error",
			meter.counts[metricFailures], tracer.spans[0].ends, tracer.spans[0].status)
	}
	if got := tracer.spans[0].props[attrErrorType]; got != classify.CodeRequestCanceled {
		t.Errorf("span error.type = %v, want %s", got, classify.CodeRequestCanceled)
	}
}

// BenchmarkObservedPassThrough reads 1 and 1,000 events through the stream
// body without an observer (the SDK's default providers) and with a
// recording one, side by side: allocs/op must not grow with the events on
// either side, so nothing is allocated per event.
//
//	go test -run '^$' -bench BenchmarkObservedPassThrough ./middleware/
func BenchmarkObservedPassThrough(b *testing.B) {
	one := event(b, "chunk")
	r := resolve(nil)
	buf := make([]byte, 4096)
	inst, _ := newInstruments(&countingMeter{counts: map[string]int{}})
	for _, n := range []int{1, 1000} {
		stream := bytes.Repeat(one, n)
		for _, side := range []string{"default", "recording"} {
			ctx := context.Background()
			if side == "recording" {
				ctx = tracing.WithOperationTracer(ctx, &endCountingTracer{})
				ctx = context.WithValue(ctx, callObserverKey{}, &callObserver{inst: inst})
			}
			b.Run(fmt.Sprintf("events=%d/providers=%s", n, side), func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					src := &closeRecorder{Reader: bytes.NewReader(stream)}
					body := newStreamBody(ctx, src, streamerr.Stream{Service: "Bedrock Runtime"}, r)
					body.obs = newStreamObserver(ctx, body.info, r.classifier, nil)
					if err := body.readAhead(); err != nil {
						b.Fatal(err)
					}
					for {
						if _, err := body.Read(buf); err != nil {
							break
						}
					}
					_ = body.Close()
				}
			})
		}
	}
}

// The recorded code is a bounded set: table codes as they are, an envelope
// type no table knows as UnknownEnvelopeError (its text is the model
// provider's payload), a wire exception code only when it has the shape
// of a modeled code.
func TestRecordedCodeIsBounded(t *testing.T) {
	custom := classify.Table{ServiceID: classify.AnthropicServiceID, Rules: []classify.Rule{{Type: "timeout_error", Outcome: classify.Outcome{Code: "timeout_error", Status: 504, Retryable: true}}}}
	o := &streamObserver{service: "Bedrock Runtime", classifier: streamerr.New(classify.New(append(classify.DefaultTables(), custom)...))}
	for _, tc := range []struct {
		kind smithyext.Kind
		code string
		want string
	}{
		{smithyext.KindEnvelope, "overloaded_error", "overloaded_error"},
		{smithyext.KindEnvelope, "timeout_error", "timeout_error"}, // the client's own row
		{smithyext.KindEnvelope, "billing_error", codeUnknownEnvelope},
		{smithyext.KindEnvelope, "secret-payload user 4111-1111-1111-1111", codeUnknownEnvelope},
		{smithyext.KindException, "ThrottlingException", "ThrottlingException"},
		{smithyext.KindException, "NewlyModeledException", "NewlyModeledException"},
		{smithyext.KindErrorMessage, "Some.Code_2", "Some.Code_2"},
		{smithyext.KindException, "not a code: 4111-1111", codeUnknown},
		{smithyext.KindException, strings.Repeat("A", maxCodeLen+1), codeUnknown},
		{smithyext.KindException, "", codeUnknown}, // ErrorCode() of an empty code
		{smithyext.KindTransport, classify.CodeStreamInterrupted, classify.CodeStreamInterrupted},
		{smithyext.KindCorrupt, classify.CodeCorruptFrame, classify.CodeCorruptFrame},
	} {
		if got := o.code(&smithyext.StatusError{Kind: tc.kind, Code: tc.code}); got != tc.want {
			t.Errorf("%v %q recorded as %q, want %q", tc.kind, tc.code, got, tc.want)
		}
	}
}

func TestRequestModel(t *testing.T) {
	for path, want := range map[string]string{
		"/model/anthropic.claude-3-haiku-20240307-v1:0/converse-stream":                                   "anthropic.claude-3-haiku-20240307-v1:0",
		"/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.anthropic.x/converse-stream": "arn:aws:bedrock:us-east-1:1:inference-profile/us.anthropic.x",
		"/prefix/model/m/converse-stream":                                                                 "m",
		"/model/m/invoke-with-response-stream":                                                            "",
		"/model//converse-stream":                                                                         "",
		"/converse-stream":                                                                                "",
	} {
		u, err := url.Parse("https://bedrock-runtime.us-east-1.amazonaws.com" + path)
		if err != nil {
			t.Fatal(err)
		}
		if got := requestModel(&smithyhttp.Request{Request: &http.Request{URL: u}}); got != want {
			t.Errorf("requestModel(%s) = %q, want %q", path, got, want)
		}
	}
}
