// Package workload is the many-goroutines-one-client workload of issue 12,
// shared by the tests in integration/ and by cmd/concurrency: every call's
// events are named after its own prompt, with an event type the SDK's
// model does not know in the middle of the stream, so a stream that
// receives another stream's bytes (or corrupted bytes) shows it.
package workload

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go/eventstream"

	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/middleware"
)

// Shape of every answer.
const (
	// Deltas is the number of content events per call.
	Deltas = 20
	// UnknownAt is the 1-based frame position of the unknown event in Run's
	// streams.
	UnknownAt = 6
	// UnknownType is an event type no SDK models (AWS adds event types
	// before SDKs catch up).
	UnknownType = "streamstatusFutureEvent"
)

// Install is how the plugin is put on the client.
type Install int

// The install paths; Bare is the SDK without the plugin.
const (
	Bare               Install = iota
	WithBedrock                // bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock())
	WithBedrockPerCall         // middleware.WithBedrock() as the last argument of each call
	APIOption                  // bedrockruntime.WithAPIOptions(middleware.APIOption())
	AppendMiddlewares          // middleware.AppendMiddlewares(&cfg.APIOptions)
)

// Installs lists every install path, Bare first.
var Installs = []Install{Bare, WithBedrock, WithBedrockPerCall, APIOption, AppendMiddlewares}

func (i Install) String() string {
	return [...]string{"bare", "WithBedrock", "WithBedrock-per-call", "APIOption", "AppendMiddlewares"}[i]
}

// Client is one SDK client installed one way, for many goroutines.
type Client struct {
	SDK *bedrockruntime.Client
	// PerCall are the options of every call (WithBedrockPerCall).
	PerCall []func(*bedrockruntime.Options)
}

// NewClient returns a client of the fake endpoint at url, installed how,
// with one attempt per call (a failure is a figure, not a retry).
func NewClient(url string, how Install) Client {
	cfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDWORKLOAD", "workload-secret", ""),
		BaseEndpoint: aws.String(url),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 1
				o.RateLimiter = ratelimit.None
			})
		},
	}
	var c Client
	switch how {
	case WithBedrock:
		c.SDK = bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock())
	case WithBedrockPerCall:
		c.SDK = bedrockruntime.NewFromConfig(cfg)
		c.PerCall = []func(*bedrockruntime.Options){middleware.WithBedrock()}
	case APIOption:
		c.SDK = bedrockruntime.NewFromConfig(cfg, bedrockruntime.WithAPIOptions(middleware.APIOption()))
	case AppendMiddlewares:
		middleware.AppendMiddlewares(&cfg.APIOptions)
		c.SDK = bedrockruntime.NewFromConfig(cfg)
	default:
		c.SDK = bedrockruntime.NewFromConfig(cfg)
	}
	return c
}

// Op is one Bedrock streaming operation.
type Op struct {
	Name string
	// Call makes one call with prompt and reads up to limit events (all
	// when limit is 0), rendered, then closes the stream.
	Call func(ctx context.Context, c Client, prompt string, limit int) ([]string, error)
	// Want is what a call with prompt must receive, in order, when the
	// unknown event is at frame unknownAt.
	Want func(prompt string, unknownAt int) []string
	// Steps is the fake endpoint's answer to a call with prompt.
	Steps func(prompt string, unknownAt int) []fake.Step
}

// Ops are the two Bedrock response-stream operations.
var Ops = []Op{ConverseStream, InvokeModelWithResponseStream}

// Script returns the fake endpoint's script (fake.Server.SetScript): every
// call is answered with the events of its own prompt, the unknown event at
// frame unknownAt.
func Script(unknownAt int) func(fake.Call) fake.Response {
	return func(call fake.Call) fake.Response {
		prompt, err := fake.Prompt(call)
		if err != nil {
			return fake.Response{Status: 400, ErrorType: "ValidationException", ErrorMessage: err.Error()}
		}
		for _, op := range Ops {
			if op.Name == call.Operation {
				return fake.Response{Steps: op.Steps(prompt, unknownAt)}
			}
		}
		return fake.Response{Status: 400, ErrorType: "ValidationException", ErrorMessage: "workload: no script for " + call.Operation}
	}
}

// unknownMessage is the unknown event of a call with prompt.
func unknownMessage(prompt string) eventstream.Message {
	var m eventstream.Message
	m.Headers.Set(eventstream.EventTypeHeader, eventstream.StringValue(UnknownType))
	m.Headers.Set(eventstream.ContentTypeHeader, eventstream.StringValue("application/json"))
	m.Headers.Set(eventstream.MessageTypeHeader, eventstream.StringValue(eventstream.EventMessageType))
	m.Payload, _ = json.Marshal(map[string]string{"prompt": prompt, "note": strings.Repeat(prompt, 4)})
	return m
}

// renderUnknown renders an unknown event: its tag, the payload it decodes
// to, and a checksum of its exact bytes (the SDK re-encodes the frame).
func renderUnknown(tag string, value []byte) string {
	m, err := eventstream.NewDecoder().Decode(bytes.NewReader(value), nil)
	if err != nil {
		return fmt.Sprintf("unknown:%s:undecodable(%v):%s", tag, err, hex.EncodeToString(value[:min(len(value), 16)]))
	}
	return fmt.Sprintf("unknown:%s:%s:%08x", tag, m.Payload, crc32.ChecksumIEEE(value))
}

// withUnknown inserts the unknown event at frame at.
func withUnknown(prompt string, at int, steps []fake.Step, want []string) ([]fake.Step, []string) {
	if steps != nil {
		steps = slices.Insert(steps, at-1, fake.Raw(fake.Frame(unknownMessage(prompt))))
	}
	if want != nil {
		want = slices.Insert(want, at-1, renderUnknown(UnknownType, fake.Frame(unknownMessage(prompt))))
	}
	return steps, want
}

func texts(prompt string) []string {
	t := make([]string, Deltas)
	for i := range t {
		t[i] = fmt.Sprintf("%s-%d", prompt, i)
	}
	return t
}

// ConverseStream: messageStart, Deltas text deltas, contentBlockStop,
// messageStop, metadata, and the unknown event.
var ConverseStream = Op{
	Name: "ConverseStream",
	Steps: func(prompt string, at int) []fake.Step {
		s, _ := withUnknown(prompt, at, fake.ConverseText(texts(prompt)...), nil)
		return s
	},
	Want: func(prompt string, at int) []string {
		want := []string{"start"}
		for _, t := range texts(prompt) {
			want = append(want, "delta:"+t)
		}
		_, want = withUnknown(prompt, at, nil, append(want, "blockstop", "stop:end_turn", fmt.Sprintf("metadata:%d", Deltas)))
		return want
	},
	Call: func(ctx context.Context, c Client, prompt string, limit int) ([]string, error) {
		out, err := c.SDK.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{
			ModelId: aws.String("anthropic.claude-test"),
			Messages: []types.Message{{
				Role:    types.ConversationRoleUser,
				Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: prompt}},
			}},
		}, c.PerCall...)
		if err != nil {
			return nil, err
		}
		return read(out.GetStream(), limit, renderConverse)
	},
}

// InvokeModelWithResponseStream: Deltas chunks, and the unknown event.
var InvokeModelWithResponseStream = Op{
	Name: "InvokeModelWithResponseStream",
	Steps: func(prompt string, at int) []fake.Step {
		var steps []fake.Step
		for _, t := range texts(prompt) {
			steps = append(steps, fake.Chunk([]byte(t)))
		}
		s, _ := withUnknown(prompt, at, steps, nil)
		return s
	},
	Want: func(prompt string, at int) []string {
		var want []string
		for _, t := range texts(prompt) {
			want = append(want, "chunk:"+t)
		}
		_, want = withUnknown(prompt, at, nil, want)
		return want
	},
	Call: func(ctx context.Context, c Client, prompt string, limit int) ([]string, error) {
		body, _ := json.Marshal(map[string]string{"prompt": prompt})
		out, err := c.SDK.InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{
			ModelId:     aws.String("anthropic.claude-test"),
			Body:        body,
			ContentType: aws.String("application/json"),
		}, c.PerCall...)
		if err != nil {
			return nil, err
		}
		return read(out.GetStream(), limit, renderChunk)
	},
}

func renderConverse(ev types.ConverseStreamOutput) string {
	switch v := ev.(type) {
	case *types.ConverseStreamOutputMemberMessageStart:
		return "start"
	case *types.ConverseStreamOutputMemberContentBlockDelta:
		if d, ok := v.Value.Delta.(*types.ContentBlockDeltaMemberText); ok {
			return "delta:" + d.Value
		}
		return fmt.Sprintf("delta:%T", v.Value.Delta)
	case *types.ConverseStreamOutputMemberContentBlockStop:
		return "blockstop"
	case *types.ConverseStreamOutputMemberMessageStop:
		return "stop:" + string(v.Value.StopReason)
	case *types.ConverseStreamOutputMemberMetadata:
		if v.Value.Usage == nil || v.Value.Usage.OutputTokens == nil {
			return "metadata:?"
		}
		return fmt.Sprintf("metadata:%d", *v.Value.Usage.OutputTokens)
	case *types.UnknownUnionMember:
		return renderUnknown(v.Tag, v.Value)
	}
	return fmt.Sprintf("%T", ev)
}

func renderChunk(ev types.ResponseStream) string {
	switch v := ev.(type) {
	case *types.ResponseStreamMemberChunk:
		return "chunk:" + string(v.Value.Bytes)
	case *types.UnknownUnionMember:
		return renderUnknown(v.Tag, v.Value)
	}
	return fmt.Sprintf("%T", ev)
}

type eventStream[E any] interface {
	Events() <-chan E
	Err() error
	Close() error
}

// read renders up to limit events of s (all when 0), then closes it.
func read[E any](s eventStream[E], limit int, render func(E) string) ([]string, error) {
	defer s.Close()
	var got []string
	for ev := range s.Events() {
		got = append(got, render(ev))
		if limit > 0 && len(got) == limit {
			return got, nil
		}
	}
	return got, s.Err()
}

// Tally counts what a run of streams received.
type Tally struct {
	Streams int // calls made
	Wrong   int // streams that did not receive exactly their own events in order, or failed
	Foreign int // streams that received content of another call
	Failed  int // calls or streams that ended with an error
	// Example describes the first wrong stream.
	Example string
}

func (t *Tally) add(u Tally) {
	t.Streams += u.Streams
	t.Wrong += u.Wrong
	t.Foreign += u.Foreign
	t.Failed += u.Failed
	if t.Example == "" {
		t.Example = u.Example
	}
}

// String is one line for a report.
func (t Tally) String() string {
	return fmt.Sprintf("%d streams: %d wrong, %d with another call's content, %d failed", t.Streams, t.Wrong, t.Foreign, t.Failed)
}

var promptPattern = regexp.MustCompile(`call-[0-9a-z]+-g[0-9]+-r[0-9]+`)

// Check compares one call's events (and error) with what it must receive
// with the unknown event at frame unknownAt; limit is the number of events
// the call read (0: all).
func Check(op Op, prompt string, unknownAt, limit int, got []string, err error) Tally {
	t := Tally{Streams: 1}
	want := op.Want(prompt, unknownAt)
	if limit > 0 && limit < len(want) {
		want = want[:limit]
	}
	if err != nil {
		t.Failed = 1
	}
	for _, ev := range got {
		for _, p := range promptPattern.FindAllString(ev, -1) {
			if p != prompt {
				t.Foreign = 1
			}
		}
	}
	if err != nil || !slices.Equal(got, want) {
		t.Wrong = 1
		t.Example = describe(op, prompt, got, want, err)
	}
	return t
}

func describe(op Op, prompt string, got, want []string, err error) string {
	for i := range max(len(got), len(want)) {
		if i >= len(got) || i >= len(want) || got[i] != want[i] {
			g, w := "(none)", "(none)"
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			return fmt.Sprintf("%s %q event %d: got %q, want %q (err: %v)", op.Name, prompt, i, g, w, err)
		}
	}
	return fmt.Sprintf("%s %q: err %v", op.Name, prompt, err)
}

// Run drives op from goroutines goroutines, rounds calls each, on one
// client of an endpoint scripted with Script(UnknownAt), and tallies what
// the streams received. run names the prompts, so separate runs on one
// endpoint do not collide.
func Run(ctx context.Context, c Client, op Op, goroutines, rounds int, run string) Tally {
	var (
		mu    sync.Mutex
		total Tally
		wg    sync.WaitGroup
	)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine Tally
			for r := range rounds {
				prompt := fmt.Sprintf("call-%s-g%02d-r%03d", run, g, r)
				callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
				got, err := op.Call(callCtx, c, prompt, 0)
				cancel()
				mine.add(Check(op, prompt, UnknownAt, 0, got, err))
			}
			mu.Lock()
			total.add(mine)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return total
}
