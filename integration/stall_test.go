package integration_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"

	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/middleware"
	"github.com/streamstatus/streamstatus/smithyext"
)

// Issue 16: stalled streams. The server stalls far longer than any
// timeout here (serverStall); every test must end well before it.

const serverStall = 20 * time.Second

// stallInstall is one way to put the timeouts on a call.
type stallInstall struct {
	name string
	// client makes the client; perCall is passed to each operation call.
	client  func(cfg aws.Config, opts ...middleware.Option) *bedrockruntime.Client
	perCall func(opts ...middleware.Option) []func(*bedrockruntime.Options)
}

var stallInstalls = []stallInstall{
	{"WithBedrock", func(cfg aws.Config, opts ...middleware.Option) *bedrockruntime.Client {
		return bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(opts...))
	}, noPerCall},
	{"APIOption", func(cfg aws.Config, opts ...middleware.Option) *bedrockruntime.Client {
		return bedrockruntime.NewFromConfig(cfg, bedrockruntime.WithAPIOptions(middleware.APIOption(opts...)))
	}, noPerCall},
	{"AppendMiddlewares", func(cfg aws.Config, opts ...middleware.Option) *bedrockruntime.Client {
		middleware.AppendMiddlewares(&cfg.APIOptions, opts...)
		return bedrockruntime.NewFromConfig(cfg)
	}, noPerCall},
	{"per call", func(cfg aws.Config, _ ...middleware.Option) *bedrockruntime.Client {
		return bedrockruntime.NewFromConfig(cfg)
	}, func(opts ...middleware.Option) []func(*bedrockruntime.Options) {
		return []func(*bedrockruntime.Options){middleware.WithBedrock(opts...)}
	}},
	{"per call over the client's plugin", func(cfg aws.Config, _ ...middleware.Option) *bedrockruntime.Client {
		return bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock()) // no timeouts on the client
	}, func(opts ...middleware.Option) []func(*bedrockruntime.Options) {
		return []func(*bedrockruntime.Options){middleware.WithBedrock(opts...)}
	}},
}

func noPerCall(...middleware.Option) []func(*bedrockruntime.Options) { return nil }

// TestStallBeforeContentIsRetried: headers, then nothing (ConverseStream:
// messageStart, then nothing). The attempt fails as a stall, its
// connection is closed, and the SDK's retryer retries it: the consumer
// sees exactly the clean second answer, well before the server's stall
// would have ended.
func TestStallBeforeContentIsRetried(t *testing.T) {
	const timeout = 200 * time.Millisecond
	timeouts := []struct {
		name string
		opt  middleware.Option
	}{
		{"first-event timeout", middleware.WithFirstEventTimeout(timeout)},
		{"idle timeout", middleware.WithIdleTimeout(timeout)},
	}
	for _, to := range timeouts {
		for _, si := range stallInstalls {
			for _, op := range ops {
				t.Run(fmt.Sprintf("%s/%s/%s", to.name, si.name, op.name), func(t *testing.T) {
					t.Parallel()
					srv := newServer(t)
					cfg, bodies := countingConfig(srv, 3)
					attempts := &attemptErrors{}
					cfg.Retryer = attempts.wrap(cfg.Retryer)
					c := si.client(cfg, to.opt)
					clean, want := op.healthy(5, "clean")
					srv.Enqueue(fake.Response{Steps: steps(op.preamble, []fake.Step{fake.Pause(serverStall)})}, fake.Response{Steps: clean})
					start := time.Now()
					res := op.run(context.Background(), c, si.perCall(to.opt)...)
					took := time.Since(start)
					if res.callErr != nil || res.streamErr != nil || srv.CallCount() != 2 {
						t.Fatalf("call error %v, stream error %v, %d server calls; want one transparent retry", res.callErr, res.streamErr, srv.CallCount())
					}
					checkEvents(t, "after the stall", res.events, want)
					if errs := attempts.get(); len(errs) != 1 || !as[*smithyext.StatusError](errs[0]) || classify.Classify(errs[0]).Code != classify.CodeStreamStalled {
						t.Errorf("the retryer saw %v; want one StreamStalled", errs)
					}
					if took < timeout || took > timeout+2*time.Second {
						t.Errorf("the call took %v; want about the %v timeout", took, timeout)
					}
					if opened, closed, ok := bodies.balanced(); !ok {
						t.Errorf("%d response bodies opened, %d closed", opened, closed)
					}
				})
			}
		}
	}
}

// TestStallAfterContentEndsTheStream: two events, then nothing. The stream
// ends with the typed, retryable stall after the 2 events delivered, about
// one idle timeout after the last byte; nothing is re-sent.
func TestStallAfterContentEndsTheStream(t *testing.T) {
	const idle = 300 * time.Millisecond
	for _, si := range stallInstalls {
		t.Run(si.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t)
			cfg, bodies := countingConfig(srv, 3)
			c := si.client(cfg, middleware.WithIdleTimeout(idle), middleware.WithFirstEventTimeout(5*time.Second))
			sent, want := chunks(2, "s")
			srv.Enqueue(fake.Response{Steps: steps(sent, []fake.Step{fake.Pause(serverStall), fake.Chunk([]byte("late"))})})
			start := time.Now()
			res := invokeStream.run(context.Background(), c, si.perCall(middleware.WithIdleTimeout(idle), middleware.WithFirstEventTimeout(5*time.Second))...)
			took := time.Since(start)
			if res.callErr != nil || srv.CallCount() != 1 {
				t.Fatalf("call error %v, %d server calls; want the stream, 1 call", res.callErr, srv.CallCount())
			}
			checkEvents(t, "before the stall", res.events, want)
			checkWant(t, res.streamErr, failureWant{code: classify.CodeStreamStalled, retryable: true, kind: smithyext.KindTransport}, 2, srv.Calls()[0].RequestID)
			if errors.Is(res.streamErr, context.DeadlineExceeded) || errors.Is(res.streamErr, context.Canceled) {
				t.Errorf("a stall must not look like the caller's context: %v", res.streamErr)
			}
			if r := classify.Classify(res.streamErr); !r.Retryable || r.Source != classify.SourceStream || r.Code != classify.CodeStreamStalled {
				t.Errorf("Classify = %+v", r)
			}
			if took < idle || took > idle+2*time.Second {
				t.Errorf("the stream ended after %v; want about the %v idle timeout", took, idle)
			}
			if opened, closed, ok := bodies.balanced(); !ok {
				t.Errorf("%d response bodies opened, %d closed", opened, closed)
			}
		})
	}
}

// TestPausesWithoutTimeoutsAreLeftAlone: without timeouts (the default) a
// 700 ms pause, before or after content, is waited out; with timeouts, the
// time the consumer spends on an event is not a stall.
func TestPausesWithoutTimeoutsAreLeftAlone(t *testing.T) {
	const pause = 700 * time.Millisecond
	for _, how := range installs {
		t.Run("no timeouts/"+how.String(), func(t *testing.T) {
			t.Parallel()
			srv := newServer(t)
			c := newClient(srv, how, 3)
			sent, want := chunks(2, "s")
			srv.Enqueue(fake.Response{Steps: steps([]fake.Step{fake.Pause(pause)}, sent[:1], []fake.Step{fake.Pause(pause)}, sent[1:])})
			res := invokeStream.run(context.Background(), c)
			if res.callErr != nil || res.streamErr != nil || srv.CallCount() != 1 {
				t.Fatalf("call error %v, stream error %v, %d calls", res.callErr, res.streamErr, srv.CallCount())
			}
			checkEvents(t, "paused stream", res.events, want)
		})
	}
	t.Run("slow consumer", func(t *testing.T) {
		t.Parallel()
		const idle = 100 * time.Millisecond
		srv := newServer(t)
		c := newClient(srv, clientOption, 1, middleware.WithIdleTimeout(idle), middleware.WithFirstEventTimeout(idle))
		sent, want := chunks(3, "s")
		srv.Enqueue(fake.Response{Steps: sent})
		out, err := c.InvokeModelWithResponseStream(context.Background(), &bedrockruntime.InvokeModelWithResponseStreamInput{
			ModelId: aws.String("m"), Body: []byte(`{}`), ContentType: aws.String("application/json"),
		})
		if err != nil {
			t.Fatal(err)
		}
		s := out.GetStream()
		defer s.Close()
		var got []string
		for ev := range s.Events() {
			got = append(got, renderChunk(ev))
			time.Sleep(3 * idle) // the consumer is busy; the stream is not stalled
		}
		if s.Err() != nil {
			t.Fatalf("a slow consumer was taken for a stall: %v", s.Err())
		}
		checkEvents(t, "slow consumer", got, want)
	})
}

// TestCallerCancellationIsNotAStall: the caller's own context, during a
// stall wait or during the backoff after a stall, ends the call with the
// context's error: not retryable, errors.Is reaches it, no further attempt.
func TestCallerCancellationIsNotAStall(t *testing.T) {
	t.Run("deadline while waiting for the first event", func(t *testing.T) {
		srv := newServer(t)
		cfg, bodies := countingConfig(srv, 3)
		c := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithFirstEventTimeout(10*time.Second)))
		srv.SetDefault(fake.Response{Steps: []fake.Step{fake.Pause(serverStall)}})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		res := invokeStream.run(ctx, c)
		if !errors.Is(res.callErr, context.DeadlineExceeded) || as[*smithyext.StatusError](res.callErr) || srv.CallCount() != 1 {
			t.Fatalf("call error %v, %d calls; want the caller's deadline, 1 call", res.callErr, srv.CallCount())
		}
		if r := classify.Classify(res.callErr); r.Retryable || r.Source != classify.SourceCanceled {
			t.Errorf("Classify = %+v", r)
		}
		if opened, closed, ok := bodies.balanced(); !ok {
			t.Errorf("%d response bodies opened, %d closed", opened, closed)
		}
	})
	t.Run("cancel after content while waiting for bytes", func(t *testing.T) {
		srv := newServer(t)
		cfg, bodies := countingConfig(srv, 3)
		c := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithIdleTimeout(10*time.Second)))
		sent, _ := chunks(2, "s")
		srv.SetDefault(fake.Response{Steps: steps(sent, []fake.Step{fake.Pause(serverStall)})})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		time.AfterFunc(300*time.Millisecond, cancel)
		res := invokeStream.run(ctx, c)
		if res.callErr != nil || len(res.events) != 2 || !errors.Is(res.streamErr, context.Canceled) || srv.CallCount() != 1 {
			t.Fatalf("call error %v, %d events, stream error %v, %d calls", res.callErr, len(res.events), res.streamErr, srv.CallCount())
		}
		if r := classify.Classify(res.streamErr); r.Retryable || r.Source != classify.SourceCanceled || r.Code == classify.CodeStreamStalled {
			t.Errorf("Classify = %+v", r)
		}
		if opened, closed, ok := bodies.balanced(); !ok {
			t.Errorf("%d response bodies opened, %d closed", opened, closed)
		}
	})
	t.Run("cancel during the backoff after a stall", func(t *testing.T) {
		srv := newServer(t)
		cfg, bodies := countingConfig(srv, 3)
		const backoff = 10 * time.Second
		cfg.Retryer = testRetryer(3, retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return backoff, nil }))
		c := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithFirstEventTimeout(100*time.Millisecond)))
		srv.SetDefault(fake.Response{Steps: []fake.Step{fake.Pause(serverStall)}})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		time.AfterFunc(400*time.Millisecond, cancel) // the stall fired at 100 ms; the retryer now waits
		start := time.Now()
		res := invokeStream.run(ctx, c)
		took := time.Since(start)
		if !errors.Is(res.callErr, context.Canceled) || srv.CallCount() != 1 || took > 2*time.Second {
			t.Fatalf("call error %v after %v, %d calls; want the cancel, promptly, 1 call", res.callErr, took, srv.CallCount())
		}
		if r := classify.Classify(res.callErr); r.Retryable {
			t.Errorf("Classify = %+v", r)
		}
		if opened, closed, ok := bodies.balanced(); !ok {
			t.Errorf("%d response bodies opened, %d closed", opened, closed)
		}
	})
}

// TestNegativeTimeoutFailsTheFirstCall: a timeout that cannot be honoured
// fails loudly, naming the option.
func TestNegativeTimeoutFailsTheFirstCall(t *testing.T) {
	for _, opt := range []struct {
		name string
		o    middleware.Option
	}{{"WithFirstEventTimeout", middleware.WithFirstEventTimeout(-time.Second)}, {"WithIdleTimeout", middleware.WithIdleTimeout(-time.Second)}} {
		srv := newServer(t)
		c := newClient(srv, clientOption, 1, opt.o)
		res := invokeStream.run(context.Background(), c)
		if res.callErr == nil || !containsAll(res.callErr.Error(), opt.name, "-1s") || srv.CallCount() != 0 {
			t.Errorf("%s(-1s): call error %v, %d calls; want a failure naming the option, no call", opt.name, res.callErr, srv.CallCount())
		}
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// attemptErrors records the errors of failed attempts, as the client's
// retryer is asked about them.
type attemptErrors struct {
	mu   sync.Mutex
	errs []error
}

func (a *attemptErrors) wrap(newRetryer func() aws.Retryer) func() aws.Retryer {
	return func() aws.Retryer { return recordingRetryer{Retryer: newRetryer(), a: a} }
}

func (a *attemptErrors) get() []error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]error(nil), a.errs...)
}

type recordingRetryer struct {
	aws.Retryer
	a *attemptErrors
}

func (r recordingRetryer) IsErrorRetryable(err error) bool {
	r.a.mu.Lock()
	r.a.errs = append(r.a.errs, err)
	r.a.mu.Unlock()
	return r.Retryer.IsErrorRetryable(err)
}
