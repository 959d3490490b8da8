package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	smithymiddleware "github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/streamstatus/streamstatus/middleware"
)

// This file runs the side-by-side check: the same calls, with the same
// faults, through the bare SDK and through the plugin.

// checkConfig is what the flags of the check say.
type checkConfig struct {
	calls       int
	concurrency int
	events      int
	seed        int64
	spec        *faultSpec
	json        bool
	progress    bool

	// firstEventTimeout and idleTimeout are the streamstatus side's
	// middleware.WithFirstEventTimeout and WithIdleTimeout; 0 leaves them
	// off. The bare SDK has none: it waits out every pause.
	firstEventTimeout time.Duration
	idleTimeout       time.Duration

	// pluginOpts and pluginAPIOptions are added to the streamstatus side's
	// clients after the plugin (see pluginClientOptions). The command sets
	// neither; tests inject broken libraries through them to show the
	// check fails.
	pluginOpts       []middleware.Option
	pluginAPIOptions []func(*smithymiddleware.Stack) error
}

// The client settings of both sides.
const (
	// maxAttempts is the SDK retryer's attempt limit on both sides.
	maxAttempts = 3
	// retryBackoff is the fixed delay between attempts. The SDK's own
	// backoff (up to 20 s, 1 s base for throttles) would make the demo
	// crawl; real clients keep it.
	retryBackoff = 5 * time.Millisecond
	// callTimeoutBase, callTimeoutPerEvent: see callTimeout.
	callTimeoutBase     = 30 * time.Second
	callTimeoutPerEvent = 50 * time.Microsecond
	// checkModel is the model id the check's calls name.
	checkModel = "anthropic.claude-3-haiku-20240307-v1:0"
)

// Side names, as the table heads them.
const (
	bareSide   = "bare SDK"
	pluginSide = "streamstatus"
)

// opOf is the operation of call n: odd calls ConverseStream, even calls
// InvokeModelWithResponseStream.
func opOf(n int) string {
	if n%2 == 1 {
		return opConverseStream
	}
	return opInvokeStream
}

// callTimeout is streamcheck's own bound on call n, all attempts and the
// stream included, sized from the plan: a fixed allowance, the pauses the
// call's attempts are planned to get, the retryer's backoff, and a share of
// CPU time per event for every call in flight. A call that hits it is the
// tool's timeout, reported apart from the library's violations.
func callTimeout(cfg checkConfig, n int) time.Duration {
	d := callTimeoutBase + maxAttempts*retryBackoff
	op := opOf(n)
	for _, r := range cfg.spec.choose(cfg.seed, n).slows {
		for a := 1; a <= maxAttempts; a++ {
			if r.appliesTo(op, a) {
				d += r.pause
			}
		}
	}
	return d + time.Duration(cfg.events*cfg.concurrency*maxAttempts)*callTimeoutPerEvent
}

// outcome is what one call produced. It holds counts, not events, so a
// run's memory grows with its calls, not with calls × events.
type outcome struct {
	tally
	err        error         // from the call or from stream.Err()
	firstEvent time.Duration // from the call's start to its first event; 0 if none
	// envelope is the error type of an Anthropic error envelope that was
	// delivered as an ordinary chunk, or "".
	envelope string
	// toolTimeout says the call hit streamcheck's own callTimeout.
	toolTimeout bool
}

// sideRun is one side's run.
type sideRun struct {
	name        string
	plugin      bool
	outcomes    []outcome  // outcomes[n-1] is call n's
	attempts    [][]string // attempts[n-1]: the fault of each attempt of call n
	requestIDs  []string   // requestIDs[n-1]: the x-amzn-RequestId of call n's last attempt
	bodies      *bodyTracker
	serverCalls int
	elapsed     time.Duration
	recorded    *failureCounter // the plugin side's clients' MeterProvider; nil on the bare side
}

// runSide runs every call of the check on one side, against its own
// endpoint, with one client per worker: the SDK's event-stream decoder is
// per client, so one client decoding two streams at once is a data race.
func runSide(ctx context.Context, cfg checkConfig, plugin bool, prog *progress) (*sideRun, error) {
	ep, err := startEndpoint(endpointConfig{spec: cfg.spec, seed: cfg.seed, events: cfg.events})
	if err != nil {
		return nil, fmt.Errorf("start the fake endpoint: %w", err)
	}
	defer ep.Close()

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = cfg.concurrency
	defer tr.CloseIdleConnections()
	bodies := newBodyTracker(tr, cfg.calls)
	awsCfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDSTREAMCHECK", "streamcheck-not-a-secret", ""),
		BaseEndpoint: aws.String(ep.URL()),
		HTTPClient:   &http.Client{Transport: bodies},
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxAttempts
				o.RateLimiter = ratelimit.None
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return retryBackoff, nil })
			})
		},
	}
	s := &sideRun{name: bareSide, plugin: plugin, outcomes: make([]outcome, cfg.calls), bodies: bodies}
	var clientOpts []func(*bedrockruntime.Options)
	if plugin {
		s.name = pluginSide
		clientOpts = pluginClientOptions(cfg)
		s.recorded = newFailureCounter()
	}

	prog.start(s.name, cfg.calls)
	start := time.Now()
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(cfg.concurrency, cfg.calls); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := bedrockruntime.NewFromConfig(awsCfg, append(clientOpts, s.recorded.clientOption())...)
			for n := range jobs {
				o := doCall(ctx, cfg, client, n)
				s.outcomes[n-1] = o
				prog.add(o.err != nil || o.envelope != "")
			}
		}()
	}
feed:
	for n := 1; n <= cfg.calls; n++ {
		select {
		case jobs <- n:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	s.elapsed = time.Since(start)
	prog.finish()
	s.serverCalls = ep.ServerCalls()
	s.attempts = make([][]string, cfg.calls)
	s.requestIDs = make([]string, cfg.calls)
	for n := 1; n <= cfg.calls; n++ {
		s.attempts[n-1] = ep.Attempts(n)
		s.requestIDs[n-1] = ep.RequestID(n)
	}
	bodies.settle(bodySettle)
	return s, ctx.Err()
}

// pluginClientOptions are the client options of the streamstatus side:
// the one place they are built (the plugin with the timeouts of the flags,
// then whatever the check adds for the run, which may override them).
func pluginClientOptions(cfg checkConfig) []func(*bedrockruntime.Options) {
	var mopts []middleware.Option
	if cfg.firstEventTimeout > 0 {
		mopts = append(mopts, middleware.WithFirstEventTimeout(cfg.firstEventTimeout))
	}
	if cfg.idleTimeout > 0 {
		mopts = append(mopts, middleware.WithIdleTimeout(cfg.idleTimeout))
	}
	opts := []func(*bedrockruntime.Options){middleware.WithBedrock(append(mopts, cfg.pluginOpts...)...)}
	if len(cfg.pluginAPIOptions) > 0 {
		opts = append(opts, func(o *bedrockruntime.Options) { o.APIOptions = append(o.APIOptions, cfg.pluginAPIOptions...) })
	}
	return opts
}

// numberCall sends the call number in the x-streamcheck-call header, so the
// endpoint gives call n the same faults on both sides, whatever order the
// calls arrive in.
func numberCall(n int) func(*bedrockruntime.Options) {
	mw := smithymiddleware.BuildMiddlewareFunc("streamcheck.CallNumber",
		func(ctx context.Context, in smithymiddleware.BuildInput, next smithymiddleware.BuildHandler) (smithymiddleware.BuildOutput, smithymiddleware.Metadata, error) {
			if req, ok := in.Request.(*smithyhttp.Request); ok {
				req.Header.Set(callHeader, strconv.Itoa(n))
			}
			return next.HandleBuild(ctx, in)
		})
	return func(o *bedrockruntime.Options) {
		o.APIOptions = append(o.APIOptions, func(s *smithymiddleware.Stack) error { return s.Build.Add(mw, smithymiddleware.After) })
	}
}

// doCall makes call n and reads its stream to the end.
func doCall(parent context.Context, cfg checkConfig, client *bedrockruntime.Client, n int) (o outcome) {
	op := opOf(n)
	ctx, cancel := context.WithTimeout(parent, callTimeout(cfg, n))
	defer cancel()
	defer func() {
		if o.err != nil && parent.Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			o.toolTimeout = true
		}
	}()
	start := time.Now()
	o.tally = newTally(streamLabels(op, n, cfg.events, checkModel))
	record := func(label string) {
		if o.delivered == 0 {
			o.firstEvent = time.Since(start)
		}
		o.add(label)
	}
	defer o.done()
	prompt := fmt.Sprintf("streamcheck call %d: say something.", n)

	if op == opConverseStream {
		out, err := client.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{
			ModelId: aws.String(checkModel),
			Messages: []types.Message{{Role: types.ConversationRoleUser,
				Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: prompt}}}},
		}, numberCall(n))
		if err != nil {
			o.err = err
			return o
		}
		st := out.GetStream()
		defer st.Close()
		for ev := range st.Events() {
			record(converseLabel(ev))
		}
		o.err = st.Err()
		return o
	}

	body, _ := json.Marshal(map[string]any{
		"anthropic_version": "bedrock-2023-05-31",
		"max_tokens":        256,
		"messages":          []map[string]string{{"role": "user", "content": prompt}},
	})
	out, err := client.InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{
		ModelId: aws.String(checkModel), Body: body, ContentType: aws.String("application/json"), Accept: aws.String("application/json"),
	}, numberCall(n))
	if err != nil {
		o.err = err
		return o
	}
	st := out.GetStream()
	defer st.Close()
	for ev := range st.Events() {
		c, ok := ev.(*types.ResponseStreamMemberChunk)
		if !ok {
			record(fmt.Sprintf("%T", ev))
			continue
		}
		if t := envelopeType(c.Value.Bytes); t != "" && o.envelope == "" {
			o.envelope = t
		}
		record(string(c.Value.Bytes))
	}
	o.err = st.Err()
	return o
}

// tally compares, event by event, what a consumer got with the healthy
// stream, and keeps only counts.
type tally struct {
	want []string       // the healthy stream's labels; dropped by done
	pos  map[string]int // label -> index in want; built at the first surprise
	seen []bool         // seen[i]: want[i] was delivered
	odd  map[string]bool

	delivered  int // events the consumer got
	prefix     int // how many of them, from the first, are the healthy stream's first events in order
	next       int // index in want after the furthest event delivered
	dup        int // events delivered twice
	skipped    int // events skipped between two delivered ones, or delivered out of order
	unexpected int // events not in the healthy stream
	total      int // events of the healthy stream (set by done)
}

func newTally(want []string) tally {
	return tally{want: want, seen: make([]bool, len(want))}
}

// add counts one delivered event.
func (t *tally) add(label string) {
	t.delivered++
	if t.prefix == t.delivered-1 && t.next == t.prefix && t.next < len(t.want) && t.want[t.next] == label {
		t.seen[t.next] = true
		t.prefix++
		t.next++
		return
	}
	if t.pos == nil {
		t.pos = make(map[string]int, len(t.want))
		for i, w := range t.want {
			t.pos[w] = i
		}
		t.odd = map[string]bool{}
	}
	i, ok := t.pos[label]
	switch {
	case !ok && t.odd[label]:
		t.dup++
	case !ok:
		t.unexpected++
		t.odd[label] = true
	case t.seen[i]:
		t.dup++
	case i >= t.next:
		t.skipped += i - t.next
		t.next = i + 1
	default: // an earlier event, out of order
		t.skipped++
	}
	if ok {
		t.seen[i] = true
	}
}

// done drops the per-event state, keeping the counts.
func (t *tally) done() {
	t.total = len(t.want)
	t.want, t.pos, t.seen, t.odd = nil, nil, nil, nil
}

// missed is the healthy events the consumer did not get: the ones skipped,
// and, for a call that ended without an error (so the consumer believes it
// has the whole answer), the ones after the last event delivered.
func (t *tally) missed(complete bool) int {
	if complete {
		return t.skipped + t.total - t.next
	}
	return t.skipped
}

// exactly reports whether the consumer got exactly the healthy stream's
// first n events, in order, and nothing else.
func (t *tally) exactly(n int) bool {
	return t.delivered == n && t.prefix == n
}

// compareEvents compares the events a consumer got with the healthy
// stream's (a tally of got against want).
func compareEvents(got, want []string, complete bool) (dup, missed, unexpected int) {
	t := newTally(want)
	for _, e := range got {
		t.add(e)
	}
	t.done()
	return t.dup, t.missed(complete), t.unexpected
}

// converseLabel renders a ConverseStream event the way healthyStream
// labels it.
func converseLabel(ev types.ConverseStreamOutput) string {
	switch v := ev.(type) {
	case *types.ConverseStreamOutputMemberMessageStart:
		return "messageStart"
	case *types.ConverseStreamOutputMemberContentBlockDelta:
		if d, ok := v.Value.Delta.(*types.ContentBlockDeltaMemberText); ok {
			return "delta:" + d.Value
		}
		return "delta:?"
	case *types.ConverseStreamOutputMemberContentBlockStop:
		return "contentBlockStop"
	case *types.ConverseStreamOutputMemberMessageStop:
		return "messageStop:" + string(v.Value.StopReason)
	case *types.ConverseStreamOutputMemberMetadata:
		return "metadata"
	}
	return fmt.Sprintf("%T", ev)
}

// envelopeType returns the error type of an Anthropic error envelope
// ({"type":"error","error":{"type":...}}), or "" for any other chunk.
func envelopeType(b []byte) string {
	if !bytes.HasPrefix(bytes.TrimSpace(b), []byte(`{"type":"error"`)) {
		return ""
	}
	var env struct {
		Error struct {
			Type string `json:"type"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &env) != nil || env.Error.Type == "" {
		return "error"
	}
	return env.Error.Type
}
