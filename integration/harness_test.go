package integration_test

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"go.uber.org/goleak"

	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/middleware"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Recognisable fake credentials: no test output may contain them.
const (
	testAccessKey = "AKIDSTREAMSTATUSTEST"
	testSecretKey = "streamstatus-test-secret-key"
)

// install is how the plugin is put on a client.
type install int

const (
	bare         install = iota // no plugin: the SDK as shipped
	clientOption                // bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock())
	apiOption                   // bedrockruntime.WithAPIOptions(middleware.APIOption())
	configWide                  // middleware.AppendMiddlewares(&cfg.APIOptions)
)

var installs = []install{clientOption, apiOption, configWide}

func (i install) String() string {
	return [...]string{"bare", "WithBedrock", "APIOption", "AppendMiddlewares"}[i]
}

// zeroBackoff makes retries immediate, so tests do not crawl.
var zeroBackoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })

func testRetryer(maxAttempts int, backoff retry.BackoffDelayer) func() aws.Retryer {
	return func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = maxAttempts
			o.Backoff = backoff
			o.RateLimiter = ratelimit.None
		})
	}
}

// bareSDKDelay is the response delay for tests that drive the bare SDK: it
// keeps the SDK's request-body race (DESIGN.md §3, issue 3) out of tests
// that are about something else. The plugin needs no delay.
const bareSDKDelay = 5 * time.Millisecond

// serverFor returns a server suited to a client installed the given way.
func serverFor(t testing.TB, how install) *fake.Server {
	if how == bare {
		return newServer(t, fake.WithResponseDelay(bareSDKDelay))
	}
	return newServer(t)
}

func newServer(t testing.TB, opts ...fake.Option) *fake.Server {
	t.Helper()
	srv, err := fake.NewServer(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func testConfig(srv *fake.Server, maxAttempts int) aws.Config {
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(testAccessKey, testSecretKey, ""),
		BaseEndpoint: aws.String(srv.URL),
		Retryer:      testRetryer(maxAttempts, zeroBackoff),
	}
}

func newClient(srv *fake.Server, how install, maxAttempts int, opts ...middleware.Option) *bedrockruntime.Client {
	cfg := testConfig(srv, maxAttempts)
	switch how {
	case clientOption:
		return bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(opts...))
	case apiOption:
		return bedrockruntime.NewFromConfig(cfg, bedrockruntime.WithAPIOptions(middleware.APIOption(opts...)))
	case configWide:
		middleware.AppendMiddlewares(&cfg.APIOptions, opts...)
		return bedrockruntime.NewFromConfig(cfg)
	}
	return bedrockruntime.NewFromConfig(cfg)
}

// result is what one streaming call produced, read to the end.
type result struct {
	events    []string // each event rendered as a short string
	callErr   error    // from the operation call
	streamErr error    // from stream.Err() after the events channel closed
}

// streamOp abstracts the two Bedrock streaming operations so every case runs
// on both.
type streamOp struct {
	name string
	// preamble is what the service sends before content (ConverseStream:
	// messageStart, which carries no content).
	preamble []fake.Step
	// content returns n content events and how the consumer renders them.
	content func(n int, tag string) ([]fake.Step, []string)
	// healthy returns a complete, clean stream with n content events.
	healthy func(n int, tag string) ([]fake.Step, []string)
	run     func(ctx context.Context, c *bedrockruntime.Client, optFns ...func(*bedrockruntime.Options)) result
}

var ops = []streamOp{converseStream, invokeStream}

var converseStream = streamOp{
	name:     "ConverseStream",
	preamble: []fake.Step{fake.MessageStart()},
	content:  textSteps("delta:", fake.TextDelta),
	healthy: func(n int, tag string) ([]fake.Step, []string) {
		var texts, want []string
		for i := 0; i < n; i++ {
			texts = append(texts, fmt.Sprintf("%s-%d", tag, i))
			want = append(want, "delta:"+texts[i])
		}
		want = append(append([]string{"start"}, want...), "blockstop", "stop", "metadata")
		return fake.ConverseText(texts...), want
	},
	run: func(ctx context.Context, c *bedrockruntime.Client, optFns ...func(*bedrockruntime.Options)) result {
		out, err := c.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{
			ModelId: aws.String("anthropic.claude-test"),
			Messages: []types.Message{{
				Role:    types.ConversationRoleUser,
				Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: "hello"}},
			}},
		}, optFns...)
		if err != nil {
			return result{callErr: err}
		}
		return collect(out.GetStream(), renderConverse)
	},
}

// textSteps returns a function that makes n content events, texts
// "<tag>-<i>", with step, and what the consumer renders for them (prefix +
// text, as the render functions in matrix_test.go do).
func textSteps(prefix string, step func(text string) fake.Step) func(n int, tag string) ([]fake.Step, []string) {
	return func(n int, tag string) ([]fake.Step, []string) {
		var steps []fake.Step
		var want []string
		for i := 0; i < n; i++ {
			text := fmt.Sprintf("%s-%d", tag, i)
			steps = append(steps, step(text))
			want = append(want, prefix+text)
		}
		return steps, want
	}
}

var chunks = textSteps("chunk:", func(text string) fake.Step { return fake.Chunk([]byte(text)) })

var invokeStream = streamOp{
	name:    "InvokeModelWithResponseStream",
	content: chunks,
	healthy: chunks,
	run: func(ctx context.Context, c *bedrockruntime.Client, optFns ...func(*bedrockruntime.Options)) result {
		out, err := c.InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{
			ModelId:     aws.String("anthropic.claude-test"),
			Body:        []byte(`{"prompt":"hello"}`),
			ContentType: aws.String("application/json"),
		}, optFns...)
		if err != nil {
			return result{callErr: err}
		}
		return collect(out.GetStream(), renderChunk)
	},
}

// eventStream is what the SDK's event streams have in common.
type eventStream[E any] interface {
	Events() <-chan E
	Err() error
	Close() error
}

// collect reads a stream to its end, rendering each event (the render
// functions are in matrix_test.go), then closes it.
func collect[E any](s eventStream[E], render func(E) string) result {
	defer s.Close()
	var r result
	for ev := range s.Events() {
		r.events = append(r.events, render(ev))
	}
	r.streamErr = s.Err()
	return r
}

func steps(parts ...[]fake.Step) []fake.Step {
	var all []fake.Step
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// as reports whether errors.As finds a T in err.
func as[T error](err error) bool {
	var t T
	return errors.As(err, &t)
}

// statusOf returns the first HTTPStatusCode in err's chain, as a user would.
func statusOf(err error) (int, bool) {
	var sc interface{ HTTPStatusCode() int }
	if !errors.As(err, &sc) {
		return 0, false
	}
	return sc.HTTPStatusCode(), true
}

// checkNoSecrets fails if an error message shows the test credentials.
func checkNoSecrets(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, secret := range []string{testAccessKey, testSecretKey, "AWS4-HMAC-SHA256"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error message leaks %q: %s", secret, msg)
		}
	}
}

var _ = os.Getenv

func newClientFromConfig(cfg aws.Config, optFns ...func(*bedrockruntime.Options)) *bedrockruntime.Client {
	return bedrockruntime.NewFromConfig(cfg, append([]func(*bedrockruntime.Options){middleware.WithBedrock()}, optFns...)...)
}

func middlewareAllContent() middleware.Option { return middleware.WithNonContentEvents() }

func typeName(v any) string { return fmt.Sprintf("%T", v) }

func crc32IEEE(b []byte) uint32 { return crc32.ChecksumIEEE(b) }
