package backoff_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/smithy-go/logging"
	"github.com/redis/go-redis/v9"

	"github.com/streamstatus/streamstatus/backoff"
	"github.com/streamstatus/streamstatus/internal/redistest"
)

// waitShared drives refunds until b uses Redis again (a probe answered).
func waitShared(t *testing.T, b *backoff.RedisBucket) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !b.Shared(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the bucket did not use Redis again within 5s")
		}
		b.AddTokens(1)
	}
}

// pause stops srv and returns once it has stopped answering (SIGSTOP is
// delivered asynchronously).
func pause(t *testing.T, srv *redistest.Server) {
	t.Helper()
	probe := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
	defer probe.Close()
	probe.Ping(context.Background())
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err := probe.Ping(ctx).Err()
		cancel()
		if err != nil {
			return
		}
	}
	t.Fatal("redis-server still answers 5s after SIGSTOP")
}

// TestDefect_ReleaseAfterFallbackLosesSharedTokens: a token taken from Redis
// and released while the bucket has fallen back is refunded to the local
// fallback (which never gave it), so the shared bucket loses it for good,
// although Redis kept its state all along (a pause, not a restart).
func TestDefect_ReleaseAfterFallbackLosesSharedTokens(t *testing.T) {
	srv := redistest.StartT(t)
	b := backoff.NewRedisBucket(newRedis(t, srv), testKey(t), 500, func(o *backoff.RedisOptions) {
		o.OperationTimeout = 30 * time.Millisecond
		o.ProbeInterval = 20 * time.Millisecond
		o.Logger = logging.Nop{}
	})
	release, err := b.GetToken(context.Background(), 14) // from Redis: 486 left
	if err != nil || !b.Shared() {
		t.Fatalf("take: %v, shared %v", err, b.Shared())
	}
	pause(t, srv)
	b.AddTokens(1) // times out: the bucket falls back (Redis gets it late)
	if b.Shared() {
		t.Fatal("the bucket did not fall back while Redis was paused")
	}
	if err := release(); err != nil { // the retry succeeded: give the 14 back
		t.Fatal(err)
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	backoff.WaitLate(b)
	waitShared(t, b)
	if n := available(t, b); n != 500 {
		t.Fatalf("Redis holds %d tokens after every take was released, want 500: the release of a Redis take went to the fallback", n)
	}
}

// TestDefect_FallbackStaysDrainedAcrossOutages: the fallback bucket drained
// in one outage is never refilled while Redis serves (every refund goes to
// Redis), so the next outage, however much later, starts with an empty
// local quota: no retries at all, where a process "without Redis" (the
// documented behaviour of the default Fallback) would have refilled.
func TestDefect_FallbackStaysDrainedAcrossOutages(t *testing.T) {
	srv := redistest.StartT(t)
	b := backoff.NewRedisBucket(newRedis(t, srv), testKey(t), 20, func(o *backoff.RedisOptions) {
		o.ProbeInterval = 20 * time.Millisecond
		o.Logger = logging.Nop{}
	})
	ctx := context.Background()
	if err := srv.Kill(); err != nil { // outage 1: the retries drain the local bucket
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if _, err := b.GetToken(ctx, 5); err != nil {
			t.Fatalf("take %d in outage 1: %v", i, err)
		}
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	backoff.WaitLate(b)
	waitShared(t, b)
	for i := 0; i < 100; i++ { // a long healthy spell: 100 first-time successes
		if err := b.AddTokens(1); err != nil {
			t.Fatal(err)
		}
	}
	if !b.Shared() {
		t.Fatal("fell back during the healthy spell")
	}
	if err := srv.Kill(); err != nil { // outage 2
		t.Fatal(err)
	}
	defer backoff.WaitLate(b)
	if _, err := b.GetToken(ctx, 5); err != nil {
		t.Fatalf("first retry of outage 2, after 100 successes: %v (the fallback still holds %d of 20 tokens from outage 1)",
			err, b.Fallback().(*backoff.TokenBucket).Available())
	}
}

// TestDefect_LateGrantLostWithContextTimeouts: with a client that honours
// context deadlines (ContextTimeoutEnabled, which RedisOptions documents as
// supported), a take sent to a paused Redis is abandoned at the deadline and
// served by the fallback, but Redis runs the script when it resumes: the
// late grant is never given back and the fleet's bucket loses the tokens.
func TestDefect_LateGrantLostWithContextTimeouts(t *testing.T) {
	srv := redistest.StartT(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	key := testKey(t) + ":" + time.Now().Format(time.RFC3339Nano)
	b := backoff.NewRedisBucket(rdb, key, 500, func(o *backoff.RedisOptions) {
		o.OperationTimeout = 30 * time.Millisecond
		o.ProbeInterval = time.Millisecond
		o.Logger = logging.Nop{}
	})
	warm, err := b.GetToken(context.Background(), 14) // connect and load both scripts
	if err != nil || warm() != nil {
		t.Fatalf("warm-up: %v", err)
	}
	for round := 0; round < 3; round++ { // a few pauses, each with one take
		pause(t, srv)
		release, err := b.GetToken(context.Background(), 14) // served by the fallback
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Resume(); err != nil {
			t.Fatal(err)
		}
		backoff.WaitLate(b)
		if err := release(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
		waitShared(t, b)
	}
	time.Sleep(50 * time.Millisecond) // the resumed server has run the queued script
	other := newRedis(t, srv)
	left, err := other.Get(context.Background(), key).Int()
	if err == nil && left != 500 {
		t.Fatalf("Redis holds %d tokens after 3 pauses whose takes the fallback served, want 500 (no key): the late grant was lost", left)
	}
}

// TestDefect_CancelledContextTakesSharedTokens: TokenBucket (and the SDK's
// limiter) take nothing for a context that is already done; RedisBucket
// takes the tokens from the fleet's bucket anyway, so the two Buckets differ
// in semantics and a cancelled call drains the shared quota.
func TestDefect_CancelledContextTakesSharedTokens(t *testing.T) {
	srv := redistest.StartT(t)
	b := backoff.NewRedisBucket(newRedis(t, srv), testKey(t), 500)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := b.GetToken(ctx, 14)
	if n := available(t, b); err == nil || n != 500 {
		t.Fatalf("GetToken on a cancelled context: err %v, %d tokens left, want an error and 500 (TokenBucket: %v)",
			err, n, tokenBucketErr(ctx))
	}
}

func tokenBucketErr(ctx context.Context) error {
	_, err := backoff.NewTokenBucket(500).GetToken(ctx, 14)
	return err
}
