// Command streamcheck shows what streamstatus does, with no AWS account: it
// starts the fake Bedrock Runtime endpoint in-process, injects a realistic
// mix of in-stream faults, runs the same batch of ConverseStream and
// InvokeModelWithResponseStream calls through the bare SDK and through the
// plugin, and prints the two sides next to each other.
//
//	go run ./integration/cmd/streamcheck
//	go run ./integration/cmd/streamcheck -calls 500 -seed 7
//
// It exits 0 when the plugin side kept its promises: every fault that came
// before content was recovered transparently, no event was delivered twice,
// and every failure after content carried a mapped HTTP status.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/middleware"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type config struct {
	calls       int
	concurrency int
	seed        int64
	events      int
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("streamcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	fs.IntVar(&cfg.calls, "calls", 200, "calls per side (half ConverseStream, half InvokeModelWithResponseStream)")
	fs.IntVar(&cfg.concurrency, "concurrency", 8, "calls in flight at once")
	fs.Int64Var(&cfg.seed, "seed", 1, "seed of the fault mix (same seed, same faults)")
	fs.IntVar(&cfg.events, "events", 20, "content events per healthy stream")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.calls < 1 || cfg.concurrency < 1 || cfg.events < 1 {
		fmt.Fprintln(stderr, "streamcheck: -calls, -concurrency and -events must be at least 1")
		return 2
	}

	plan := makePlan(cfg)
	var sides []*tally
	for _, side := range []string{"bare SDK", "streamstatus"} {
		t, err := runSide(side, cfg, plan, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "streamcheck: %v\n", err)
			return 1
		}
		sides = append(sides, t)
	}
	printTable(stdout, cfg, sides)
	if problems := sides[1].violations(plan); len(problems) > 0 {
		fmt.Fprintln(stdout, "\nplugin side FAILED its invariants:")
		for _, p := range problems {
			fmt.Fprintln(stdout, "  -", p)
		}
		return 1
	}
	fmt.Fprintln(stdout, "\nplugin side met its invariants: faults before content recovered, no event duplicated, every failure typed.")
	return 0
}

// fault is what the endpoint does on the first attempt of one call; later
// attempts of the same call are healthy (the faults are transient).
type fault int

const (
	healthy fault = iota
	firstFrameThrottle
	afterStartThrottle // ConverseStream: messageStart, then a throttle
	firstFrameModelStreamError
	firstFrameInternal
	midStreamUnavailable
	midStreamModelTimeout
	numFaults
)

var faultNames = [...]string{"healthy", "first-frame throttle", "throttle after messageStart",
	"first-frame modelStreamError", "first-frame internal error", "mid-stream 503", "mid-stream model timeout"}

func (f fault) beforeContent() bool { return f >= firstFrameThrottle && f <= firstFrameInternal }

type call struct {
	id       int
	converse bool
	fault    fault
}

func makePlan(cfg config) []call {
	rng := rand.New(rand.NewSource(cfg.seed))
	plan := make([]call, cfg.calls)
	for i := range plan {
		f := healthy
		if rng.Intn(100) < 60 {
			f = fault(1 + rng.Intn(int(numFaults)-1))
		}
		c := call{id: i, converse: i%2 == 0, fault: f}
		if f == afterStartThrottle && !c.converse {
			c.fault = firstFrameThrottle
		}
		plan[i] = c
	}
	return plan
}

// script answers each request from the plan: it reads the call id from the
// request body and injects the call's fault on its first attempt only.
func script(cfg config, plan []call) func(fake.Call) fake.Response {
	var mu sync.Mutex
	attempts := map[int]int{}
	return func(c fake.Call) fake.Response {
		id := callID(c.Body)
		if id < 0 || id >= len(plan) {
			return fake.Response{Status: 400, ErrorType: "ValidationException", ErrorMessage: "streamcheck: no call id in request"}
		}
		mu.Lock()
		attempts[id]++
		first := attempts[id] == 1
		mu.Unlock()
		p := plan[id]
		f := p.fault
		if !first {
			f = healthy
		}
		content := func(n int) []fake.Step {
			var steps []fake.Step
			for i := 0; i < n; i++ {
				text := fmt.Sprintf("c%d-e%d ", id, i)
				if p.converse {
					steps = append(steps, fake.TextDelta(text))
				} else {
					steps = append(steps, fake.Chunk([]byte(text)))
				}
			}
			return steps
		}
		var s []fake.Step
		if p.converse {
			s = append(s, fake.MessageStart())
		}
		switch f {
		case healthy:
			s = append(s, content(cfg.events)...)
			if p.converse {
				s = append(s, fake.ContentBlockStop(), fake.MessageStop("end_turn"), fake.Metadata(3, cfg.events))
			}
		case firstFrameThrottle, afterStartThrottle:
			if !p.converse || f == firstFrameThrottle {
				s = nil
			}
			s = append(s, fake.Exception("throttlingException", "Too many requests, please wait before trying again."))
		case firstFrameModelStreamError:
			s = []fake.Step{fake.ExceptionPayload("modelStreamErrorException",
				[]byte(`{"message":"The model stream failed","originalStatusCode":503,"originalMessage":"upstream unavailable"}`))}
		case firstFrameInternal:
			s = []fake.Step{fake.Exception("internalServerException", "Internal server error")}
		case midStreamUnavailable:
			s = append(s, content(cfg.events/2)...)
			s = append(s, fake.Exception("serviceUnavailableException", "Service unavailable"))
		case midStreamModelTimeout:
			s = append(s, content(cfg.events/2)...)
			s = append(s, fake.Exception("modelTimeoutException", "Model timed out"))
		}
		return fake.Response{Steps: s}
	}
}

// callID finds "call-N" in a request body.
func callID(body []byte) int {
	i := strings.Index(string(body), "call-")
	if i < 0 {
		return -1
	}
	var id int
	if _, err := fmt.Sscanf(string(body[i:]), "call-%d", &id); err != nil {
		return -1
	}
	return id
}

type outcome struct {
	events    []string
	err       error
	firstWait time.Duration
}

// tally is one side's figures.
type tally struct {
	side        string
	calls       int
	completed   int
	failed      map[string]int // by "status code"
	serverCalls int
	retries     int // server calls beyond one per call
	events      int
	duplicated  int
	firstEvent  []time.Duration
	outcomes    []outcome
	elapsed     time.Duration
}

func runSide(side string, cfg config, plan []call, stderr io.Writer) (*tally, error) {
	srv, err := fake.NewServer()
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	srv.SetScript(script(cfg, plan))

	awsCfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDSTREAMCHECK", "streamcheck-secret", ""),
		BaseEndpoint: aws.String(srv.URL),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 3
				o.RateLimiter = ratelimit.None
				// A short, fixed backoff keeps the demo quick; real clients keep the SDK's.
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 5 * time.Millisecond, nil })
			})
		},
	}
	if side != "bare SDK" {
		middleware.AppendMiddlewares(&awsCfg.APIOptions)
	}
	client := bedrockruntime.NewFromConfig(awsCfg)

	t := &tally{side: side, calls: len(plan), failed: map[string]int{}, outcomes: make([]outcome, len(plan))}
	start := time.Now()
	work := make(chan call)
	var wg sync.WaitGroup
	var done int
	var mu sync.Mutex
	for w := 0; w < cfg.concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				o := doCall(client, c)
				mu.Lock()
				t.outcomes[c.id] = o
				done++
				if done%50 == 0 || done == len(plan) {
					fmt.Fprintf(stderr, "\r%-13s %d/%d calls", side, done, len(plan))
				}
				mu.Unlock()
			}
		}()
	}
	for _, c := range plan {
		work <- c
	}
	close(work)
	wg.Wait()
	fmt.Fprintln(stderr)
	t.elapsed = time.Since(start)
	t.serverCalls = srv.CallCount()
	t.retries = t.serverCalls - len(plan)
	for _, o := range t.outcomes {
		seen := map[string]bool{}
		for _, e := range o.events {
			if seen[e] {
				t.duplicated++
			}
			seen[e] = true
		}
		t.events += len(o.events)
		if o.firstWait > 0 {
			t.firstEvent = append(t.firstEvent, o.firstWait)
		}
		if o.err == nil {
			t.completed++
			continue
		}
		r := classify.Classify(o.err)
		key := fmt.Sprintf("%d %s", r.Status, r.Code)
		if r.Status == 0 {
			key = "no status " + r.Code
		}
		t.failed[key]++
	}
	return t, nil
}

func doCall(client *bedrockruntime.Client, c call) outcome {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prompt := fmt.Sprintf("call-%d", c.id)
	start := time.Now()
	var o outcome
	record := func(e string) {
		if o.firstWait == 0 {
			o.firstWait = time.Since(start)
		}
		o.events = append(o.events, e)
	}
	if c.converse {
		out, err := client.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{
			ModelId: aws.String("anthropic.claude-3-haiku-20240307-v1:0"),
			Messages: []types.Message{{Role: types.ConversationRoleUser,
				Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: prompt}}}},
		})
		if err != nil {
			o.err = err
			return o
		}
		stream := out.GetStream()
		defer stream.Close()
		for ev := range stream.Events() {
			if d, ok := ev.(*types.ConverseStreamOutputMemberContentBlockDelta); ok {
				if t, ok := d.Value.Delta.(*types.ContentBlockDeltaMemberText); ok {
					record(t.Value)
				}
			}
		}
		o.err = stream.Err()
		return o
	}
	body, _ := json.Marshal(map[string]string{"prompt": prompt})
	out, err := client.InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{
		ModelId: aws.String("anthropic.claude-3-haiku-20240307-v1:0"), Body: body, ContentType: aws.String("application/json"),
	})
	if err != nil {
		o.err = err
		return o
	}
	stream := out.GetStream()
	defer stream.Close()
	for ev := range stream.Events() {
		if ch, ok := ev.(*types.ResponseStreamMemberChunk); ok {
			record(string(ch.Value.Bytes))
		}
	}
	o.err = stream.Err()
	return o
}

// violations lists broken plugin promises.
func (t *tally) violations(plan []call) []string {
	var out []string
	if t.duplicated > 0 {
		out = append(out, fmt.Sprintf("%d events delivered twice", t.duplicated))
	}
	for i, c := range plan {
		o := t.outcomes[i]
		switch {
		case (c.fault == healthy || c.fault.beforeContent()) && o.err != nil:
			out = append(out, fmt.Sprintf("call %d (%s) failed: %v", i, faultNames[c.fault], o.err))
		case !c.fault.beforeContent() && c.fault != healthy:
			if r := classify.Classify(o.err); o.err == nil || r.Status == 0 || r.Status == 200 {
				out = append(out, fmt.Sprintf("call %d (%s): error %v has no mapped status", i, faultNames[c.fault], o.err))
			}
		}
	}
	return out
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*p)]
}

func printTable(w io.Writer, cfg config, sides []*tally) {
	fmt.Fprintf(w, "\nstreamcheck: %d calls per side (seed %d), fault mix on first attempts:\n", cfg.calls, cfg.seed)
	counts := map[fault]int{}
	plan := makePlan(cfg)
	for _, c := range plan {
		counts[c.fault]++
	}
	for f := fault(0); f < numFaults; f++ {
		fmt.Fprintf(w, "  %-30s %d\n", faultNames[f], counts[f])
	}
	fmt.Fprintln(w)
	row := func(name string, f func(t *tally) string) {
		fmt.Fprintf(w, "%-44s %14s %14s\n", name, f(sides[0]), f(sides[1]))
	}
	row("", func(t *tally) string { return t.side })
	row("calls", func(t *tally) string { return fmt.Sprint(t.calls) })
	row("completed", func(t *tally) string { return fmt.Sprint(t.completed) })
	keys := map[string]bool{}
	for _, t := range sides {
		for k := range t.failed {
			keys[k] = true
		}
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		row("failed: "+k, func(t *tally) string { return fmt.Sprint(t.failed[k]) })
	}
	row("transparent retries", func(t *tally) string { return fmt.Sprint(t.retries) })
	row("server calls", func(t *tally) string { return fmt.Sprint(t.serverCalls) })
	row("events delivered", func(t *tally) string { return fmt.Sprint(t.events) })
	row("events duplicated", func(t *tally) string { return fmt.Sprint(t.duplicated) })
	row("time to first event p50", func(t *tally) string { return percentile(t.firstEvent, 0.5).Round(10 * time.Microsecond).String() })
	row("time to first event p99", func(t *tally) string { return percentile(t.firstEvent, 0.99).Round(10 * time.Microsecond).String() })
	row("wall time", func(t *tally) string { return t.elapsed.Round(time.Millisecond).String() })
}
