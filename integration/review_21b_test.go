package integration_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	smithymiddleware "github.com/aws/smithy-go/middleware"

	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/middleware"
	"github.com/streamstatus/streamstatus/smithyext"
)

// holdingClient is an aws.HTTPClient that keeps every request for the
// model "hold" waiting before it is sent, until release is closed: those
// attempts wait for their responses inside the deserialize step, which is
// what makes an installation busy (as many of them as GOMAXPROCS).
type holdingClient struct {
	next    aws.HTTPClient
	release chan struct{}
	held    atomic.Int64
}

func (c *holdingClient) Do(req *http.Request) (*http.Response, error) {
	if strings.Contains(req.URL.Path, "/model/hold/") || strings.Contains(req.URL.Path, "/endpoints/hold/") {
		c.held.Add(1)
		select {
		case <-c.release:
		case <-req.Context().Done():
			return nil, req.Context().Err() // the holder gave up: no stream (so none shares the SDK's codec)
		}
	}
	return c.next.Do(req)
}

// holdBusy makes the client's installation busy: it starts GOMAXPROCS
// calls, each run by call on a goroutine of its own, and returns once the
// client holds all of them before their responses. wait waits for those
// calls to end (close c.release, or cancel their context, first).
func (c *holdingClient) holdBusy(call func()) (wait func()) {
	var calls sync.WaitGroup
	n := runtime.GOMAXPROCS(0)
	for range n {
		calls.Add(1)
		go func() {
			defer calls.Done()
			call()
		}()
	}
	for c.held.Load() < int64(n) {
		time.Sleep(time.Millisecond)
	}
	return calls.Wait
}

// yieldAfterDeserializer is a user's deserialize middleware placed right
// outside the SDK's event-stream deserializer (so between it and
// streamstatus.AwaitReadAhead): after the SDK built the output and started
// its reader, it takes a moment (a log line, a metric, a lock; here a short
// sleep, standing for the caller's goroutine being descheduled for that
// long on a loaded machine, which is what a busy installation is).
type yieldAfterDeserializer struct{ d time.Duration }

func (yieldAfterDeserializer) ID() string { return "review21b.YieldAfterDeserializer" }

func (m yieldAfterDeserializer) HandleDeserialize(ctx context.Context, in smithymiddleware.DeserializeInput, next smithymiddleware.DeserializeHandler) (
	smithymiddleware.DeserializeOutput, smithymiddleware.Metadata, error,
) {
	out, md, err := next.HandleDeserialize(ctx, in)
	time.Sleep(m.d)
	return out, md, err
}

// later is when a stream's next event comes in these tests: long after a
// call that waits only for the read-ahead returns (~20 ms), the 1 s the
// tests allow it.
const later = 1500 * time.Millisecond

// Review 21b, defect 1, through the real SDK (bedrockruntime v1.63.13) and
// a socket. A stream's first chunk arrives at once, its second 1.5 s later (later).
// On a busy installation (GOMAXPROCS other attempts of the client waiting
// for their responses) the caller takes the stream body's mutex to run the
// read-ahead; when the SDK's reader goroutine got to the body first (here:
// the caller's goroutine is held up 20 ms between the SDK's deserializer
// and AwaitReadAhead), the reader has already run the read-ahead, handed the
// first event to the SDK's pipe goroutine and is waiting on the connection
// for the second frame with the mutex held. InvokeModelWithResponseStream
// then returns only when the second chunk arrives: 1.5 s instead of ~20 ms,
// the time to first token of a healthy stream taken hostage by the next
// token. The same client, not busy, returns at once.
func TestReview21b_BusyCallReturnsOnlyAtTheSecondChunk(t *testing.T) {
	for _, how := range installs {
		for _, busy := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/busy=%v", how, busy), func(t *testing.T) {
				elapsed := timeToReturn(t, how, busy, yieldAfterDeserializer{d: 20 * time.Millisecond})
				if elapsed > time.Second {
					t.Fatalf("InvokeModelWithResponseStream returned %v after it was called: only when the stream's second "+
						"chunk arrived (1.5 s after the first); want it to return once the read-ahead saw the first chunk "+
						"(about 20 ms here), as it does when the installation is not busy", elapsed.Round(time.Millisecond))
				}
			})
		}
	}
}

// timeToReturn makes one InvokeModelWithResponseStream call (first chunk at
// once, the second 1.5 s later (later)) on a client installed as how, with procs
// other attempts of the client held before their responses when busy, and
// returns how long the call took to return its output.
func timeToReturn(t *testing.T, how install, busy bool, extra smithymiddleware.DeserializeMiddleware) time.Duration {
	t.Helper()
	srv := newServer(t)
	srv.SetScript(func(call fake.Call) fake.Response {
		if call.ModelID == "hold" {
			return fake.Response{Steps: []fake.Step{fake.Chunk([]byte("held"))}}
		}
		return fake.Response{Steps: []fake.Step{fake.Chunk([]byte("first")), fake.Pause(later), fake.Chunk([]byte("second"))}}
	})
	cfg := testConfig(srv, 1)
	hc := &holdingClient{next: awshttp.NewBuildableClient(), release: make(chan struct{})}
	cfg.HTTPClient = hc
	var optFns []func(*bedrockruntime.Options)
	switch how {
	case clientOption:
		optFns = append(optFns, middleware.WithBedrock())
	case apiOption:
		optFns = append(optFns, bedrockruntime.WithAPIOptions(middleware.APIOption()))
	case configWide:
		middleware.AppendMiddlewares(&cfg.APIOptions)
	}
	if extra != nil {
		optFns = append(optFns, bedrockruntime.WithAPIOptions(func(s *smithymiddleware.Stack) error {
			return s.Deserialize.Insert(extra, "OperationEventStreamDeserializer", smithymiddleware.Before)
		}))
	}
	c := bedrockruntime.NewFromConfig(cfg, optFns...)

	holdCtx, release := context.WithCancel(context.Background())
	waitHolders := func() {}
	defer func() { waitHolders() }()
	defer release()
	defer close(hc.release)
	if busy {
		waitHolders = hc.holdBusy(func() {
			_, _ = c.InvokeModelWithResponseStream(holdCtx, &bedrockruntime.InvokeModelWithResponseStreamInput{
				ModelId: aws.String("hold"), Body: []byte(`{"prompt":"hold"}`), ContentType: aws.String("application/json"),
			})
		})
	}
	start := time.Now()
	out, err := c.InvokeModelWithResponseStream(context.Background(), &bedrockruntime.InvokeModelWithResponseStreamInput{
		ModelId: aws.String("anthropic.claude-test"), Body: []byte(`{"prompt":"hello"}`), ContentType: aws.String("application/json"),
	})
	elapsed := time.Since(start)
	release()
	if err != nil {
		t.Fatalf("call error %v on a healthy stream", err)
	}
	res := collect(out.GetStream(), renderChunk)
	if res.streamErr != nil || !equalStrings(res.events, []string{"chunk:first", "chunk:second"}) {
		t.Fatalf("stream: events %q, err %v; want the two chunks, no error", res.events, res.streamErr)
	}
	return elapsed
}

// tracingOn: smithy-go v1.28.9's tracing.WithSpan appends to a span
// lineage slice shared with the transport's dial goroutine (an SDK race,
// aws/transport/http traceDialContext, seen under -race with any tracer):
// off, so -race reports only what concerns streamstatus.
const tracingOn = false

// stress21b: many streams on one busy client (procs attempts held before
// their responses for the whole run, so every response takes the busy
// path), with tracing, metrics and both stall timeouts on, under -race:
// each stream's events exact, failures before content retried, failures
// after content typed.
func TestReview21bBusyStress(t *testing.T) {
	if testing.Short() {
		t.Skip("stress")
	}
	srv := newServer(t)
	var mu sync.Mutex
	attempts := map[string]int{}
	srv.SetScript(func(call fake.Call) fake.Response {
		if call.ModelID == "hold" {
			return fake.Response{Steps: []fake.Step{fake.Chunk([]byte("held"))}}
		}
		mu.Lock()
		attempts[call.ModelID]++
		n := attempts[call.ModelID]
		mu.Unlock()
		var i int
		fmt.Sscanf(call.ModelID, "m-%d", &i)
		steps, _ := chunks(8, call.ModelID)
		switch {
		case i%3 == 0 && n == 1:
			return fake.Response{Steps: []fake.Step{fake.Exception("throttlingException", "slow")}}
		case i%3 == 1:
			return fake.Response{Steps: append(steps[:2:2], fake.Exception("internalServerException", "boom"))}
		}
		return fake.Response{Steps: steps}
	})
	cfg := testConfig(srv, 3)
	hc := &holdingClient{next: awshttp.NewBuildableClient(), release: make(chan struct{})}
	cfg.HTTPClient = hc
	mp, tp := &memMeterProvider{}, &memTracerProvider{}
	c := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithFirstEventTimeout(5*time.Second), middleware.WithIdleTimeout(5*time.Second)),
		func(o *bedrockruntime.Options) {
			o.MeterProvider = mp
			if tracingOn {
				o.TracerProvider = tp
			}
		})
	n := runtime.GOMAXPROCS(0)
	waitHolders := hc.holdBusy(func() {
		out, err := c.InvokeModelWithResponseStream(context.Background(), &bedrockruntime.InvokeModelWithResponseStreamInput{
			ModelId: aws.String("hold"), Body: []byte(`{}`), ContentType: aws.String("application/json")})
		if err == nil {
			collect(out.GetStream(), renderChunk)
		}
	})
	const calls = 60
	var wg sync.WaitGroup
	errs := make(chan string, calls)
	for i := 0; i < calls; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			model := fmt.Sprintf("m-%d", i)
			_, want := chunks(8, model)
			out, err := c.InvokeModelWithResponseStream(context.Background(), &bedrockruntime.InvokeModelWithResponseStreamInput{
				ModelId: aws.String(model), Body: []byte(`{}`), ContentType: aws.String("application/json")})
			if err != nil {
				errs <- fmt.Sprintf("%s: call error %v", model, err)
				return
			}
			res := collect(out.GetStream(), renderChunk)
			switch i % 3 {
			case 1:
				if !equalStrings(res.events, want[:2]) || res.streamErr == nil {
					errs <- fmt.Sprintf("%s: events %q err %v", model, res.events, res.streamErr)
				}
			default:
				if !equalStrings(res.events, want) || res.streamErr != nil {
					errs <- fmt.Sprintf("%s: events %q err %v", model, res.events, res.streamErr)
				}
			}
		}(i)
	}
	wg.Wait()
	close(hc.release)
	waitHolders()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if !tracingOn {
		if got, want := len(mp.named("streamstatus.stream.failures")), calls/3+calls/3; got != want {
			t.Errorf("%d failures recorded, want %d", got, want)
		}
		return
	}
	spans := tp.named("EventStream")
	ended := 0
	for _, s := range spans {
		tp.mu.Lock()
		if s.ends != 1 {
			t.Errorf("an EventStream span ended %d times", s.ends)
		}
		ended++
		tp.mu.Unlock()
	}
	// 60 calls + 20 retries + n holders
	if want := calls + calls/3 + n; len(spans) != want {
		t.Errorf("%d EventStream spans, want %d", len(spans), want)
	}
	t.Logf("%d spans, failures recorded %d", len(spans), len(mp.named("streamstatus.stream.failures")))
	if got, want := len(mp.named("streamstatus.stream.failures")), calls/3+calls/3; got != want {
		t.Errorf("%d failures recorded, want %d", got, want)
	}
}

// panickingClient is an aws.HTTPClient whose requests for the model
// "panic" panic (a buggy custom transport).
type panickingClient struct{ next aws.HTTPClient }

func (c panickingClient) Do(req *http.Request) (*http.Response, error) {
	if strings.Contains(req.URL.Path, "/model/panic/") {
		panic("custom transport bug")
	}
	return c.next.Do(req)
}

// Review 21b, defect 2, through the real SDK: GOMAXPROCS calls whose HTTP
// client panicked, each recovered by the caller (as net/http's server
// recovers a handler's), leave the client's installation counted busy for
// good: a later call, the only one in flight, takes the busy path, and with
// it defect 1 (here it returns only when its second chunk arrives, 1.5 s
// after the first). Correct: the waiting count is decremented on every way
// out of the deserialize step, and a lone call is never busy.
func TestReview21b_RecoveredPanicsMakeTheClientBusyForGood(t *testing.T) {
	srv := newServer(t)
	srv.SetScript(func(call fake.Call) fake.Response {
		return fake.Response{Steps: []fake.Step{fake.Chunk([]byte("first")), fake.Pause(later), fake.Chunk([]byte("second"))}}
	})
	cfg := testConfig(srv, 1)
	cfg.HTTPClient = panickingClient{next: awshttp.NewBuildableClient()}
	yield := yieldAfterDeserializer{d: 20 * time.Millisecond}
	c := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(), bedrockruntime.WithAPIOptions(func(s *smithymiddleware.Stack) error {
		return s.Deserialize.Insert(yield, "OperationEventStreamDeserializer", smithymiddleware.Before)
	}))
	for i := 0; i < runtime.GOMAXPROCS(0); i++ {
		func() {
			defer func() { _ = recover() }()
			_, _ = c.InvokeModelWithResponseStream(context.Background(), &bedrockruntime.InvokeModelWithResponseStreamInput{
				ModelId: aws.String("panic"), Body: []byte(`{}`), ContentType: aws.String("application/json")})
		}()
	}
	start := time.Now()
	out, err := c.InvokeModelWithResponseStream(context.Background(), &bedrockruntime.InvokeModelWithResponseStreamInput{
		ModelId: aws.String("anthropic.claude-test"), Body: []byte(`{}`), ContentType: aws.String("application/json")})
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	collect(out.GetStream(), renderChunk)
	if elapsed > time.Second {
		t.Fatalf("the only call in flight returned after %v (at its second chunk): %d recovered panics left the client counted busy for good",
			elapsed.Round(time.Millisecond), runtime.GOMAXPROCS(0))
	}
}

// Defect 1 on SageMaker Runtime (sagemakerruntime v1.50.4, config-wide):
// InvokeEndpointWithResponseStream, whose PayloadPart events are all
// content, returns only at the second part when the installation is busy.
func TestReview21b_BusySageMakerCallReturnsOnlyAtTheSecondPart(t *testing.T) {
	for _, busy := range []bool{false, true} {
		t.Run(fmt.Sprintf("busy=%v", busy), func(t *testing.T) {
			srv := newServer(t)
			srv.SetScript(func(call fake.Call) fake.Response {
				if strings.Contains(call.Path, "/endpoints/hold/") {
					return fake.Response{Steps: []fake.Step{fake.PayloadPart([]byte("held"))}}
				}
				return fake.Response{Steps: []fake.Step{fake.PayloadPart([]byte("first")), fake.Pause(later), fake.PayloadPart([]byte("second"))}}
			})
			cfg := configWideFor(srv, configWide)
			hc := &holdingClient{next: awshttp.NewBuildableClient(), release: make(chan struct{})}
			cfg.HTTPClient = hc
			yield := yieldAfterDeserializer{d: 20 * time.Millisecond}
			c := sagemakerruntime.NewFromConfig(cfg, sagemakerruntime.WithAPIOptions(func(s *smithymiddleware.Stack) error {
				return s.Deserialize.Insert(yield, "OperationEventStreamDeserializer", smithymiddleware.Before)
			}))
			call := func(endpoint string) (*sagemakerruntime.InvokeEndpointWithResponseStreamOutput, error) {
				return c.InvokeEndpointWithResponseStream(context.Background(), &sagemakerruntime.InvokeEndpointWithResponseStreamInput{
					EndpointName: aws.String(endpoint), Body: []byte(`{"inputs":"hi"}`), ContentType: aws.String("application/json")})
			}
			holdCtx, release := context.WithCancel(context.Background())
			waitHolders := func() {}
			defer func() { waitHolders() }()
			defer release()
			if busy {
				waitHolders = hc.holdBusy(func() {
					_, _ = c.InvokeEndpointWithResponseStream(holdCtx, &sagemakerruntime.InvokeEndpointWithResponseStreamInput{
						EndpointName: aws.String("hold"), Body: []byte(`{"inputs":"hi"}`), ContentType: aws.String("application/json")})
				})
			}
			start := time.Now()
			out, err := call("my-endpoint")
			elapsed := time.Since(start)
			release()
			close(hc.release)
			if err != nil {
				t.Fatal(err)
			}
			res := collect(out.GetStream(), renderPayloadPart)
			if res.streamErr != nil || len(res.events) != 2 {
				t.Fatalf("events %q err %v", res.events, res.streamErr)
			}
			if elapsed > time.Second {
				t.Fatalf("InvokeEndpointWithResponseStream returned after %v, only at the second part (1.5 s after the first); want about 20 ms, as when not busy",
					elapsed.Round(time.Millisecond))
			}
		})
	}
}

// Defect 1 on ConverseStream with WithNonContentEvents() (every event is
// content, so the read-ahead ends at messageStart): Bedrock sends
// messageStart at once and the first text delta after the model's time to
// first token (1.5 s here). On a busy installation, when the SDK's reader got
// to the body first, the call returns only with the first delta (1.5 s)
// instead of at messageStart (about 20 ms), as it does when not busy.
func TestReview21b_BusyConverseAllContentReturnsOnlyAtTheFirstDelta(t *testing.T) {
	for _, busy := range []bool{false, true} {
		t.Run(fmt.Sprintf("busy=%v", busy), func(t *testing.T) {
			srv := newServer(t)
			srv.SetScript(func(call fake.Call) fake.Response {
				if call.ModelID == "hold" {
					return fake.Response{Steps: fake.ConverseText("held")}
				}
				return fake.Response{Steps: []fake.Step{fake.MessageStart(), fake.Pause(later), fake.TextDelta("a"),
					fake.ContentBlockStop(), fake.MessageStop("end_turn")}}
			})
			cfg := testConfig(srv, 1)
			hc := &holdingClient{next: awshttp.NewBuildableClient(), release: make(chan struct{})}
			cfg.HTTPClient = hc
			yield := yieldAfterDeserializer{d: 20 * time.Millisecond}
			c := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithNonContentEvents()),
				bedrockruntime.WithAPIOptions(func(s *smithymiddleware.Stack) error {
					return s.Deserialize.Insert(yield, "OperationEventStreamDeserializer", smithymiddleware.Before)
				}))
			waitHolders := func() {}
			defer func() { waitHolders() }()
			if busy {
				waitHolders = hc.holdBusy(func() {
					out, err := c.ConverseStream(context.Background(), converseInput("hold"))
					if err == nil {
						collect(out.GetStream(), renderConverse)
					}
				})
			}
			start := time.Now()
			out, err := c.ConverseStream(context.Background(), converseInput("anthropic.claude-test"))
			elapsed := time.Since(start)
			close(hc.release)
			if err != nil {
				t.Fatal(err)
			}
			res := collect(out.GetStream(), renderConverse)
			if res.streamErr != nil || !equalStrings(res.events, []string{"start", "delta:a", "blockstop", "stop"}) {
				t.Fatalf("events %q err %v", res.events, res.streamErr)
			}
			if elapsed > time.Second {
				t.Fatalf("ConverseStream returned after %v, only with the first text delta (1.5 s after messageStart); "+
					"want about 20 ms (messageStart is content under WithNonContentEvents()), as when not busy", elapsed.Round(time.Millisecond))
			}
		})
	}
}

func converseInput(model string) *bedrockruntime.ConverseStreamInput {
	return &bedrockruntime.ConverseStreamInput{
		ModelId: aws.String(model),
		Messages: []types.Message{{Role: types.ConversationRoleUser,
			Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: "hello"}}}},
	}
}

// Defect 1, the hang: with the stall timeouts off (the default), a stream
// that sends its first chunk and then stalls (fake.Hang) hangs the call
// itself on a busy installation when the SDK's reader got to the body
// first: InvokeModelWithResponseStream does not return until the call's
// context ends (5 s here; with context.Background(), never), so the
// consumer, which would take the first chunk and apply its own watchdog or
// Close the stream, never gets the output. Not busy, the call returns at
// once with the first chunk.
func TestReview21b_BusyCallHangsOnAStreamThatStallsAfterItsFirstChunk(t *testing.T) {
	for _, busy := range []bool{false, true} {
		t.Run(fmt.Sprintf("busy=%v", busy), func(t *testing.T) {
			srv := newServer(t)
			srv.SetScript(func(call fake.Call) fake.Response {
				if call.ModelID == "hold" {
					return fake.Response{Steps: []fake.Step{fake.Chunk([]byte("held"))}}
				}
				return fake.Response{Steps: []fake.Step{fake.Chunk([]byte("first")), fake.Hang()}}
			})
			cfg := testConfig(srv, 1)
			hc := &holdingClient{next: awshttp.NewBuildableClient(), release: make(chan struct{})}
			cfg.HTTPClient = hc
			yield := yieldAfterDeserializer{d: 20 * time.Millisecond}
			c := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(), bedrockruntime.WithAPIOptions(func(s *smithymiddleware.Stack) error {
				return s.Deserialize.Insert(yield, "OperationEventStreamDeserializer", smithymiddleware.Before)
			}))
			waitHolders := func() {}
			defer func() { waitHolders() }()
			if busy {
				waitHolders = hc.holdBusy(func() {
					out, err := c.InvokeModelWithResponseStream(context.Background(), &bedrockruntime.InvokeModelWithResponseStreamInput{
						ModelId: aws.String("hold"), Body: []byte(`{}`), ContentType: aws.String("application/json")})
					if err == nil {
						collect(out.GetStream(), renderChunk)
					}
				})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			out, err := c.InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{
				ModelId: aws.String("anthropic.claude-test"), Body: []byte(`{}`), ContentType: aws.String("application/json")})
			elapsed := time.Since(start)
			close(hc.release)
			if err == nil {
				stream := out.GetStream()
				select {
				case ev := <-stream.Events(): // the consumer takes the first chunk, then gives up on the stream
					if got := renderChunk(ev); got != "chunk:first" {
						t.Errorf("first event %q", got)
					}
				case <-time.After(10 * time.Second):
					t.Error("no first event")
				}
				_ = stream.Close()
			}
			if elapsed > time.Second {
				t.Fatalf("InvokeModelWithResponseStream returned after %v (err %v): it hung until its context ended, on a stream "+
					"whose first chunk had arrived; want it to return at once with that chunk, as when not busy", elapsed.Round(time.Millisecond), err)
			}
		})
	}
}

// Busy path with the stall timeouts: a first attempt whose first chunk
// never comes within WithFirstEventTimeout is cut and retried while the
// caller runs the read-ahead; a stream that stalls after content ends with
// the typed stall error (WithIdleTimeout). (Passes: kept as evidence.)
func TestReview21bBusyStallTimeouts(t *testing.T) {
	srv := newServer(t)
	var mu sync.Mutex
	n := 0
	srv.SetScript(func(call fake.Call) fake.Response {
		if call.ModelID == "hold" {
			return fake.Response{Steps: []fake.Step{fake.Chunk([]byte("held"))}}
		}
		mu.Lock()
		n++
		k := n
		mu.Unlock()
		switch k {
		case 1:
			return fake.Response{Steps: []fake.Step{fake.Hang()}}
		case 2:
			return fake.Response{Steps: []fake.Step{fake.Chunk([]byte("a")), fake.Chunk([]byte("b"))}}
		}
		return fake.Response{Steps: []fake.Step{fake.Chunk([]byte("a")), fake.Chunk([]byte("b")), fake.Hang()}}
	})
	cfg := testConfig(srv, 3)
	hc := &holdingClient{next: awshttp.NewBuildableClient(), release: make(chan struct{})}
	cfg.HTTPClient = hc
	c := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithFirstEventTimeout(300*time.Millisecond), middleware.WithIdleTimeout(300*time.Millisecond)))
	holdCtx, release := context.WithCancel(context.Background())
	waitHolders := hc.holdBusy(func() {
		_, _ = c.InvokeModelWithResponseStream(holdCtx, &bedrockruntime.InvokeModelWithResponseStreamInput{
			ModelId: aws.String("hold"), Body: []byte(`{}`), ContentType: aws.String("application/json")})
	})
	defer func() { release(); waitHolders() }()
	run := func() result {
		out, err := c.InvokeModelWithResponseStream(context.Background(), &bedrockruntime.InvokeModelWithResponseStreamInput{
			ModelId: aws.String("m"), Body: []byte(`{}`), ContentType: aws.String("application/json")})
		if err != nil {
			return result{callErr: err}
		}
		return collect(out.GetStream(), renderChunk)
	}
	if res := run(); res.callErr != nil || res.streamErr != nil || !equalStrings(res.events, []string{"chunk:a", "chunk:b"}) || srv.CallCount() != 2 {
		t.Errorf("first-event stall: %+v, %d requests; want a, b after one retry", res, srv.CallCount())
	}
	res := run()
	if res.callErr != nil || !equalStrings(res.events, []string{"chunk:a", "chunk:b"}) || !as[*smithyext.StatusError](res.streamErr) {
		t.Errorf("idle stall after content: %+v; want a, b, then the typed stall error", res)
	}
}
