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
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/streamstatus/streamstatus/backoff"
	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/middleware"
	"github.com/streamstatus/streamstatus/smithyext"
)

// immediateBudget is a budget with zero delays, for tests.
func immediateBudget(fns ...func(*backoff.Budget)) *backoff.Budget {
	return backoff.NewBudget(append([]func(*backoff.Budget){func(b *backoff.Budget) {
		b.Transient, b.Throttle = backoff.Immediate, backoff.Immediate
	}}, fns...)...)
}

// budgetClient builds a client whose retryer comes from the budget, in the
// given retry mode.
//
// The adaptive mode fails an attempt at once when its client-side rate
// limiter has no token, instead of sleeping until one refills: these tests
// are about the budget, and must not crawl.
func budgetClient(srv *fake.Server, b *backoff.Budget, mode string) *bedrockruntime.Client {
	cfg := testConfig(srv, 0)
	switch mode {
	case "standard":
		cfg.Retryer = func() aws.Retryer { return b.NewStandard() }
	case "adaptive":
		cfg.Retryer = func() aws.Retryer {
			return b.NewAdaptive(func(o *retry.AdaptiveModeOptions) { o.FailOnNoAttemptTokens = true })
		}
	}
	return bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithBudget(b)))
}

var retryModes = []string{"standard", "adaptive"}

// TestBudgetAttemptsInBothRetryModes: the SDK's own standard and adaptive
// retryers, configured by the budget, make exactly MaxAttempts attempts.
func TestBudgetAttemptsInBothRetryModes(t *testing.T) {
	for _, mode := range retryModes {
		t.Run(mode, func(t *testing.T) {
			srv := newServer(t)
			srv.SetDefault(fake.Response{Steps: []fake.Step{fake.Exception("serviceUnavailableException", "busy")}})
			b := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 4 })
			res := invokeStream.run(context.Background(), budgetClient(srv, b, mode))
			var maxErr *retry.MaxAttemptsError
			if srv.CallCount() != 4 || !errors.As(res.callErr, &maxErr) || !as[*smithyext.StatusError](res.callErr) {
				t.Fatalf("%d calls, err %v; want 4 attempts ending in MaxAttemptsError", srv.CallCount(), res.callErr)
			}

			// And a transient failure is recovered in the same mode.
			srv2 := newServer(t)
			clean, want := invokeStream.healthy(2, "ok")
			srv2.Enqueue(fake.Response{Steps: []fake.Step{fake.Exception("modelStreamErrorException", `x`)}}, fake.Response{Steps: clean})
			res = invokeStream.run(context.Background(), budgetClient(srv2, b, mode))
			if res.callErr != nil || !equalStrings(res.events, want) || srv2.CallCount() != 2 {
				t.Fatalf("recovery in %s mode: %v %q calls %d", mode, res.callErr, res.events, srv2.CallCount())
			}
		})
	}
}

// TestSharedBucketAcrossClients: one bucket for two clients (say two
// regions); one client draining it stops retries on the other.
func TestSharedBucketAcrossClients(t *testing.T) {
	for _, mode := range retryModes {
		t.Run(mode, func(t *testing.T) {
			bucket := backoff.NewTokenBucket(2 * backoff.DefaultRetryCost)
			east := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 10; b.Bucket = bucket })
			west := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 10; b.Bucket = bucket })

			srvEast := newServer(t)
			srvEast.SetDefault(fake.Response{Steps: []fake.Step{fake.Exception("internalServerException", "oops")}})
			res := invokeStream.run(context.Background(), budgetClient(srvEast, east, mode))
			var qe *backoff.QuotaExceededError
			if !errors.As(res.callErr, &qe) || srvEast.CallCount() != 3 || bucket.Available() != 0 {
				t.Fatalf("east: %d calls, %d tokens, err %v; want 3 calls (2 retries x 14 tokens) then quota", srvEast.CallCount(), bucket.Available(), res.callErr)
			}
			if got := classify.Classify(res.callErr).Attempts; got != 3 || strings.Contains(res.callErr.Error(), "\n") || !as[*smithyext.StatusError](res.callErr) {
				t.Fatalf("east: Classify says %d attempts, err %q; want 3, one line, the last StatusError reachable", got, res.callErr)
			}

			srvWest := newServer(t)
			clean, _ := invokeStream.healthy(1, "ok")
			srvWest.Enqueue(fake.Response{Steps: []fake.Step{fake.Exception("internalServerException", "oops")}}, fake.Response{Steps: clean})
			res = invokeStream.run(context.Background(), budgetClient(srvWest, west, mode))
			if !errors.As(res.callErr, &qe) || srvWest.CallCount() != 1 {
				t.Fatalf("west: %d calls, err %v; want no retry, the shared quota is empty", srvWest.CallCount(), res.callErr)
			}

			// Successes put tokens back.
			for i := 0; i < 5; i++ {
				srvWest.Enqueue(fake.Response{Steps: clean})
				if res := invokeStream.run(context.Background(), budgetClient(srvWest, west, mode)); res.callErr != nil {
					t.Fatal(res.callErr)
				}
			}
			if bucket.Available() != 5 {
				t.Fatalf("%d tokens after 5 successes, want 5", bucket.Available())
			}
		})
	}
}

// steppingClock advances by step each time it is read.
type steppingClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func (c *steppingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}

// TestBudgetElapsedInBothRetryModes: with a clock that moves 10s per
// reading and a 25s budget, the SDK's retry loop stops once the next retry
// could not begin inside the budget.
func TestBudgetElapsedInBothRetryModes(t *testing.T) {
	for _, mode := range retryModes {
		t.Run(mode, func(t *testing.T) {
			srv := newServer(t)
			srv.SetDefault(fake.Response{Steps: []fake.Step{fake.Exception("serviceUnavailableException", "busy")}})
			b := immediateBudget(func(b *backoff.Budget) {
				b.MaxAttempts = 10
				b.MaxElapsed = 25 * time.Second
				b.Now = (&steppingClock{now: time.Unix(1e9, 0), step: 10 * time.Second}).Now
			})
			res := invokeStream.run(context.Background(), budgetClient(srv, b, mode))
			var ex *backoff.ExhaustedError
			// Call start at t, first retry check at t+10s (ok), second at
			// t+20s (ok), third at t+30s (past 25s): 3 attempts.
			if !errors.As(res.callErr, &ex) || ex.Reason != "elapsed time" || srv.CallCount() != 3 {
				t.Fatalf("%d calls, err %v; want 3 attempts then an elapsed-time stop", srv.CallCount(), res.callErr)
			}
		})
	}
}

// TestThrottleStorm: 200 concurrent streams against an endpoint that
// throttles every first frame. With MaxAttempts A, a shared bucket of C
// tokens and a throttle retry cost of K, and no success to refill the
// bucket, the server sees at most N + min(N*(A-1), floor(C/K)) calls.
func TestThrottleStorm(t *testing.T) {
	const (
		streams  = 200
		attempts = 3
		capacity = 100
		cost     = 5
	)
	limit := streams + min(streams*(attempts-1), capacity/cost)
	for _, mode := range retryModes {
		t.Run(mode, func(t *testing.T) {
			srv := newServer(t)
			srv.SetDefault(fake.Response{Steps: []fake.Step{fake.Exception("throttlingException", "Too many requests")}})
			b := immediateBudget(func(b *backoff.Budget) {
				b.MaxAttempts = attempts
				b.Bucket = backoff.NewTokenBucket(capacity)
				b.ThrottleRetryCost = cost
			})
			c := budgetClient(srv, b, mode)
			var wg sync.WaitGroup
			var mu sync.Mutex
			outcomes := map[string]int{}
			for i := 0; i < streams; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res := invokeStream.run(context.Background(), c)
					key := "ok"
					var qe *backoff.QuotaExceededError
					var maxErr *retry.MaxAttemptsError
					switch {
					case errors.As(res.callErr, &qe):
						key = "quota"
					case errors.As(res.callErr, &maxErr):
						key = "max attempts"
					case res.callErr != nil && strings.Contains(res.callErr.Error(), "unable to get attempt token"):
						key = "adaptive rate limiter" // FailOnNoAttemptTokens, see budgetClient
					case res.callErr != nil:
						key = fmt.Sprintf("other: %v", res.callErr)
					}
					mu.Lock()
					outcomes[key]++
					mu.Unlock()
				}()
			}
			wg.Wait()
			calls := srv.CallCount()
			t.Logf("%s: %d streams, server calls %d (limit N + min(N(A-1), C/K) = %d + min(%d, %d) = %d); outcomes %v",
				mode, streams, calls, streams, streams*(attempts-1), capacity/cost, limit, outcomes)
			if calls > limit {
				t.Fatalf("%d server calls, more than the budget's %d", calls, limit)
			}
			// The standard mode sends every first attempt; the adaptive
			// mode's own rate limiter may hold some back.
			if mode == "standard" && calls != limit {
				t.Fatalf("standard mode: %d server calls, want exactly %d (every first attempt, then the bucket's retries)", calls, limit)
			}
			if outcomes["ok"] != 0 || outcomes["quota"]+outcomes["max attempts"]+outcomes["adaptive rate limiter"] != streams {
				t.Fatalf("outcomes %v", outcomes)
			}
		})
	}
}

// TestRetryStreamWithTheRealClient: a stream that fails after content is run
// again as a whole once the caller's reset discarded the partial answer.
func TestRetryStreamWithTheRealClient(t *testing.T) {
	srv := newServer(t)
	content, _ := converseStream.content(2, "partial")
	clean, _ := converseStream.healthy(3, "final")
	srv.Enqueue(
		fake.Response{Steps: steps(converseStream.preamble, content, []fake.Step{fake.Exception("serviceUnavailableException", "busy")})},
		fake.Response{Steps: clean},
	)
	b := immediateBudget()
	client := budgetClient(srv, b, "standard")
	var answer []string
	resets := 0
	err := backoff.RetryStream(context.Background(), b,
		func(ctx context.Context) (backoff.Stream[types.ConverseStreamOutput], error) {
			out, err := client.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{
				ModelId: aws.String("anthropic.claude-test"),
				Messages: []types.Message{{Role: types.ConversationRoleUser,
					Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: "hi"}}}},
			})
			if err != nil {
				return nil, err
			}
			return out.GetStream(), nil
		},
		func(ev types.ConverseStreamOutput) error {
			if d, ok := ev.(*types.ConverseStreamOutputMemberContentBlockDelta); ok {
				answer = append(answer, d.Value.Delta.(*types.ContentBlockDeltaMemberText).Value)
			}
			return nil
		},
		func(o *backoff.StreamOptions) {
			o.Reset = func(delivered int, err error) error {
				resets++
				answer = nil
				return nil
			}
		})
	if err != nil || resets != 1 || fmt.Sprint(answer) != "[final-0 final-1 final-2]" || srv.CallCount() != 2 {
		t.Fatalf("err %v, resets %d, answer %q, calls %d", err, resets, answer, srv.CallCount())
	}
}

// elapsedBudget is a budget of 10 attempts and 25s whose clock moves 10s per
// reading: the call start is one reading, every retry check another, so a
// budget that holds stops after 3 attempts (checks at +10s, +20s, +30s).
func elapsedBudget() *backoff.Budget {
	return immediateBudget(func(b *backoff.Budget) {
		b.MaxAttempts = 10
		b.MaxElapsed = 25 * time.Second
		b.Now = (&steppingClock{now: time.Unix(1e9, 0), step: 10 * time.Second}).Now
	})
}

// wantElapsedStop checks that a call against an always-busy server stopped
// on the budget's elapsed time after 3 attempts, with a one-line error that
// still leads to the last attempt's typed error.
func wantElapsedStop(t *testing.T, srv *fake.Server, err error) {
	t.Helper()
	var ex *backoff.ExhaustedError
	if !errors.As(err, &ex) || ex.Reason != "elapsed time" || srv.CallCount() != 3 {
		t.Fatalf("%d calls, err %v; want 3 attempts then an elapsed-time stop", srv.CallCount(), err)
	}
	if strings.Contains(err.Error(), "\n") || !as[*smithyext.StatusError](err) || !as[*types.ServiceUnavailableException](err) {
		t.Fatalf("error %q: want one line leading to the last attempt's StatusError and ServiceUnavailableException", err)
	}
	if got := classify.Classify(err).Attempts; got != 3 {
		t.Fatalf("Classify(err).Attempts = %d, want 3", got)
	}
}

func busyServer(t *testing.T) *fake.Server {
	srv := newServer(t)
	srv.SetDefault(fake.Response{Steps: []fake.Step{fake.Exception("serviceUnavailableException", "busy")}})
	return srv
}

// TestBudgetHoldsOnEveryInstallPath: MaxElapsed (and MaxAttempts) hold
// however the middlewares and the budget were put on the client, or the
// call fails at once naming the fix.
func TestBudgetHoldsOnEveryInstallPath(t *testing.T) {
	t.Run("WithBedrock(WithBudget) at construction", func(t *testing.T) {
		srv := busyServer(t)
		b := elapsedBudget()
		c := bedrockruntime.NewFromConfig(testConfig(srv, 0), middleware.WithBedrock(middleware.WithBudget(b)))
		wantElapsedStop(t, srv, invokeStream.run(context.Background(), c).callErr)
	})
	t.Run("config-wide: cfg.Retryer from the budget, AppendMiddlewares without options", func(t *testing.T) {
		srv := busyServer(t)
		b := elapsedBudget()
		cfg := testConfig(srv, 0)
		cfg.Retryer = func() aws.Retryer { return b.NewStandard() }
		middleware.AppendMiddlewares(&cfg.APIOptions)
		wantElapsedStop(t, srv, invokeStream.run(context.Background(), bedrockruntime.NewFromConfig(cfg)).callErr)
	})
	t.Run("per-call WithBedrock(WithBudget) on a client built with WithBedrock()", func(t *testing.T) {
		srv := busyServer(t)
		b := elapsedBudget()
		c := bedrockruntime.NewFromConfig(testConfig(srv, 0), middleware.WithBedrock())
		wantElapsedStop(t, srv, invokeStream.run(context.Background(), c, middleware.WithBedrock(middleware.WithBudget(b))).callErr)
	})
	t.Run("config-wide install without budget, then WithBedrock(WithBudget) at construction", func(t *testing.T) {
		srv := busyServer(t)
		b := elapsedBudget()
		cfg := testConfig(srv, 0)
		middleware.AppendMiddlewares(&cfg.APIOptions)
		c := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithBudget(b)))
		wantElapsedStop(t, srv, invokeStream.run(context.Background(), c).callErr)
	})
	t.Run("APIOption(WithBudget) on a non-Bedrock client with the budget's retryer", func(t *testing.T) {
		srv := newServer(t)
		srv.SetDefault(fake.Response{Steps: []fake.Step{fake.Exception("InternalStreamFailure", "busy")}})
		b := elapsedBudget()
		cfg := testConfig(srv, 0)
		cfg.Retryer = func() aws.Retryer { return b.NewStandard() }
		c := sagemakerruntime.NewFromConfig(cfg, sagemakerruntime.WithAPIOptions(middleware.APIOption(middleware.WithBudget(b))))
		err := runSageMaker(c).callErr
		var ex *backoff.ExhaustedError
		if !errors.As(err, &ex) || ex.Reason != "elapsed time" || srv.CallCount() != 3 || classify.Classify(err).Attempts != 3 {
			t.Fatalf("%d calls, err %v; want 3 attempts then an elapsed-time stop", srv.CallCount(), err)
		}
	})
	t.Run("APIOption(WithBudget) on a non-Bedrock client without the budget's retryer fails at once", func(t *testing.T) {
		srv := newServer(t)
		srv.SetDefault(fake.Response{Steps: []fake.Step{fake.Exception("InternalStreamFailure", "busy")}})
		b := elapsedBudget()
		c := sagemakerruntime.NewFromConfig(testConfig(srv, 3), sagemakerruntime.WithAPIOptions(middleware.APIOption(middleware.WithBudget(b))))
		err := runSageMaker(c).callErr
		if err == nil || srv.CallCount() != 0 || !strings.Contains(err.Error(), "NewStandard") {
			t.Fatalf("%d calls, err %v; want no call and an error naming budget.NewStandard", srv.CallCount(), err)
		}
	})
}

// TestBudgetAttemptsHoldAgainstRetryMaxAttempts: cfg.RetryMaxAttempts (what
// AWS_MAX_ATTEMPTS sets) wraps the client's retryer with a larger maximum;
// the budget's 2 attempts still hold, and the client's retryer is still
// recognised as the budget's.
func TestBudgetAttemptsHoldAgainstRetryMaxAttempts(t *testing.T) {
	srv := busyServer(t)
	b := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 2 })
	cfg := testConfig(srv, 0)
	cfg.RetryMaxAttempts = 6
	c := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithBudget(b)))
	err := invokeStream.run(context.Background(), c).callErr
	if srv.CallCount() != 2 || classify.Classify(err).Attempts != 2 {
		t.Fatalf("%d calls (Classify says %d attempts), err %v; want the budget's 2", srv.CallCount(), classify.Classify(err).Attempts, err)
	}
	if backoff.Of(c.Options().Retryer) != b {
		t.Fatalf("backoff.Of(client retryer %T) does not find the budget", c.Options().Retryer)
	}
}

// TestLaterClassifierIsApplied: a client option asking for a classifier is
// not dropped because a config-wide install came first, and a later install
// that sets nothing keeps the earlier one's classifier.
func TestLaterClassifierIsApplied(t *testing.T) {
	clean, _ := invokeStream.healthy(1, "ok")
	c := classify.New(append(classify.DefaultTables(), classify.Table{
		ServiceID: "Bedrock Runtime", Source: "test",
		Rules: []classify.Rule{{Type: "validationException",
			Outcome: classify.Outcome{Code: "ValidationException", Status: 400, Retryable: true}}},
	})...)
	for _, tc := range []struct {
		name              string
		configWide, later []middleware.Option
	}{
		{"config-wide without options, then WithBedrock(WithClassifier)", nil, []middleware.Option{middleware.WithClassifier(c)}},
		{"config-wide WithClassifier, then WithBedrock() leaves it", []middleware.Option{middleware.WithClassifier(c)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t)
			srv.Enqueue(fake.Response{Steps: []fake.Step{fake.Exception("validationException", "bad")}}, fake.Response{Steps: clean})
			cfg := testConfig(srv, 3)
			middleware.AppendMiddlewares(&cfg.APIOptions, tc.configWide...)
			client := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(tc.later...))
			res := invokeStream.run(context.Background(), client)
			if res.callErr != nil || res.streamErr != nil || srv.CallCount() != 2 {
				t.Fatalf("%d calls, err %v / %v; want the row made retryable to be retried (2 calls)", srv.CallCount(), res.callErr, res.streamErr)
			}
		})
	}
}

// TestRetryAfterCannotStretchPastMaxElapsed: an X-Amz-Retry-After header
// makes the SDK wait longer than the backoff; a retry that would end past
// MaxElapsed is not made.
func TestRetryAfterCannotStretchPastMaxElapsed(t *testing.T) {
	srv := newServer(t)
	srv.SetDefault(fake.Response{Status: 429, ErrorType: "ThrottlingException", ErrorMessage: "slow down",
		Header: map[string][]string{"X-Amz-Retry-After": {"2000"}}})
	b := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 5; b.MaxElapsed = time.Second })
	c := bedrockruntime.NewFromConfig(testConfig(srv, 0), middleware.WithBedrock(middleware.WithBudget(b)))
	start := time.Now()
	err := invokeStream.run(context.Background(), c).callErr
	var ex *backoff.ExhaustedError
	if took := time.Since(start); !errors.As(err, &ex) || ex.Reason != "elapsed time" || srv.CallCount() != 1 || took > 900*time.Millisecond {
		t.Fatalf("%d calls in %v, err %v; want 1 attempt and an elapsed-time stop at once", srv.CallCount(), took.Round(time.Millisecond), err)
	}
	if !as[*types.ThrottlingException](err) || classify.Classify(err).Attempts != 1 {
		t.Fatalf("err %v: want the ThrottlingException reachable and 1 attempt", err)
	}
}

// TestRetryStreamSharesTheBudgetWithTheSDK: every odd call is throttled on
// its first frame (the SDK retries it), every even one fails after content
// (RetryStream retries it). One budget of 3 attempts bounds both: 3 server
// calls in all, not 3 stream attempts of up to 3 SDK attempts each.
func TestRetryStreamSharesTheBudgetWithTheSDK(t *testing.T) {
	srv := newServer(t)
	content, _ := invokeStream.content(2, "partial")
	var n int
	var mu sync.Mutex
	srv.SetScript(func(fake.Call) fake.Response {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n%2 == 1 {
			return fake.Response{Steps: []fake.Step{fake.Exception("throttlingException", "slow down")}}
		}
		return fake.Response{Steps: steps(content, []fake.Step{fake.Exception("serviceUnavailableException", "busy")})}
	})
	b := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 3 })
	client := budgetClient(srv, b, "standard")
	err := backoff.RetryStream(context.Background(), b, openInvoke(client), func(types.ResponseStream) error { return nil },
		func(o *backoff.StreamOptions) { o.Reset = func(int, error) error { return nil } })
	var ex *backoff.ExhaustedError
	if !errors.As(err, &ex) || srv.CallCount() != 3 || classify.Classify(err).Attempts != 3 {
		t.Fatalf("%d server calls, err %v; want 3 attempts in all", srv.CallCount(), err)
	}
}

// TestRetryStreamRefundsOnce: a call whose first attempt succeeds refunds
// the bucket once, not once in the SDK and once in RetryStream.
func TestRetryStreamRefundsOnce(t *testing.T) {
	srv := newServer(t)
	clean, _ := invokeStream.healthy(2, "ok")
	srv.SetDefault(fake.Response{Steps: clean})
	bucket := backoff.NewTokenBucket(100)
	if _, err := bucket.GetToken(context.Background(), 50); err != nil {
		t.Fatal(err)
	}
	b := immediateBudget(func(b *backoff.Budget) { b.Bucket = bucket })
	err := backoff.RetryStream(context.Background(), b, openInvoke(budgetClient(srv, b, "standard")), func(types.ResponseStream) error { return nil })
	if err != nil || bucket.Available() != 50+backoff.DefaultSuccessRefund {
		t.Fatalf("err %v, %d tokens; want %d (one refund)", err, bucket.Available(), 50+backoff.DefaultSuccessRefund)
	}
}

func openInvoke(client *bedrockruntime.Client) func(ctx context.Context) (backoff.Stream[types.ResponseStream], error) {
	return func(ctx context.Context) (backoff.Stream[types.ResponseStream], error) {
		out, err := client.InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{
			ModelId: aws.String("anthropic.claude-test"), Body: []byte(`{"prompt":"hello"}`), ContentType: aws.String("application/json"),
		})
		if err != nil {
			return nil, err
		}
		return out.GetStream(), nil
	}
}

// TestBudgetElapsedBoundsTheRetryersOwnWaitInBothModes: every attempt
// throttled, MaxElapsed 300ms, zero-delay shapes. The standard retryer
// makes its 3 attempts at once; the adaptive one's client-side rate
// limiter, after the first throttle, would sleep about 2s before attempt 2:
// the budget ends that wait at MaxElapsed as an elapsed-time exhaustion
// counting the 1 attempt made. No attempt begins past MaxElapsed.
func TestBudgetElapsedBoundsTheRetryersOwnWaitInBothModes(t *testing.T) {
	for _, tc := range []struct {
		mode     string
		retryer  func(*backoff.Budget) aws.Retryer
		attempts int
	}{
		{"standard", func(b *backoff.Budget) aws.Retryer { return b.NewStandard() }, 3},
		{"adaptive", func(b *backoff.Budget) aws.Retryer { return b.NewAdaptive() }, 1},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			srv := newServer(t)
			srv.SetDefault(fake.Response{Steps: []fake.Step{fake.Exception("throttlingException", "slow down")}})
			b := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 3; b.MaxElapsed = 300 * time.Millisecond })
			cfg := testConfig(srv, 0)
			cfg.Retryer = func() aws.Retryer { return tc.retryer(b) }
			c := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithBudget(b)))
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
			defer cancel()
			start := time.Now()
			err := invokeStream.run(ctx, c).callErr
			took := time.Since(start)
			if srv.CallCount() != tc.attempts || classify.Classify(err).Attempts != tc.attempts || !as[*smithyext.StatusError](err) {
				t.Fatalf("%d attempts, Classify says %d, err %v; want %d, ending in the throttle's StatusError",
					srv.CallCount(), classify.Classify(err).Attempts, err, tc.attempts)
			}
			var ex *backoff.ExhaustedError
			if tc.mode == "adaptive" && (!errors.As(err, &ex) || ex.Reason != "elapsed time" || ex.Attempts != 1) {
				t.Fatalf("err %v; want an elapsed-time ExhaustedError after 1 attempt", err)
			}
			if took > 300*time.Millisecond+150*time.Millisecond {
				t.Fatalf("the call took %v; MaxElapsed is 300ms", took.Round(time.Millisecond))
			}
		})
	}
}

// slowDelays is a retryer wrapper that replaces the budget's delays, like
// retry.AddWithMaxBackoffDelay, but with a fixed delay so the test is
// deterministic.
type slowDelays struct{ aws.RetryerV2 }

func (slowDelays) RetryDelay(int, error) (time.Duration, error) { return 300 * time.Millisecond, nil }

// TestConfigWideBudgetWithAWrappedRetryerFailsOnTheFirstRetry: on the
// config-wide path no middleware can see the client's retryer, and the SDK
// asks it for a delay only after an attempt failed. A wrapper that
// stretches the delay past MaxElapsed therefore cannot be caught before the
// first attempt; the retry it delayed is refused, naming the fix, and
// never sent.
func TestConfigWideBudgetWithAWrappedRetryerFailsOnTheFirstRetry(t *testing.T) {
	srv := busyServer(t)
	b := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 3; b.MaxElapsed = 100 * time.Millisecond })
	cfg := testConfig(srv, 0)
	cfg.Retryer = func() aws.Retryer { return slowDelays{b.NewStandard()} }
	middleware.AppendMiddlewares(&cfg.APIOptions, middleware.WithBudget(b))
	err := invokeStream.run(context.Background(), bedrockruntime.NewFromConfig(cfg)).callErr
	var ex *backoff.ExhaustedError
	if srv.CallCount() != 1 || !errors.As(err, &ex) || ex.Reason != "elapsed time" || ex.Attempts != 1 ||
		!strings.Contains(err.Error(), "budget.NewStandard() unwrapped") {
		t.Fatalf("%d attempts, err %v; want 1 attempt, then an elapsed-time exhaustion naming budget.NewStandard()", srv.CallCount(), err)
	}
}
