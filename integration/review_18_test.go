package integration_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/smithy-go/logging"

	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/middleware"
)

// Review of issue 18 (observability). Each test fails on the code as it is.

func review18Client(srv *fake.Server, mp *memMeterProvider, tp *memTracerProvider) *bedrockruntime.Client {
	return bedrockruntime.NewFromConfig(testConfig(srv, 3), middleware.WithBedrock(),
		func(o *bedrockruntime.Options) { o.MeterProvider, o.TracerProvider = mp, tp })
}

// README: time_to_first_chunk runs "from the call's start (retries
// included) to the first content event". A ConverseStream that sends only
// messageStart (which streamstatus itself says is not content) and then ends
// delivered no content, yet a time to first chunk is recorded and the span
// gets a first_chunk event.
func TestDefect_TimeToFirstChunkWithoutContent(t *testing.T) {
	mp, tp := &memMeterProvider{}, &memTracerProvider{}
	srv := newServer(t)
	srv.Enqueue(fake.Response{Steps: []fake.Step{fake.MessageStart()}})
	res := converseStream.run(context.Background(), review18Client(srv, mp, tp))
	if res.callErr != nil || res.streamErr != nil || !equalStrings(res.events, []string{"start"}) {
		t.Fatalf("call %v stream %v events %q", res.callErr, res.streamErr, res.events)
	}
	if fc := mp.named("gen_ai.client.operation.time_to_first_chunk"); len(fc) != 0 {
		t.Errorf("time_to_first_chunk recorded %d times (%v s) for a stream with no content event, want 0", len(fc), fc[0].value)
	}
	if s := tp.named("EventStream"); len(s) == 1 && len(s[0].events) != 0 {
		t.Errorf("EventStream span events %v for a stream with no content, want none", s[0].events)
	}
}

// README: the EventStream span "has rpc.*, aws.request_id,
// streamstatus.events, ...". A consumer that closes the stream early gets a
// span without streamstatus.events: how far the stream got is lost.
func TestDefect_EarlyClosedSpanHasNoEventCount(t *testing.T) {
	mp, tp := &memMeterProvider{}, &memTracerProvider{}
	srv := newServer(t)
	content, _ := invokeStream.content(3, "p")
	srv.Enqueue(fake.Response{Steps: steps(content, []fake.Step{fake.Hang()})})
	out, err := review18Client(srv, mp, tp).InvokeModelWithResponseStream(context.Background(), &bedrockruntime.InvokeModelWithResponseStreamInput{
		ModelId: aws.String("anthropic.claude-test"), Body: []byte(`{"prompt":"hello"}`), ContentType: aws.String("application/json"),
	})
	if err != nil {
		t.Fatal(err)
	}
	s := out.GetStream()
	for i := 0; i < 2; i++ {
		<-s.Events()
	}
	_ = s.Close()
	spans := tp.named("EventStream")
	if len(spans) != 1 || spans[0].ends != 1 {
		t.Fatalf("%d EventStream spans, want 1 ended once", len(spans))
	}
	tp.mu.Lock()
	n, ok := spans[0].props["streamstatus.events"]
	tp.mu.Unlock()
	if !ok {
		t.Errorf("early-closed EventStream span has no streamstatus.events attribute (props %v)", spans[0].props)
	} else if n.(int) < 2 {
		t.Errorf("streamstatus.events = %v, want at least the 2 events delivered", n)
	}
}

// The code and README call gen_ai.client.operation.time_to_first_chunk "the
// GenAI semantic conventions' metric"; the conventions make
// gen_ai.operation.name ("chat" for a Converse call) and gen_ai.provider.name
// Required on it. Records carry neither gen_ai.operation.name (any service)
// nor gen_ai.provider.name (SageMaker).
func TestDefect_TimeToFirstChunkMissesRequiredSemconvAttributes(t *testing.T) {
	mp, tp := &memMeterProvider{}, &memTracerProvider{}
	srv := newServer(t)
	clean, _ := converseStream.healthy(2, "ok")
	srv.Enqueue(fake.Response{Steps: clean})
	if res := converseStream.run(context.Background(), review18Client(srv, mp, tp)); res.callErr != nil || res.streamErr != nil {
		t.Fatalf("call %v stream %v", res.callErr, res.streamErr)
	}
	fc := mp.named("gen_ai.client.operation.time_to_first_chunk")
	if len(fc) != 1 {
		t.Fatalf("%d time_to_first_chunk records, want 1", len(fc))
	}
	if got := fc[0].props["gen_ai.operation.name"]; got != "chat" {
		t.Errorf("time_to_first_chunk gen_ai.operation.name = %v, want chat (Required by the GenAI conventions); attributes %v", got, fc[0].props)
	}
	// Fix (README "Observability"): an InvokeModelWithResponseStream's
	// operation depends on the model's own body, so it records
	// streamstatus.stream.time_to_first_content and no GenAI metric that
	// would lack a Required attribute.
	invoke, _ := invokeStream.healthy(2, "ok")
	srv.Enqueue(fake.Response{Steps: invoke})
	if res := invokeStream.run(context.Background(), review18Client(srv, mp, tp)); res.callErr != nil || res.streamErr != nil {
		t.Fatalf("invoke: call %v stream %v", res.callErr, res.streamErr)
	}
	for _, r := range mp.named("gen_ai.client.operation.time_to_first_chunk") {
		if r.props["gen_ai.operation.name"] == nil || r.props["gen_ai.provider.name"] == nil {
			t.Errorf("time_to_first_chunk without a Required attribute: %v", r.props)
		}
	}
	if n := len(mp.named("streamstatus.stream.time_to_first_content")); n != 2 {
		t.Errorf("%d streamstatus.stream.time_to_first_content records, want 2 (one per stream)", n)
	}
}

// README: exception.type/error.type are "the modeled code" and the log line
// never carries "a payload". For an envelope whose error.type no table
// knows, the text of the chunk's payload goes verbatim into the metric
// attributes (unbounded cardinality) and into the Debug log line.
func TestDefect_UnknownEnvelopeTypeFromPayloadInMetricsAndLog(t *testing.T) {
	mp := &memMeterProvider{}
	var mu sync.Mutex
	var lines []string
	srv := newServer(t)
	cfg := testConfig(srv, 3)
	cfg.ClientLogMode = aws.LogRetries
	cfg.Logger = logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		mu.Lock()
		lines = append(lines, fmt.Sprintf(format, v...))
		mu.Unlock()
	})
	c := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(), func(o *bedrockruntime.Options) { o.MeterProvider = mp })
	content, _ := invokeStream.content(1, "p")
	const payloadText = "secret-payload user 4111-1111-1111-1111"
	srv.Enqueue(fake.Response{Steps: steps(content, []fake.Step{fake.AnthropicError(payloadText, "m")})})
	if res := invokeStream.run(context.Background(), c); res.streamErr == nil {
		t.Fatal("want the envelope as the stream's error")
	}
	for _, r := range mp.named("streamstatus.stream.failures") {
		if v := fmt.Sprint(r.props["exception.type"]); strings.Contains(v, "secret-payload") {
			t.Errorf("streamstatus.stream.failures exception.type = %q: payload text as a metric attribute", v)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, l := range lines {
		if strings.Contains(l, "secret-payload") {
			t.Errorf("log line carries payload text: %s", l)
		}
	}
}
