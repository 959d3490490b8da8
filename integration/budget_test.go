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

	"github.com/streamstatus/streamstatus/backoff"
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
				b.Clock = &steppingClock{now: time.Unix(1e9, 0), step: 10 * time.Second}
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
