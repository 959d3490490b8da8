package backoff_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go/logging"
	"github.com/redis/go-redis/v9"

	"github.com/streamstatus/streamstatus/backoff"
	"github.com/streamstatus/streamstatus/internal/redistest"
)

// TestDefect_X2NegativeBudgetDurationsSilentlyAccepted: NewBudget promises
// that a budget it cannot use fails every retryer's first call "saying
// which field to fix" (it does so for a Jitter outside [0, 1]), and the
// house rule is no configuration that silently does less than it says. A
// negative MaxElapsed (a sign slip, or a computed deadline already past)
// silently means "no elapsed-time limit at all", and a negative
// Transient.Initial silently means no backoff: the retryer's first call
// goes through with no error for either.
func TestDefect_X2NegativeBudgetDurationsSilentlyAccepted(t *testing.T) {
	for field, fn := range map[string]func(*backoff.Budget){
		"MaxElapsed": func(b *backoff.Budget) { b.MaxElapsed = -30 * time.Second },
		"Transient.Initial": func(b *backoff.Budget) {
			b.Transient = backoff.Shape{Initial: -time.Second, Max: time.Second, Multiplier: 2}
		},
	} {
		b := backoff.NewBudget(fn)
		_, err := b.NewStandard().GetAttemptToken(context.Background())
		if err == nil || !strings.Contains(err.Error(), field) {
			d, _ := b.BackoffDelay(1, context.DeadlineExceeded)
			t.Errorf("budget with a negative %s: first GetAttemptToken err = %v (retry delay %v); want an error naming %s", field, err, d, field)
		}
	}
}

// TestDefect_X2AvailableIgnoresOperationTimeoutOnPausedRedis: Available's doc
// says the count is "read from Redis within the operation timeout", and
// RedisOptions.OperationTimeout that the bound "holds whatever the client's
// own timeouts and ContextTimeoutEnabled say". Available passes the
// deadline only as a context, which a go-redis client with
// ContextTimeoutEnabled false (its default) does not apply to socket reads:
// on a paused Redis it blocks for the client's ReadTimeout (here 1s, to
// keep the test short; with go-redis's defaults it took 5s), whereas
// GetToken returns on time.
func TestDefect_X2AvailableIgnoresOperationTimeoutOnPausedRedis(t *testing.T) {
	srv := redistest.StartT(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), ReadTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	b := backoff.NewRedisBucket(rdb, testKey(t), 500, func(o *backoff.RedisOptions) { o.Logger = logging.Nop{} })
	if _, err := b.Available(context.Background()); err != nil { // a pooled connection
		t.Fatal(err)
	}
	pause(t, srv)
	defer srv.Resume()
	start := time.Now()
	_, err := b.Available(context.Background())
	if took := time.Since(start); took > 5*backoff.DefaultRedisTimeout {
		t.Fatalf("Available on a paused Redis returned after %v (err %v); want within about the %v operation timeout", took.Round(time.Millisecond), err, backoff.DefaultRedisTimeout)
	}
}

// TestDefect_X2RetryStreamRefundsFallbackTakeToRedis: RedisBucket promises
// "tokens go back where they came from ... the release of a take that the
// fallback served refunds the fallback" and "the shared bucket never gains
// tokens nobody gave back". RetryStream drops the release GetToken returns
// and gives a successful retry's tokens back with Bucket.AddTokens, which a
// RedisBucket adds to Redis. A retry whose token the fallback served
// (Redis paused at that moment) thus adds its cost to the fleet's shared
// bucket: another process's 100 tokens out, Redis should hold 400 once
// this call is done; it holds 414.
func TestDefect_X2RetryStreamRefundsFallbackTakeToRedis(t *testing.T) {
	srv := redistest.StartT(t)
	quiet := func(o *backoff.RedisOptions) { o.Logger = logging.Nop{} }
	other := backoff.NewRedisBucket(newRedis(t, srv), testKey(t), 500, quiet) // another process
	if _, err := other.GetToken(context.Background(), 100); err != nil {
		t.Fatal(err)
	}
	ours := backoff.NewRedisBucket(newRedis(t, srv), testKey(t), 500, quiet, func(o *backoff.RedisOptions) {
		o.OperationTimeout = 30 * time.Millisecond
		o.ProbeInterval = 20 * time.Millisecond
	})
	defer backoff.WaitLate(ours)
	if n := available(t, ours); n != 400 {
		t.Fatalf("%d tokens in Redis, want 400", n)
	}
	b := backoff.NewBudget(func(b *backoff.Budget) {
		b.Bucket = ours
		b.Transient, b.Throttle = backoff.Immediate, backoff.Immediate
	})
	open, _ := script(attempt{err: exception("internalServerException", `{}`, 0)}, attempt{events: []string{"a"}})
	pause(t, srv)
	resumed := false
	err := backoff.RetryStream(context.Background(), b, open, func(string) error { return nil }, func(o *backoff.StreamOptions) {
		o.After = func(time.Duration) <-chan time.Time {
			if !ours.Shared() { // the retry's token came from the fallback
				resumed = true
				if err := srv.Resume(); err != nil {
					t.Error(err)
				}
				time.Sleep(100 * time.Millisecond) // Redis answers again; the late take is settled
			}
			c := make(chan time.Time, 1)
			c <- time.Time{}
			return c
		}
	})
	if !resumed {
		srv.Resume()
		t.Fatal("the retry's token did not come from the fallback; the test proved nothing")
	}
	if err != nil {
		t.Fatal(err)
	}
	backoff.WaitLate(ours)
	if rel, err := ours.GetToken(context.Background(), 0); err == nil { // settle anything still owed
		rel()
	}
	backoff.WaitLate(ours)
	if n := available(t, other); n != 400 || !ours.Shared() {
		t.Fatalf("Redis holds %d tokens (shared %v) after a retry whose token the fallback served; want 400: the other process's 100 are still out", n, ours.Shared())
	}
}

// TestDefect_X2ShapeWithoutMaxContradictsItsDoc: Shape is exported with
// Delay and MaxDelay. Its doc: "Max caps every delay before jitter; a Max
// below Initial is Initial", and "MaxDelay returns the longest delay
// Delay(n) can return". For Shape{Initial: 1s, Multiplier: 2} (no Max, so
// Max is Initial, 1s): Delay(2) is 0 instead of 1s, and MaxDelay(1) is 1ns
// while Delay(1) is 1s. The defaulting that makes this right lives in
// NewBudget (Shape.or) only; the exported methods skip it.
func TestDefect_X2ShapeWithoutMaxContradictsItsDoc(t *testing.T) {
	s := backoff.Shape{Initial: time.Second, Multiplier: 2}
	if d1, d2, m1 := s.Delay(1), s.Delay(2), s.MaxDelay(1); d2 != time.Second || d1 > m1 {
		t.Fatalf("Shape{Initial: 1s, Multiplier: 2}: Delay(1) = %v, Delay(2) = %v, MaxDelay(1) = %v; want 1s, 1s (Max below Initial is Initial) and MaxDelay(1) >= Delay(1)", d1, d2, m1)
	}
}
