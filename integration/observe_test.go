package integration_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/metrics"
	"github.com/aws/smithy-go/tracing"

	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/middleware"
)

// ---- in-memory smithy-go providers: what a client's MeterProvider and
// TracerProvider receive, kept for the test to read ----

// memRecord is one Add or Record on an instrument.
type memRecord struct {
	scope, name, unit string
	value             float64
	props             map[string]any
}

type memMeterProvider struct {
	mu      sync.Mutex
	records []memRecord
}

func (p *memMeterProvider) Meter(scope string, _ ...metrics.MeterOption) metrics.Meter {
	return &memMeter{p: p, scope: scope}
}

// named returns the records of one instrument.
func (p *memMeterProvider) named(name string) []memRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []memRecord
	for _, r := range p.records {
		if r.name == name {
			out = append(out, r)
		}
	}
	return out
}

// memMeter records the three instrument kinds the SDK and the plugin use;
// the others are no-ops.
type memMeter struct {
	metrics.NopMeter
	p     *memMeterProvider
	scope string
}

type memInstrument struct {
	m          *memMeter
	name, unit string
}

func (m *memMeter) instrument(name string, opts []metrics.InstrumentOption) *memInstrument {
	var o metrics.InstrumentOptions
	for _, fn := range opts {
		fn(&o)
	}
	return &memInstrument{m: m, name: name, unit: o.UnitLabel}
}

func (m *memMeter) Int64Counter(name string, opts ...metrics.InstrumentOption) (metrics.Int64Counter, error) {
	return m.instrument(name, opts), nil
}

func (m *memMeter) Int64Histogram(name string, opts ...metrics.InstrumentOption) (metrics.Int64Histogram, error) {
	return m.instrument(name, opts), nil
}

func (m *memMeter) Float64Histogram(name string, opts ...metrics.InstrumentOption) (metrics.Float64Histogram, error) {
	return floatInstrument{m.instrument(name, opts)}, nil
}

func (i *memInstrument) record(v float64, opts []metrics.RecordMetricOption) {
	var o metrics.RecordMetricOptions
	for _, fn := range opts {
		fn(&o)
	}
	props := map[string]any{}
	for k, v := range o.Properties.Values() {
		props[fmt.Sprint(k)] = v
	}
	i.m.p.mu.Lock()
	i.m.p.records = append(i.m.p.records, memRecord{scope: i.m.scope, name: i.name, unit: i.unit, value: v, props: props})
	i.m.p.mu.Unlock()
}

func (i *memInstrument) Add(_ context.Context, v int64, opts ...metrics.RecordMetricOption) {
	i.record(float64(v), opts)
}

func (i *memInstrument) Record(_ context.Context, v int64, opts ...metrics.RecordMetricOption) {
	i.record(float64(v), opts)
}

type floatInstrument struct{ *memInstrument }

func (i floatInstrument) Record(_ context.Context, v float64, opts ...metrics.RecordMetricOption) {
	i.record(v, opts)
}

type memTracerProvider struct {
	mu    sync.Mutex
	spans []*memSpan
}

func (p *memTracerProvider) Tracer(string, ...tracing.TracerOption) tracing.Tracer {
	return memTracer{p}
}

type memTracer struct{ p *memTracerProvider }

type memSpan struct {
	p      *memTracerProvider
	name   string
	parent *memSpan
	props  map[string]any
	events []string
	status tracing.SpanStatus
	// ends counts End calls; endedAfter lists the spans that had already
	// ended when this one did.
	ends int
	seq  int // order of End among all spans; 0 while open
}

func (t memTracer) StartSpan(ctx context.Context, name string, opts ...tracing.SpanOption) (context.Context, tracing.Span) {
	var o tracing.SpanOptions
	for _, fn := range opts {
		fn(&o)
	}
	s := &memSpan{p: t.p, name: name, props: map[string]any{}}
	if parent, ok := tracing.GetSpan(ctx); ok {
		s.parent, _ = parent.(*memSpan)
	}
	for k, v := range o.Properties.Values() {
		s.props[fmt.Sprint(k)] = v
	}
	t.p.mu.Lock()
	t.p.spans = append(t.p.spans, s)
	t.p.mu.Unlock()
	return tracing.WithSpan(ctx, s), s
}

func (s *memSpan) Name() string                 { return s.name }
func (s *memSpan) Context() tracing.SpanContext { return tracing.SpanContext{} }
func (s *memSpan) AddEvent(name string, _ ...tracing.EventOption) {
	s.p.mu.Lock()
	s.events = append(s.events, name)
	s.p.mu.Unlock()
}
func (s *memSpan) SetStatus(st tracing.SpanStatus) { s.p.mu.Lock(); s.status = st; s.p.mu.Unlock() }
func (s *memSpan) SetProperty(k, v any)            { s.p.mu.Lock(); s.props[fmt.Sprint(k)] = v; s.p.mu.Unlock() }
func (s *memSpan) End() {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	s.ends++
	if s.seq == 0 {
		n := 0
		for _, o := range s.p.spans {
			if o.seq > n {
				n = o.seq
			}
		}
		s.seq = n + 1
	}
}

// named returns the spans with a name, in start order.
func (p *memTracerProvider) named(name string) []*memSpan {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*memSpan
	for _, s := range p.spans {
		if s.name == name {
			out = append(out, s)
		}
	}
	return out
}

// ---- what the tests expect ----

// wantFailure is the attributes of one converted failure.
type wantFailure struct {
	service, method, code string
	status                int
	retryable, throttle   bool
	position, kind        string
	provider              string // "" = attribute absent
}

func (w wantFailure) props() map[string]any {
	p := map[string]any{
		"rpc.service": w.service, "rpc.method": w.method,
		"exception.type": w.code, "error.type": w.code,
		"streamstatus.retryable": w.retryable, "streamstatus.throttle": w.throttle,
		"streamstatus.position": w.position, "streamstatus.kind": w.kind,
	}
	if w.status != 0 {
		p["http.response.status_code"] = w.status
	}
	if w.provider != "" {
		p["gen_ai.provider.name"] = w.provider
	}
	return p
}

func diffProps(got, want map[string]any) string {
	var d []string
	for k, v := range want {
		if got[k] != v {
			d = append(d, fmt.Sprintf("%s=%v (want %v)", k, got[k], v))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			d = append(d, fmt.Sprintf("unexpected %s=%v", k, got[k]))
		}
	}
	sort.Strings(d)
	return strings.Join(d, ", ")
}

// checkObserved pins what one call recorded: the failures counter, the
// events-before-failure histogram, time to first chunk, and the stream
// spans (one per attempt that got a 200).
func checkObserved(t *testing.T, mp *memMeterProvider, tp *memTracerProvider, failures []wantFailure, eventsBefore []float64, firstChunks, streams int) {
	t.Helper()
	got := mp.named("streamstatus.stream.failures")
	if len(got) != len(failures) {
		t.Fatalf("%d streamstatus.stream.failures records, want %d: %+v", len(got), len(failures), got)
	}
	for i, w := range failures {
		if got[i].value != 1 || got[i].unit != "{failure}" {
			t.Errorf("failure %d: value %v unit %q, want 1 {failure}", i, got[i].value, got[i].unit)
		}
		if d := diffProps(got[i].props, w.props()); d != "" {
			t.Errorf("failure %d attributes: %s", i, d)
		}
	}
	eb := mp.named("streamstatus.stream.events_before_failure")
	if len(eb) != len(eventsBefore) {
		t.Fatalf("%d events_before_failure records, want %d", len(eb), len(eventsBefore))
	}
	for i, v := range eventsBefore {
		if eb[i].value != v || eb[i].props["streamstatus.position"] != "after_content" {
			t.Errorf("events_before_failure %d = %v %v, want %v after content", i, eb[i].value, eb[i].props, v)
		}
	}
	fc := mp.named("streamstatus.stream.time_to_first_content")
	if len(fc) != firstChunks {
		t.Fatalf("%d time_to_first_content records, want %d", len(fc), firstChunks)
	}
	var chats []float64
	for _, r := range fc {
		if r.unit != "s" || r.value <= 0 || r.value > 10 {
			t.Errorf("time_to_first_content = %v %s, want a few ms in seconds", r.value, r.unit)
		}
		if r.props["rpc.method"] == "ConverseStream" {
			chats = append(chats, r.value)
		}
	}
	// The GenAI conventions' metric only where its Required attributes
	// have a value: ConverseStream is a chat; the others record none.
	genAI := mp.named("gen_ai.client.operation.time_to_first_chunk")
	if len(genAI) != len(chats) {
		t.Fatalf("%d gen_ai time_to_first_chunk records, want %d (one per ConverseStream first content)", len(genAI), len(chats))
	}
	for i, r := range genAI {
		want := map[string]any{"gen_ai.operation.name": "chat", "gen_ai.provider.name": "aws.bedrock", "gen_ai.request.model": "anthropic.claude-test"}
		if d := diffProps(pick(r.props, want), want); d != "" || r.value != chats[i] || r.unit != "s" {
			t.Errorf("gen_ai time_to_first_chunk %v %s %v: %s; want the time to first content %v", r.value, r.unit, r.props, d, chats[i])
		}
	}

	spans := tp.named("EventStream")
	if len(spans) != streams {
		t.Fatalf("%d EventStream spans, want %d", len(spans), streams)
	}
	failed := 0
	for _, s := range spans {
		if s.ends != 1 {
			t.Errorf("EventStream span ended %d times, want 1", s.ends)
		}
		if s.parent == nil || s.parent.name != "Attempt" {
			t.Errorf("EventStream span's parent = %v, want the SDK's Attempt span", s.parent)
		}
		if s.status == tracing.SpanStatusError {
			if d := diffProps(pick(s.props, failures[failed].props()), failures[failed].props()); d != "" {
				t.Errorf("span of failure %d: %s", failed, d)
			}
			failed++
		} else if s.status != tracing.SpanStatusOK {
			t.Errorf("EventStream span status %v, want OK or Error", s.status)
		}
	}
	if failed != len(failures) {
		t.Errorf("%d EventStream spans with status Error, want %d", failed, len(failures))
	}
}

// pick returns the entries of m whose keys are in keys.
func pick(m, keys map[string]any) map[string]any {
	out := map[string]any{}
	for k := range keys {
		if v, ok := m[k]; ok {
			out[k] = v
		}
	}
	return out
}

// observedBedrock returns a bedrockruntime client that meters and traces
// into mp and tp, with the plugin installed the given way, and the per-call
// options the calls need.
func observedBedrock(srv *fake.Server, how string, mp *memMeterProvider, tp *memTracerProvider) (*bedrockruntime.Client, []func(*bedrockruntime.Options)) {
	cfg := testConfig(srv, 3)
	providers := func(o *bedrockruntime.Options) { o.MeterProvider, o.TracerProvider = mp, tp }
	switch how {
	case "WithBedrock":
		return bedrockruntime.NewFromConfig(cfg, providers, middleware.WithBedrock()), nil
	case "WithBedrock per call":
		return bedrockruntime.NewFromConfig(cfg, providers), []func(*bedrockruntime.Options){middleware.WithBedrock()}
	case "APIOption":
		return bedrockruntime.NewFromConfig(cfg, providers, bedrockruntime.WithAPIOptions(middleware.APIOption())), nil
	case "AppendMiddlewares":
		middleware.AppendMiddlewares(&cfg.APIOptions)
		// The providers set after the plugin: the order of options must not matter.
		return bedrockruntime.NewFromConfig(cfg, providers), nil
	}
	panic(how)
}

var observedInstalls = []string{"WithBedrock", "WithBedrock per call", "APIOption", "AppendMiddlewares"}

func TestObserveBedrock(t *testing.T) {
	bedrock := func(method, code string, status int, throttle bool, position, kind string) wantFailure {
		return wantFailure{service: "Bedrock Runtime", method: method, code: code, status: status, retryable: true, throttle: throttle,
			position: position, kind: kind, provider: "aws.bedrock"}
	}
	for _, how := range observedInstalls {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			t.Run("first-frame throttle retried", func(t *testing.T) {
				mp, tp := &memMeterProvider{}, &memTracerProvider{}
				srv := newServer(t)
				c, perCall := observedBedrock(srv, how, mp, tp)
				clean, want := converseStream.healthy(2, "clean")
				srv.Enqueue(fake.Response{Steps: steps(converseStream.preamble, []fake.Step{fake.Exception("throttlingException", "slow down")})},
					fake.Response{Steps: clean})
				res := converseStream.run(context.Background(), c, perCall...)
				if res.callErr != nil || res.streamErr != nil || !equalStrings(res.events, want) {
					t.Fatalf("call %v stream %v events %q; want a transparent retry", res.callErr, res.streamErr, res.events)
				}
				checkObserved(t, mp, tp, []wantFailure{bedrock("ConverseStream", "ThrottlingException", 429, true, "before_content", "exception")}, nil, 1, 2)
				// The SDK's own attempt error counter saw the same failure.
				if errs := mp.named("client.call.errors"); len(errs) != 1 || errs[0].props["exception.type"] != "ThrottlingException" {
					t.Errorf("client.call.errors = %+v, want one ThrottlingException", errs)
				}
			})
			t.Run("mid-stream 500 after 3 events", func(t *testing.T) {
				mp, tp := &memMeterProvider{}, &memTracerProvider{}
				srv := newServer(t)
				c, perCall := observedBedrock(srv, how, mp, tp)
				content, want := invokeStream.content(3, "part")
				srv.Enqueue(fake.Response{Steps: steps(content, []fake.Step{fake.Exception("internalServerException", "internal")})})
				res := invokeStream.run(context.Background(), c, perCall...)
				if res.callErr != nil || res.streamErr == nil || !equalStrings(res.events, want) {
					t.Fatalf("call %v stream %v events %q; want 3 events then the typed error", res.callErr, res.streamErr, res.events)
				}
				checkObserved(t, mp, tp, []wantFailure{bedrock("InvokeModelWithResponseStream", "InternalServerException", 500, false, "after_content", "exception")}, []float64{3}, 1, 1)
				// The failure came after the operation's span ended; the
				// stream's span carries it, and says how many events went out.
				op, stream := tp.named("Bedrock Runtime.InvokeModelWithResponseStream"), tp.named("EventStream")
				if len(op) != 1 || op[0].seq == 0 || stream[0].seq < op[0].seq {
					t.Errorf("operation span end #%d, stream span end #%d: the stream's span must outlive the call", op[0].seq, stream[0].seq)
				}
				if stream[0].props["streamstatus.events"] != 3 || stream[0].props["aws.request_id"] != srv.Calls()[0].RequestID {
					t.Errorf("stream span events=%v aws.request_id=%v, want 3 and %s", stream[0].props["streamstatus.events"], stream[0].props["aws.request_id"], srv.Calls()[0].RequestID)
				}
			})
			t.Run("anthropic envelope", func(t *testing.T) {
				mp, tp := &memMeterProvider{}, &memTracerProvider{}
				srv := newServer(t)
				c, perCall := observedBedrock(srv, how, mp, tp)
				content, _ := invokeStream.content(2, "part")
				srv.Enqueue(fake.Response{Steps: steps(content, []fake.Step{fake.AnthropicError("overloaded_error", "Overloaded")})})
				res := invokeStream.run(context.Background(), c, perCall...)
				if res.streamErr == nil {
					t.Fatal("want the envelope as the stream's error")
				}
				w := bedrock("InvokeModelWithResponseStream", "overloaded_error", 529, true, "after_content", "error envelope")
				checkObserved(t, mp, tp, []wantFailure{w}, []float64{2}, 1, 1)
			})
			t.Run("healthy stream", func(t *testing.T) {
				mp, tp := &memMeterProvider{}, &memTracerProvider{}
				srv := newServer(t)
				c, perCall := observedBedrock(srv, how, mp, tp)
				clean, want := converseStream.healthy(3, "ok")
				srv.Enqueue(fake.Response{Steps: clean})
				res := converseStream.run(context.Background(), c, perCall...)
				if res.callErr != nil || res.streamErr != nil || !equalStrings(res.events, want) {
					t.Fatalf("call %v stream %v events %q", res.callErr, res.streamErr, res.events)
				}
				checkObserved(t, mp, tp, nil, nil, 1, 1)
				if s := tp.named("EventStream")[0]; s.props["streamstatus.events"] != len(want) || len(s.events) != 1 || s.events[0] != "first_chunk" {
					t.Errorf("healthy stream span: events=%v span events %v, want %d and [first_chunk]", s.props["streamstatus.events"], s.events, len(want))
				}
			})
		})
	}
}

// TestObserveSageMaker: the same through AppendMiddlewares on a
// sagemakerruntime client (no provider name: the conventions list none for
// SageMaker).
func TestObserveSageMaker(t *testing.T) {
	part := func(text string) fake.Step { return fake.PayloadPart([]byte(text)) }
	failure := fake.Exception("InternalStreamFailure", "try again")
	for _, tc := range []struct {
		name      string
		responses []fake.Response
		events    int
		want      []wantFailure
		before    []float64
		streams   int
	}{
		{"first-frame failure retried", []fake.Response{{Steps: []fake.Step{failure}}, {Steps: []fake.Step{part("a"), part("b")}}}, 2,
			[]wantFailure{{service: "SageMaker Runtime", method: "InvokeEndpointWithResponseStream", code: "InternalStreamFailure", status: 500, retryable: true, position: "before_content", kind: "exception"}},
			nil, 2},
		{"mid-stream failure after 3 events", []fake.Response{{Steps: []fake.Step{part("a"), part("b"), part("c"), failure}}}, 3,
			[]wantFailure{{service: "SageMaker Runtime", method: "InvokeEndpointWithResponseStream", code: "InternalStreamFailure", status: 500, retryable: true, position: "after_content", kind: "exception"}},
			[]float64{3}, 1},
		{"healthy", []fake.Response{{Steps: []fake.Step{part("a")}}}, 1, nil, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mp, tp := &memMeterProvider{}, &memTracerProvider{}
			srv := newServer(t)
			srv.Enqueue(tc.responses...)
			cfg := testConfig(srv, 3)
			middleware.AppendMiddlewares(&cfg.APIOptions)
			c := sagemakerruntime.NewFromConfig(cfg, func(o *sagemakerruntime.Options) { o.MeterProvider, o.TracerProvider = mp, tp })
			out, err := c.InvokeEndpointWithResponseStream(context.Background(), &sagemakerruntime.InvokeEndpointWithResponseStreamInput{
				EndpointName: aws.String("my-endpoint"), Body: []byte(`{"inputs":"hi"}`), ContentType: aws.String("application/json"),
			})
			if err != nil {
				t.Fatal(err)
			}
			res := collect(out.GetStream(), renderPayloadPart)
			if len(res.events) != tc.events {
				t.Fatalf("%d events (%v), want %d", len(res.events), res.streamErr, tc.events)
			}
			checkObserved(t, mp, tp, tc.want, tc.before, 1, tc.streams)
		})
	}
}

// TestObserveLogging: with LogRetries, one Debug line per converted
// failure, without the credentials, the request's headers, the service's
// message or any payload; without it, nothing.
func TestObserveLogging(t *testing.T) {
	for _, logRetries := range []bool{true, false} {
		t.Run(fmt.Sprintf("LogRetries=%v", logRetries), func(t *testing.T) {
			var mu sync.Mutex
			var lines []string
			logger := logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
				mu.Lock()
				lines = append(lines, string(c)+" "+fmt.Sprintf(format, v...))
				mu.Unlock()
			})
			srv := newServer(t)
			cfg := testConfig(srv, 3)
			if logRetries {
				cfg.ClientLogMode = aws.LogRetries
			}
			cfg.Logger = logger
			c := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock())
			content, _ := invokeStream.content(3, "secret-payload")
			srv.Enqueue(
				fake.Response{Steps: []fake.Step{fake.Exception("throttlingException", "message-from-the-service")}},
				fake.Response{Steps: steps(content, []fake.Step{fake.Exception("internalServerException", "message-from-the-service")})},
			)
			res := invokeStream.run(context.Background(), c)
			if res.callErr != nil || res.streamErr == nil {
				t.Fatalf("call %v stream %v; want a retried throttle, then a failure after content", res.callErr, res.streamErr)
			}
			var ours []string
			for _, l := range lines {
				for _, leak := range []string{testAccessKey, testSecretKey, "AWS4-HMAC-SHA256", "Authorization", "secret-payload", "message-from-the-service", "hello"} {
					if strings.Contains(l, leak) {
						t.Errorf("log line leaks %q: %s", leak, l)
					}
				}
				if strings.Contains(l, "event stream failure") {
					ours = append(ours, l)
				}
			}
			if !logRetries {
				if len(ours) != 0 {
					t.Fatalf("LogRetries off, yet: %q", ours)
				}
				return
			}
			want := []string{
				"DEBUG event stream failure Bedrock Runtime/InvokeModelWithResponseStream: ThrottlingException (HTTP 429, retryable=true, throttle=true), before_content after 0 events, kind exception, request id " + srv.Calls()[0].RequestID,
				"DEBUG event stream failure Bedrock Runtime/InvokeModelWithResponseStream: InternalServerException (HTTP 500, retryable=true, throttle=false), after_content after 3 events, kind exception, request id " + srv.Calls()[1].RequestID,
			}
			if !equalStrings(ours, want) {
				t.Fatalf("log lines:\n%s\nwant:\n%s", strings.Join(ours, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// BenchmarkObserve streams through the plugin with the SDK's default
// (no-op) providers and with recording ones (in-memory metrics and spans,
// LogRetries on), side by side in one run, at 1 and 1,000 events per call,
// so the per-call and per-event costs separate:
//
//	go test -run '^$' -bench BenchmarkObserve -count 6 ./integration/
func BenchmarkObserve(b *testing.B) {
	for _, events := range []int{1, 1000} {
		for _, side := range []string{"default", "recording"} {
			b.Run(fmt.Sprintf("events=%d/providers=%s", events, side), func(b *testing.B) {
				srv := newServer(b)
				srv.SetDefault(fake.Response{Steps: []fake.Step{chunkStream(events, 100)}})
				cfg := testConfig(srv, 1)
				opts := []func(*bedrockruntime.Options){middleware.WithBedrock()}
				if side == "recording" {
					cfg.ClientLogMode = aws.LogRetries
					cfg.Logger = logging.Nop{}
					opts = append(opts, func(o *bedrockruntime.Options) {
						o.MeterProvider, o.TracerProvider = &memMeterProvider{}, &memTracerProvider{}
					})
				}
				c := bedrockruntime.NewFromConfig(cfg, opts...)
				input := &bedrockruntime.InvokeModelWithResponseStreamInput{
					ModelId: aws.String("anthropic.claude-test"), Body: []byte(`{"prompt":"hi"}`), ContentType: aws.String("application/json"),
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					out, err := c.InvokeModelWithResponseStream(context.Background(), input)
					if err != nil {
						b.Fatal(err)
					}
					stream := out.GetStream()
					got := 0
					for range stream.Events() {
						got++
					}
					if stream.Err() != nil || got != events {
						b.Fatalf("%d events, error %v", got, stream.Err())
					}
					stream.Close()
				}
				b.StopTimer()
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
			})
		}
	}
}
