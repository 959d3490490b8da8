package integration_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"

	"github.com/streamstatus/streamstatus/backoff"
	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/middleware"
	"github.com/streamstatus/streamstatus/smithyext"
)

// TestBudgetMaxAttemptsHoldsWhateverRetryMaxAttemptsSays: the budget's
// MaxAttempts bounds every call, whether cfg.RetryMaxAttempts (which wraps
// the retryer in retry.AddWithMaxAttempts) lifts the SDK's own count or
// not, with the streamstatus middlewares (call state) and without them
// (the budget's retryer alone, on Converse). The bucket ends where the
// bare SDK's limit leaves it: the one retry made keeps its cost, the
// refused one takes nothing. The error unwraps to the SDK's
// *retry.MaxAttemptsError; it is the budget's *ExhaustedError except for
// the retryer alone with nothing lifting the SDK's count (the SDK's loop
// stops the call before asking the retryer).
func TestBudgetMaxAttemptsHoldsWhateverRetryMaxAttemptsSays(t *testing.T) {
	for _, withMiddlewares := range []bool{false, true} {
		for _, retryMax := range []int{0, 5} {
			srv := busyServer(t) // an exception in the stream
			if !withMiddlewares {
				srv.SetDefault(fake.Response{Status: 503, ErrorType: "ServiceUnavailableException", ErrorMessage: "busy"})
			}
			bucket := backoff.NewTokenBucket(100)
			b := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 2; b.Bucket = bucket })
			cfg := testConfig(srv, 0)
			cfg.Retryer = func() aws.Retryer { return b.NewStandard() }
			cfg.RetryMaxAttempts = retryMax
			var err error
			if withMiddlewares {
				middleware.AppendMiddlewares(&cfg.APIOptions, middleware.WithBudget(b))
				err = invokeStream.run(context.Background(), bedrockruntime.NewFromConfig(cfg)).callErr
			} else {
				err = converse(context.Background(), bedrockruntime.NewFromConfig(cfg))
			}
			var ex *backoff.ExhaustedError
			var maxErr *retry.MaxAttemptsError
			wantExhausted := withMiddlewares || retryMax > 0
			if srv.CallCount() != 2 || !errors.As(err, &maxErr) || errors.As(err, &ex) != wantExhausted ||
				(wantExhausted && (ex.Reason != "attempts" || ex.Attempts != 2)) || classify.Classify(err).Attempts != 2 {
				t.Errorf("middlewares %v, RetryMaxAttempts %d: %d attempts, err %T %v; want 2 attempts, *retry.MaxAttemptsError reachable, *backoff.ExhaustedError (attempts, 2) %v",
					withMiddlewares, retryMax, srv.CallCount(), err, err, wantExhausted)
			}
			if withMiddlewares && !as[*smithyext.StatusError](err) {
				t.Errorf("middlewares, RetryMaxAttempts %d: err %v does not unwrap to the last attempt's *smithyext.StatusError", retryMax, err)
			}
			if got, want := bucket.Available(), uint(100-backoff.DefaultRetryCost); got != want {
				t.Errorf("middlewares %v, RetryMaxAttempts %d: bucket holds %d, want %d (one retry's cost; the refused retry takes nothing)",
					withMiddlewares, retryMax, got, want)
			}
		}
	}
}

// TestBudgetRefusesARetryWhoseDelayTheClientReplaced: config-wide, no
// middleware can see the client's retryer; a wrapper that answers
// RetryDelay itself (retry.AddWithMaxBackoffDelay) replaces the budget's
// backoff. The first retry it delayed is refused, naming the fix, with the
// retry token given back; wrappers that leave RetryDelay to the budget
// (AddWithMaxAttempts, AddWithErrorCodes, in both retry modes) retry as
// the budget says.
func TestBudgetRefusesARetryWhoseDelayTheClientReplaced(t *testing.T) {
	for _, tc := range []struct {
		name    string
		retryer func(*backoff.Budget) aws.Retryer
		refused bool
	}{
		{"AddWithMaxBackoffDelay", func(b *backoff.Budget) aws.Retryer { return retry.AddWithMaxBackoffDelay(b.NewStandard(), 1) }, true},
		{"AddWithMaxAttempts(AddWithMaxBackoffDelay(adaptive))", func(b *backoff.Budget) aws.Retryer {
			return retry.AddWithMaxAttempts(retry.AddWithMaxBackoffDelay(b.NewAdaptive(), 1), 9)
		}, true},
		{"AddWithMaxAttempts", func(b *backoff.Budget) aws.Retryer { return retry.AddWithMaxAttempts(b.NewStandard(), 9) }, false},
		{"AddWithErrorCodes(adaptive)", func(b *backoff.Budget) aws.Retryer { return retry.AddWithErrorCodes(b.NewAdaptive(), "Busy") }, false},
		{"asks the budget with a wrapped error", func(b *backoff.Budget) aws.Retryer { return wrapsDelayErr{b.NewStandard()} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := busyServer(t)
			bucket := backoff.NewTokenBucket(100)
			b := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 3; b.Bucket = bucket })
			cfg := testConfig(srv, 0)
			cfg.Retryer = func() aws.Retryer { return tc.retryer(b) }
			middleware.AppendMiddlewares(&cfg.APIOptions, middleware.WithBudget(b))
			err := invokeStream.run(context.Background(), bedrockruntime.NewFromConfig(cfg)).callErr
			if tc.refused {
				if srv.CallCount() != 1 || err == nil || !strings.Contains(err.Error(), "use budget.NewStandard() unwrapped") ||
					!as[*smithyext.StatusError](err) || bucket.Available() != 100 {
					t.Fatalf("%d attempts, bucket %d, err %v; want 1 attempt, the retry refused naming budget.NewStandard(), the attempt's error reachable, the token back (100)",
						srv.CallCount(), bucket.Available(), err)
				}
				return
			}
			var ex *backoff.ExhaustedError
			if srv.CallCount() != 3 || !errors.As(err, &ex) || ex.Reason != "attempts" {
				t.Fatalf("%d attempts, err %v; want the budget's 3, then *backoff.ExhaustedError (attempts)", srv.CallCount(), err)
			}
		})
	}
}

// wrapsDelayErr asks the budget's retryer for the delay, with the error
// wrapped: the delay is still the budget's.
type wrapsDelayErr struct{ aws.RetryerV2 }

func (w wrapsDelayErr) RetryDelay(attempt int, err error) (time.Duration, error) {
	return w.RetryerV2.RetryDelay(attempt, fmt.Errorf("wrapped: %w", err))
}

// TestBudgetRetriesOfConcurrentCallsKeepTheirOwnDelays: one client's
// retryer serves every call at once; each SDK retry is matched with the
// budget's RetryDelay for its own attempt's error, so concurrent retries
// are never taken for retries whose delay the client replaced.
func TestBudgetRetriesOfConcurrentCallsKeepTheirOwnDelays(t *testing.T) {
	srv := newServer(t)
	clean, _ := invokeStream.healthy(2, "ok")
	srv.SetScript(func(c fake.Call) fake.Response {
		if strings.Contains(c.Header.Get("Amz-Sdk-Request"), "attempt=1;") {
			return fake.Response{Steps: []fake.Step{fake.Exception("serviceUnavailableException", "busy")}}
		}
		return fake.Response{Steps: clean}
	})
	b := immediateBudget(func(b *backoff.Budget) { b.Bucket = backoff.NewTokenBucket(1 << 20) })
	c := budgetClient(srv, b, "standard")
	const calls = 64
	errs := make(chan error, calls)
	for range calls {
		go func() {
			res := invokeStream.run(context.Background(), c)
			errs <- errors.Join(res.callErr, res.streamErr)
		}()
	}
	for range calls {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if srv.CallCount() != 2*calls {
		t.Errorf("%d server calls, want %d (each call retried once)", srv.CallCount(), 2*calls)
	}
}
