package backoff_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/streamstatus/streamstatus/backoff"

	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/internal/streamerr"
	"github.com/streamstatus/streamstatus/smithyext"
)

var bedrock = streamerr.Stream{Service: "Bedrock Runtime", Operation: "ConverseStream"}

func exception(t string, payload string, events int) *smithyext.StatusError {
	s := bedrock
	s.Events = events
	return streamerr.New(classify.New(classify.DefaultTables()...)).Exception(s, t, []byte(payload))
}

func TestShapeDelayStaysInItsRange(t *testing.T) {
	s := backoff.Shape{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.5}
	for n := 1; n <= 8; n++ {
		base := min(100*time.Millisecond<<(n-1), time.Second)
		lo, hi := time.Duration(float64(base)*0.5), time.Duration(float64(base)*1.5)+1
		for i := 0; i < 200; i++ {
			d := s.Delay(n)
			if d < lo || d > hi || d > s.MaxDelay(n) {
				t.Fatalf("retry %d: delay %v outside [%v, %v] (MaxDelay %v)", n, d, lo, hi, s.MaxDelay(n))
			}
		}
	}
	if d := backoff.Immediate.Delay(3); d != 0 {
		t.Fatalf("Immediate waits %v", d)
	}
}

func TestThrottlesUseTheLongerShape(t *testing.T) {
	b := backoff.NewBudget(func(b *backoff.Budget) {
		b.Transient = backoff.Shape{Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 1}
		b.Throttle = backoff.Shape{Initial: time.Hour, Max: time.Hour, Multiplier: 1}
	})
	tests := []struct {
		name string
		err  error
		want time.Duration
	}{
		{"throttlingException", exception("throttlingException", `{}`, 0), time.Hour},
		{"modelStreamError with original 429", exception("modelStreamErrorException", `{"originalStatusCode":429}`, 0), time.Hour},
		{"modelStreamError with original 500", exception("modelStreamErrorException", `{"originalStatusCode":500}`, 0), time.Millisecond},
		{"internal server error", exception("internalServerException", `{}`, 0), time.Millisecond},
		{"SDK-modeled throttle from an HTTP answer", &types.ThrottlingException{}, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d, _ := b.BackoffDelay(1, tt.err); d != tt.want {
				t.Fatalf("delay %v, want %v", d, tt.want)
			}
		})
	}
}

func TestTokenBucket(t *testing.T) {
	b := backoff.NewTokenBucket(10)
	release, err := b.GetToken(context.Background(), 7)
	if err != nil || b.Available() != 3 {
		t.Fatalf("take 7 of 10: %v, %d left", err, b.Available())
	}
	var qe *backoff.QuotaExceededError
	if _, err := b.GetToken(context.Background(), 5); !errors.As(err, &qe) || qe.Cost != 5 || qe.Available != 3 {
		t.Fatalf("want a quota error, got %v", err)
	}
	_ = release()
	if b.Available() != 10 {
		t.Fatalf("release did not return the tokens: %d", b.Available())
	}
	_ = b.AddTokens(100)
	if b.Available() != 10 {
		t.Fatalf("bucket overfilled to %d", b.Available())
	}
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if rel, err := b.GetToken(context.Background(), 1); err == nil {
				_ = rel()
			}
		}()
	}
	wg.Wait()
	if b.Available() != 10 {
		t.Fatalf("concurrent take/release lost tokens: %d", b.Available())
	}
}

func TestStandardOptionsPlugIntoTheSDK(t *testing.T) {
	bucket := backoff.NewTokenBucket(100)
	b := backoff.NewBudget(func(b *backoff.Budget) { b.MaxAttempts = 7; b.Bucket = bucket })
	r := b.NewStandard()
	if r.MaxAttempts() != 7 {
		t.Fatalf("MaxAttempts %d", r.MaxAttempts())
	}
	mse := exception("modelStreamErrorException", `{"originalStatusCode":429}`, 0)
	if _, err := r.GetRetryToken(context.Background(), mse); err != nil || bucket.Available() != 100-backoff.DefaultThrottleRetryCost {
		t.Fatalf("a throttle retry should cost %d: %v, %d left", backoff.DefaultThrottleRetryCost, err, bucket.Available())
	}
	if _, err := r.GetRetryToken(context.Background(), exception("internalServerException", `{}`, 0)); err != nil ||
		bucket.Available() != 100-backoff.DefaultThrottleRetryCost-backoff.DefaultRetryCost {
		t.Fatalf("a transient retry should cost %d: %v, %d left", backoff.DefaultRetryCost, err, bucket.Available())
	}
	if !r.IsErrorRetryable(fmt.Errorf("wrapped: %w", mse)) {
		t.Fatal("a wrapped retryable StatusError is not retryable")
	}
	if backoff.Of(r) != b || backoff.Of(retry.NewStandard()) != nil {
		t.Fatal("Of does not recognise the budget's retryers")
	}
	a := b.NewAdaptive()
	if a.MaxAttempts() != 7 || backoff.Of(a) != b {
		t.Fatalf("adaptive retryer ignores the budget: %d attempts", a.MaxAttempts())
	}
}

// fakeStream is an in-memory Stream.
type fakeStream struct {
	ch  chan string
	err error
}

func (f *fakeStream) Events() <-chan string { return f.ch }
func (f *fakeStream) Err() error            { return f.err }
func (f *fakeStream) Close() error          { return nil }

// script returns an open function whose attempt i (0-based) streams
// attempts[i].events then fails with attempts[i].err.
type attempt struct {
	events []string
	err    error
}

func script(attempts ...attempt) (func(context.Context) (backoff.Stream[string], error), *int) {
	n := 0
	return func(context.Context) (backoff.Stream[string], error) {
		a := attempts[min(n, len(attempts)-1)]
		n++
		ch := make(chan string, len(a.events))
		for _, e := range a.events {
			ch <- e
		}
		close(ch)
		return &fakeStream{ch: ch, err: a.err}, nil
	}, &n
}

// immediateTimer fires at once and records the delays asked for.
type immediateTimer struct {
	delays []time.Duration
}

func (t *immediateTimer) after(d time.Duration) <-chan time.Time {
	t.delays = append(t.delays, d)
	c := make(chan time.Time, 1)
	c <- time.Time{}
	return c
}

func withTimer(t *immediateTimer) func(*backoff.StreamOptions) {
	return func(o *backoff.StreamOptions) { o.After = t.after }
}

func TestRetryStreamAttemptsNeverExceedTheBudget(t *testing.T) {
	for _, max := range []int{1, 2, 5} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			b := backoff.NewBudget(func(b *backoff.Budget) { b.MaxAttempts = max })
			open, n := script(attempt{err: exception("internalServerException", `{}`, 0)})
			err := backoff.RetryStream(context.Background(), b, open, func(string) error { return nil }, withTimer(&immediateTimer{}))
			var ex *backoff.ExhaustedError
			if *n != max || !errors.As(err, &ex) || ex.Reason != "attempts" || ex.Attempts != max {
				t.Fatalf("%d attempts, err %v; want %d and an attempts budget error", *n, err, max)
			}
		})
	}
}

// manualClock advances only when told.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *manualClock) advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func TestRetryStreamElapsedNeverExceedsTheBudget(t *testing.T) {
	clock := &manualClock{now: time.Unix(1e9, 0)}
	start := clock.Now()
	b := backoff.NewBudget(func(b *backoff.Budget) {
		b.MaxAttempts = 100
		b.MaxElapsed = 35 * time.Second
		b.Transient = backoff.Shape{Initial: time.Second, Max: time.Second, Multiplier: 1}
		b.Now = clock.Now
	})
	var starts []time.Duration
	timer := &immediateTimer{}
	open := func(context.Context) (backoff.Stream[string], error) {
		starts = append(starts, clock.Now().Sub(start))
		clock.advance(10 * time.Second) // each attempt takes 10s
		ch := make(chan string)
		close(ch)
		return &fakeStream{ch: ch, err: exception("serviceUnavailableException", `{}`, 0)}, nil
	}
	err := backoff.RetryStream(context.Background(), b, open, func(string) error { return nil },
		withTimer(timer), func(o *backoff.StreamOptions) {
			o.Notify = func(_ error, d time.Duration) { clock.advance(d) } // the wait takes its delay
		})
	var ex *backoff.ExhaustedError
	if !errors.As(err, &ex) || ex.Reason != "elapsed time" {
		t.Fatalf("want an elapsed-time budget error, got %v", err)
	}
	for i, s := range starts {
		if s > b.MaxElapsed {
			t.Fatalf("attempt %d started %v after the first, past the %v budget", i+1, s, b.MaxElapsed)
		}
	}
	// Attempts take 10s and waits 1s: they start at 0s, 11s, 22s and 33s;
	// after the fourth, 43s + 1s is past the budget, so no fifth begins.
	if fmt.Sprint(starts) != "[0s 11s 22s 33s]" {
		t.Fatalf("attempt starts %v, want [0s 11s 22s 33s]", starts)
	}
}

func TestRetryStreamSharedBucket(t *testing.T) {
	bucket := backoff.NewTokenBucket(20)
	a := backoff.NewBudget(func(b *backoff.Budget) { b.MaxAttempts = 100; b.Bucket = bucket })
	other := backoff.NewBudget(func(b *backoff.Budget) { b.MaxAttempts = 100; b.Bucket = bucket })

	// Client A drains the shared bucket with throttles (5 tokens a retry).
	openA, nA := script(attempt{err: exception("throttlingException", `{}`, 0)})
	err := backoff.RetryStream(context.Background(), a, openA, func(string) error { return nil }, withTimer(&immediateTimer{}))
	var ex *backoff.ExhaustedError
	if !errors.As(err, &ex) || ex.Reason != "retry quota" || *nA != 5 || bucket.Available() != 0 {
		t.Fatalf("A: %d attempts, %d tokens left, err %v; want 5 attempts (4 retries x 5 tokens) and an empty bucket", *nA, bucket.Available(), err)
	}

	// B shares the bucket: its failure is not retried.
	openB, nB := script(attempt{err: exception("internalServerException", `{}`, 0)}, attempt{events: []string{"ok"}})
	err = backoff.RetryStream(context.Background(), other, openB, func(string) error { return nil }, withTimer(&immediateTimer{}))
	if !errors.As(err, &ex) || ex.Reason != "retry quota" || *nB != 1 {
		t.Fatalf("B: %d attempts, err %v; want 1 attempt stopped by the shared quota", *nB, err)
	}

	// Tokens come back after successes.
	for i := 0; i < 3; i++ {
		openC, _ := script(attempt{events: []string{"ok"}})
		if err := backoff.RetryStream(context.Background(), other, openC, func(string) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if bucket.Available() != 3*backoff.DefaultSuccessRefund {
		t.Fatalf("%d tokens after 3 successes, want %d", bucket.Available(), 3*backoff.DefaultSuccessRefund)
	}
	// A retry that succeeds gets its cost back.
	_ = bucket.AddTokens(20)
	openD, _ := script(attempt{err: exception("throttlingException", `{}`, 0)}, attempt{events: []string{"ok"}})
	if err := backoff.RetryStream(context.Background(), a, openD, func(string) error { return nil }, withTimer(&immediateTimer{})); err != nil {
		t.Fatal(err)
	}
	if bucket.Available() != 20 {
		t.Fatalf("%d tokens after a successful retry, want the full 20 back", bucket.Available())
	}
}

func TestRetryStreamCancellationEndsAWaitAtOnce(t *testing.T) {
	b := backoff.NewBudget(func(b *backoff.Budget) {
		b.Transient = backoff.Shape{Initial: time.Hour, Max: time.Hour, Multiplier: 1}
	})
	ctx, cancel := context.WithCancel(context.Background())
	open, n := script(attempt{err: exception("internalServerException", `{}`, 0)})
	done := make(chan error, 1)
	go func() {
		done <- backoff.RetryStream(ctx, b, open, func(string) error { return nil }, func(o *backoff.StreamOptions) {
			o.Notify = func(error, time.Duration) { cancel() } // cancel as the hour-long wait begins
		})
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || *n != 1 {
			t.Fatalf("err %v after %d attempts; want context.Canceled after 1", err, *n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancellation did not end the wait")
	}
}

func TestRetryStreamNeverDeliversTwiceWithoutReset(t *testing.T) {
	failAfter2 := attempt{events: []string{"a", "b"}, err: exception("serviceUnavailableException", `{}`, 2)}
	clean := attempt{events: []string{"a", "b", "c"}}

	t.Run("without Reset a failure after content is final", func(t *testing.T) {
		open, n := script(failAfter2, clean)
		var got []string
		err := backoff.RetryStream(context.Background(), backoff.NewBudget(), open, func(e string) error { got = append(got, e); return nil }, withTimer(&immediateTimer{}))
		if *n != 1 || len(got) != 2 {
			t.Fatalf("%d attempts delivering %q; want 1 attempt, no duplicates", *n, got)
		}
		var se *smithyext.StatusError
		if !errors.As(err, &se) || se.EventsDelivered() != 2 {
			t.Fatalf("want the typed error, got %v", err)
		}
	})

	t.Run("with Reset the consumer sees each event once per reset", func(t *testing.T) {
		open, n := script(failAfter2, failAfter2, clean)
		var log []string // what the consumer shows; Reset clears it
		var resets int
		seen := map[string]bool{}
		err := backoff.RetryStream(context.Background(), backoff.NewBudget(func(b *backoff.Budget) { b.MaxAttempts = 5 }), open,
			func(e string) error {
				if seen[e] {
					t.Fatalf("event %q delivered twice without a reset in between", e)
				}
				seen[e] = true
				log = append(log, e)
				return nil
			},
			withTimer(&immediateTimer{}),
			func(o *backoff.StreamOptions) {
				o.Reset = func(delivered int, err error) error {
					if delivered != 2 {
						t.Errorf("Reset told %d delivered, want 2", delivered)
					}
					resets++
					log = nil
					seen = map[string]bool{}
					return nil
				}
			})
		if err != nil || *n != 3 || resets != 2 || fmt.Sprint(log) != "[a b c]" {
			t.Fatalf("err %v, %d attempts, %d resets, consumer shows %q", err, *n, resets, log)
		}
	})

	t.Run("a failing Reset stops", func(t *testing.T) {
		open, n := script(failAfter2, clean)
		stop := errors.New("user went away")
		err := backoff.RetryStream(context.Background(), backoff.NewBudget(), open, func(string) error { return nil },
			withTimer(&immediateTimer{}), func(o *backoff.StreamOptions) { o.Reset = func(int, error) error { return stop } })
		if !errors.Is(err, stop) || *n != 1 {
			t.Fatalf("err %v after %d attempts", err, *n)
		}
	})
}

func TestRetryStreamStopsOnPermanentErrors(t *testing.T) {
	openErr := errors.New("open failed after the SDK's own retries")
	tests := []struct {
		name string
		open func(context.Context) (backoff.Stream[string], error)
		want error
	}{
		{"non-retryable stream error", func() func(context.Context) (backoff.Stream[string], error) {
			o, _ := script(attempt{err: exception("validationException", `{}`, 0)})
			return o
		}(), nil},
		{"open error is returned as is", func(context.Context) (backoff.Stream[string], error) { return nil, openErr }, openErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			open := func(ctx context.Context) (backoff.Stream[string], error) { calls++; return tt.open(ctx) }
			err := backoff.RetryStream(context.Background(), backoff.NewBudget(), open, func(string) error { return nil }, withTimer(&immediateTimer{}))
			if err == nil || calls != 1 || (tt.want != nil && err != tt.want) {
				t.Fatalf("err %v after %d calls", err, calls)
			}
		})
	}
}

// ownRetryToken and ownAttemptToken are user wrappers that decide retries
// or waits themselves.
type ownRetryToken struct{ aws.RetryerV2 }

func (ownRetryToken) GetRetryToken(context.Context, error) (func(error) error, error) {
	return func(error) error { return nil }, nil
}

type ownAttemptToken struct{ aws.RetryerV2 }

func (ownAttemptToken) GetAttemptToken(context.Context) (func(error) error, error) {
	return func(error) error { return nil }, nil
}

// TestOfSeesThroughOnlyWrappersThatKeepTheBudgetsWaits: Of finds the budget
// through wrappers that leave GetAttemptToken, GetRetryToken and RetryDelay
// to it, and nowhere else; asking takes no token from any bucket.
func TestOfSeesThroughOnlyWrappersThatKeepTheBudgetsWaits(t *testing.T) {
	bucket := backoff.NewTokenBucket(100)
	b := backoff.NewBudget(func(b *backoff.Budget) { b.Bucket = bucket })
	foreignBucket := ratelimit.NewTokenRateLimit(100)
	foreign := retry.NewStandard(func(o *retry.StandardOptions) { o.RateLimiter = foreignBucket })
	for _, tc := range []struct {
		name string
		r    aws.Retryer
		want *backoff.Budget
	}{
		{"NewStandard", b.NewStandard(), b},
		{"NewAdaptive", b.NewAdaptive(), b},
		{"AddWithMaxAttempts", retry.AddWithMaxAttempts(b.NewStandard(), 9), b},
		{"AddWithErrorCodes", retry.AddWithErrorCodes(b.NewAdaptive(), "Busy"), b},
		{"both", retry.AddWithMaxAttempts(retry.AddWithErrorCodes(b.NewStandard(), "Busy"), 9), b},
		{"AddWithMaxBackoffDelay", retry.AddWithMaxBackoffDelay(b.NewStandard(), 20*time.Second), nil},
		{"AddWithMaxAttempts(AddWithMaxBackoffDelay)", retry.AddWithMaxAttempts(retry.AddWithMaxBackoffDelay(b.NewStandard(), time.Second), 9), nil},
		{"own GetRetryToken", ownRetryToken{b.NewStandard()}, nil},
		{"own GetAttemptToken", ownAttemptToken{b.NewStandard()}, nil},
		{"the SDK's standard", foreign, nil},
		{"nil", nil, nil},
	} {
		if got := backoff.Of(tc.r); got != tc.want {
			t.Errorf("Of(%s) = %p, want %p", tc.name, got, tc.want)
		}
	}
	if bucket.Available() != 100 || foreignBucket.Remaining() != 100 {
		t.Errorf("Of took tokens: budget bucket %d, foreign %d of 100 left", bucket.Available(), foreignBucket.Remaining())
	}
}
