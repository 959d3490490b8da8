package main

import (
	"bytes"
	"context"
	"encoding/json"
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
}

// The client settings of both sides.
const (
	// maxAttempts is the SDK retryer's attempt limit on both sides.
	maxAttempts = 3
	// retryBackoff is the fixed delay between attempts. The SDK's own
	// backoff (up to 20 s, 1 s base for throttles) would make the demo
	// crawl; real clients keep it.
	retryBackoff = 5 * time.Millisecond
	// callTimeout bounds one call, all attempts and the stream included.
	callTimeout = 30 * time.Second
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

// outcome is what one call produced.
type outcome struct {
	events     []string      // as label renders them, in arrival order
	err        error         // from the call or from stream.Err()
	firstEvent time.Duration // from the call's start to its first event; 0 if none
	// envelope is the error type of an Anthropic error envelope that was
	// delivered as an ordinary chunk, or "".
	envelope string
}

// sideRun is one side's run.
type sideRun struct {
	name        string
	plugin      bool
	outcomes    []outcome  // outcomes[n-1] is call n's
	attempts    [][]string // attempts[n-1]: the fault of each attempt of call n
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
	awsCfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDSTREAMCHECK", "streamcheck-not-a-secret", ""),
		BaseEndpoint: aws.String(ep.URL()),
		HTTPClient:   &http.Client{Transport: tr},
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxAttempts
				o.RateLimiter = ratelimit.None
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return retryBackoff, nil })
			})
		},
	}
	s := &sideRun{name: bareSide, plugin: plugin, outcomes: make([]outcome, cfg.calls)}
	if plugin {
		s.name = pluginSide
		middleware.AppendMiddlewares(&awsCfg.APIOptions)
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
			client := bedrockruntime.NewFromConfig(awsCfg, s.recorded.clientOption())
			for n := range jobs {
				o := doCall(ctx, client, n, opOf(n))
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
	for n := 1; n <= cfg.calls; n++ {
		s.attempts[n-1] = ep.Attempts(n)
	}
	return s, ctx.Err()
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
func doCall(ctx context.Context, client *bedrockruntime.Client, n int, op string) outcome {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	start := time.Now()
	var o outcome
	record := func(label string) {
		if len(o.events) == 0 {
			o.firstEvent = time.Since(start)
		}
		o.events = append(o.events, label)
	}
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
