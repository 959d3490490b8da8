package backoff_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/smithy-go/logging"
	smithymiddleware "github.com/aws/smithy-go/middleware"
	"github.com/redis/go-redis/v9"

	"github.com/streamstatus/streamstatus/backoff"
	"github.com/streamstatus/streamstatus/internal/redistest"
)

// recLogger records what a RedisBucket logs.
type recLogger struct {
	mu    sync.Mutex
	lines []string
}

func (l *recLogger) Logf(c logging.Classification, format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(c)+" "+fmt.Sprintf(format, v...))
}

func (l *recLogger) count(c logging.Classification) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.HasPrefix(s, string(c)+" ") {
			n++
		}
	}
	return n
}

func (l *recLogger) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// newRedis returns a client of srv that the test closes. Its options are
// go-redis's defaults (ContextTimeoutEnabled false, ReadTimeout 3s): the
// bucket's deadline must hold without the client's help.
func newRedis(t testing.TB, srv *redistest.Server) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func testKey(t testing.TB) string { return "streamstatus:test:" + t.Name() }

func available(t testing.TB, b *backoff.RedisBucket) uint {
	t.Helper()
	n, err := b.Available(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRedisBucketQuotaSemantics pins the SDK's retry-quota semantics on one
// key shared by two clients (two processes, as far as Redis can tell).
func TestRedisBucketQuotaSemantics(t *testing.T) {
	srv := redistest.StartT(t)
	ctx := context.Background()
	a := backoff.NewRedisBucket(newRedis(t, srv), testKey(t), 20)
	b := backoff.NewRedisBucket(newRedis(t, srv), testKey(t), 20)

	if n := available(t, a); n != 20 {
		t.Fatalf("a new key holds %d tokens, want the capacity 20", n)
	}
	releaseA, err := a.GetToken(ctx, 14)
	if err != nil {
		t.Fatal(err)
	}
	if n := available(t, b); n != 6 {
		t.Fatalf("b sees %d tokens after a took 14 of 20, want 6", n)
	}
	var qe *backoff.QuotaExceededError
	if _, err := b.GetToken(ctx, 14); !errors.As(err, &qe) || qe.Cost != 14 || qe.Available != 6 {
		t.Fatalf("b taking 14 of 6: %v, want a QuotaExceededError{14, 6}", err)
	}
	if _, err := b.GetToken(ctx, 5); err != nil || available(t, a) != 1 {
		t.Fatalf("b taking 5 of 6: %v, %d left", err, available(t, a))
	}
	if err := releaseA(); err != nil || available(t, b) != 15 {
		t.Fatalf("a's release: %v, %d left, want 15", err, available(t, b))
	}
	// A refund never pushes the count above the capacity, and a full
	// bucket keeps no key at all.
	if err := a.AddTokens(100); err != nil || available(t, b) != 20 {
		t.Fatalf("refund of 100: %v, %d tokens, want the capacity 20", err, available(t, b))
	}
	rdb := newRedis(t, srv)
	if n, _ := rdb.Exists(ctx, testKey(t)).Result(); n != 0 {
		t.Fatalf("a full bucket left its key in Redis")
	}
	if !a.Shared() || !b.Shared() {
		t.Fatalf("a healthy Redis fell back: a %v b %v", a.Shared(), b.Shared())
	}
}

// TestRedisBucketKeyLifetime: a key in use carries the TTL, an abandoned key
// expires (the bucket is full again), and a Redis restart (state lost)
// refills to capacity.
func TestRedisBucketKeyLifetime(t *testing.T) {
	srv := redistest.StartT(t)
	ctx := context.Background()
	rdb := newRedis(t, srv)
	b := backoff.NewRedisBucket(rdb, testKey(t), 50, func(o *backoff.RedisOptions) { o.KeyTTL = 300 * time.Millisecond })

	if _, err := b.GetToken(ctx, 10); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, testKey(t)).Val(); ttl <= 0 || ttl > 300*time.Millisecond {
		t.Fatalf("key TTL %v, want (0, 300ms]", ttl)
	}
	// A refused take refreshes the TTL too: a fleet stuck at an empty
	// bucket keeps its key (the SDK's bucket does not refill by time).
	time.Sleep(150 * time.Millisecond)
	if _, err := b.GetToken(ctx, 1000); err == nil {
		t.Fatal("a take above the capacity was granted")
	}
	if ttl := rdb.PTTL(ctx, testKey(t)).Val(); ttl <= 200*time.Millisecond {
		t.Fatalf("a refused take left the TTL at %v; want it refreshed to about 300ms", ttl)
	}
	deadline := time.Now().Add(2 * time.Second)
	for rdb.Exists(ctx, testKey(t)).Val() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the abandoned key did not expire (TTL %v)", rdb.PTTL(ctx, testKey(t)).Val())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := available(t, b); n != 50 {
		t.Fatalf("%d tokens after the key expired, want the capacity 50", n)
	}

	if _, err := b.GetToken(ctx, 30); err != nil || available(t, b) != 20 {
		t.Fatalf("take 30: %v, %d left", err, available(t, b))
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	// The restarted server has lost the key and the script cache: the
	// first take reloads the script (EVALSHA, then EVAL) and finds a full
	// bucket.
	if _, err := b.GetToken(ctx, 5); err != nil || !b.Shared() {
		t.Fatalf("take after restart: %v, shared %v", err, b.Shared())
	}
	if n := available(t, b); n != 45 {
		t.Fatalf("%d tokens after a restart and a take of 5, want 45 (a restart refills to capacity)", n)
	}
}

// TestRedisBucketAtomicity: 64 goroutines on 4 clients take and refund on
// one key 1,000 times each; the count is never below 0 nor above the
// capacity, and every token comes back.
func TestRedisBucketAtomicity(t *testing.T) {
	if testing.Short() {
		t.Skip("64,000 take/refund pairs")
	}
	srv := redistest.StartT(t)
	const (
		capacity   = 100
		cost       = 7
		clients    = 4
		goroutines = 64
		rounds     = 1000
	)
	buckets := make([]*backoff.RedisBucket, clients)
	for i := range buckets {
		// A generous timeout: this test is about the scripts, not the
		// fallback, and a loaded machine must not push it there.
		buckets[i] = backoff.NewRedisBucket(newRedis(t, srv), testKey(t), capacity,
			func(o *backoff.RedisOptions) { o.OperationTimeout = 10 * time.Second })
	}
	mon := newRedis(t, srv)
	ctx := context.Background()
	var granted, refused atomic.Int64
	var bad atomic.Value
	stop := make(chan struct{})
	monDone := make(chan int)
	go func() { // watch the stored count while the storm runs
		reads := 0
		for {
			select {
			case <-stop:
				monDone <- reads
				return
			default:
			}
			v, err := mon.Get(ctx, testKey(t)).Int64()
			if err == nil && (v < 0 || v > capacity) {
				bad.CompareAndSwap(nil, fmt.Sprintf("stored count %d", v))
			}
			reads++
		}
	}()
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(b *backoff.RedisBucket) {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				release, err := b.GetToken(ctx, cost)
				var qe *backoff.QuotaExceededError
				switch {
				case errors.As(err, &qe):
					refused.Add(1)
					if qe.Available >= cost || qe.Available > capacity {
						bad.CompareAndSwap(nil, fmt.Sprintf("refused with %d tokens available", qe.Available))
					}
				case err != nil:
					bad.CompareAndSwap(nil, err.Error())
					return
				default:
					granted.Add(1)
					if err := release(); err != nil {
						bad.CompareAndSwap(nil, err.Error())
						return
					}
				}
			}
		}(buckets[g%clients])
	}
	wg.Wait()
	close(stop)
	reads := <-monDone
	t.Logf("%d takes granted, %d refused (bucket empty at that moment), %d monitor reads", granted.Load(), refused.Load(), reads)
	if v := bad.Load(); v != nil {
		t.Fatal(v)
	}
	for _, b := range buckets {
		if !b.Shared() {
			t.Fatal("a bucket fell back to its local bucket during the storm")
		}
	}
	if n := available(t, buckets[0]); n != capacity {
		t.Fatalf("%d tokens after every take was released, want %d", n, capacity)
	}
	if refused.Load() == 0 {
		t.Fatal("no take was ever refused: the storm did not drain the bucket, so it proved nothing")
	}
}

// storm runs take/release and refund operations on b from 8 goroutines
// until stop closes, and returns the slowest operation and any error other
// than an empty bucket.
func storm(b *backoff.RedisBucket, stop <-chan struct{}, ops *atomic.Int64) (slowest time.Duration, err error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	ctx := smithymiddleware.SetLogger(context.Background(), logging.Nop{})
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var opErr error
				start := time.Now()
				release, e := b.GetToken(ctx, 5)
				d := time.Since(start)
				var qe *backoff.QuotaExceededError
				switch {
				case errors.As(e, &qe):
				case e != nil:
					opErr = e
				default:
					start = time.Now()
					opErr = release()
					d = max(d, time.Since(start))
				}
				start = time.Now()
				if e := b.AddTokens(1); e != nil && opErr == nil {
					opErr = e
				}
				d = max(d, time.Since(start))
				ops.Add(1)
				mu.Lock()
				slowest = max(slowest, d)
				if err == nil {
					err = opErr
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return slowest, err
}

// slack is what a loaded 2-core machine (with -race) may add to an
// operation's deadline before the operation returns.
const slack = 150 * time.Millisecond

// TestRedisBucketKilledAndRestarted: Redis killed mid-storm → operations go
// on, each within its deadline, through the fallback, with one warning;
// Redis restarted → the bucket is shared again.
func TestRedisBucketKilledAndRestarted(t *testing.T) {
	srv := redistest.StartT(t)
	log := &recLogger{}
	b := backoff.NewRedisBucket(newRedis(t, srv), testKey(t), 500, func(o *backoff.RedisOptions) {
		o.ProbeInterval = 50 * time.Millisecond
		o.Logger = log
	})
	defer backoff.WaitLate(b)

	var ops atomic.Int64
	stop := make(chan struct{})
	type result struct {
		slowest time.Duration
		err     error
	}
	done := make(chan result)
	go func() { s, err := storm(b, stop, &ops); done <- result{s, err} }()
	waitOps(t, &ops, 100)
	if !b.Shared() {
		t.Fatalf("fell back before the kill: %s", log)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := ops.Load()
	waitOps(t, &ops, killedAt+300) // several probe intervals' worth
	time.Sleep(200 * time.Millisecond)
	close(stop)
	r := <-done
	t.Logf("%d operation rounds, %d after the kill; slowest %v (deadline %v); log:\n%s",
		ops.Load(), ops.Load()-killedAt, r.slowest, backoff.DefaultRedisTimeout, log)
	if r.err != nil {
		t.Fatalf("an operation failed while Redis was down: %v", r.err)
	}
	if r.slowest > backoff.DefaultRedisTimeout+slack {
		t.Fatalf("slowest operation %v, past the %v deadline (+%v slack)", r.slowest, backoff.DefaultRedisTimeout, slack)
	}
	if b.Shared() {
		t.Fatal("the bucket still says shared with Redis dead")
	}
	if n := log.count(logging.Warn); n != 1 {
		t.Fatalf("%d warnings during the outage, want 1:\n%s", n, log)
	}
	// While Redis is down a take is served by the fallback.
	if _, err := b.GetToken(context.Background(), 14); err != nil {
		t.Fatal(err)
	}
	if fb := b.Fallback().(*backoff.TokenBucket); fb.Available() != 486 {
		t.Fatalf("fallback holds %d tokens after a take of 14 with Redis down, want 486", fb.Available())
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !b.Shared() {
		if time.Now().After(deadline) {
			t.Fatalf("not shared again 5s after the restart:\n%s", log)
		}
		b.AddTokens(1)
		time.Sleep(10 * time.Millisecond)
	}
	other := backoff.NewRedisBucket(newRedis(t, srv), testKey(t), 500)
	if _, err := b.GetToken(context.Background(), 14); err != nil {
		t.Fatal(err)
	}
	if n := available(t, other); n != 486 {
		t.Fatalf("another client sees %d tokens after a take of 14 following the restart, want 486 (shared again)", n)
	}
	if n := log.count(logging.Debug); n != 1 {
		t.Fatalf("%d recovery lines, want 1:\n%s", n, log)
	}
}

// TestRedisBucketPaused: a Redis stopped with SIGSTOP accepts connections
// and answers nothing; operations still return within the deadline. Takes
// that Redis grants late (after SIGCONT) are given back, so the shared
// bucket loses nothing.
func TestRedisBucketPaused(t *testing.T) {
	srv := redistest.StartT(t)
	log := &recLogger{}
	const timeout = 30 * time.Millisecond
	b := backoff.NewRedisBucket(newRedis(t, srv), testKey(t), 500, func(o *backoff.RedisOptions) {
		o.OperationTimeout = timeout
		o.ProbeInterval = 50 * time.Millisecond
		o.Logger = log
	})
	var ops atomic.Int64
	stop := make(chan struct{})
	var slowest time.Duration
	var stormErr error
	done := make(chan struct{})
	go func() { slowest, stormErr = storm(b, stop, &ops); close(done) }()
	waitOps(t, &ops, 100)
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	pausedAt := ops.Load()
	time.Sleep(500 * time.Millisecond)
	close(stop)
	<-done
	during := ops.Load() - pausedAt
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	backoff.WaitLate(b) // the runs stuck on the paused server get their answers now
	t.Logf("%d rounds during the 500ms pause; slowest operation %v (deadline %v); log:\n%s", during, slowest, timeout, log)
	if stormErr != nil {
		t.Fatal(stormErr)
	}
	if slowest > timeout+slack {
		t.Fatalf("slowest operation %v during the pause, past the %v deadline (+%v slack)", slowest, timeout, slack)
	}
	if during < 10 {
		t.Fatalf("only %d operation rounds in 500ms of pause: calls stalled", during)
	}
	if n := log.count(logging.Warn); n != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", n, log)
	}
	if !strings.Contains(log.String(), "no answer within 30ms") {
		t.Fatalf("the warning does not say Redis timed out:\n%s", log)
	}
	if n := available(t, b); n != 500 {
		t.Fatalf("%d tokens in Redis after the storm, want 500: takes granted after the deadline were not given back", n)
	}
}

func waitOps(t *testing.T, ops *atomic.Int64, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for ops.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d operation rounds in 10s, want %d", ops.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRedisBucketWarnsThroughTheSDKLogger: without RedisOptions.Logger the
// warning goes to the logger of the SDK call in GetToken's context.
func TestRedisBucketWarnsThroughTheSDKLogger(t *testing.T) {
	srv := redistest.StartT(t)
	b := backoff.NewRedisBucket(newRedis(t, srv), testKey(t), 10)
	defer backoff.WaitLate(b)
	srv.Kill()
	log := &recLogger{}
	ctx := smithymiddleware.SetLogger(context.Background(), log)
	if _, err := b.GetToken(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if log.count(logging.Warn) != 1 || !strings.Contains(log.String(), testKey(t)) {
		t.Fatalf("SDK logger got:\n%s", log)
	}
	// The refund has no context; it uses the logger last seen.
	b.AddTokens(1)
	if log.count(logging.Warn) != 1 {
		t.Fatalf("warned again in the same outage:\n%s", log)
	}
}

// TestNewRedisBucketRejectsBadConfiguration: mistakes fail at construction.
func TestNewRedisBucketRejectsBadConfiguration(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	for _, tc := range []struct {
		name string
		make func()
		want string
	}{
		{"nil client", func() { backoff.NewRedisBucket(nil, "k", 1) }, "nil Redis client"},
		{"empty key", func() { backoff.NewRedisBucket(rdb, "", 1) }, "empty key"},
		{"key with a stray '}'", func() { backoff.NewRedisBucket(rdb, "quota}", 1) }, "outside a hash tag"},
		{"negative timeout", func() {
			backoff.NewRedisBucket(rdb, "k", 1, func(o *backoff.RedisOptions) { o.OperationTimeout = -1 })
		}, "negative option"},
		{"sub-millisecond TTL", func() {
			backoff.NewRedisBucket(rdb, "k", 1, func(o *backoff.RedisOptions) { o.KeyTTL = time.Microsecond })
		}, "1ms resolution"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.Contains(s, tc.want) {
					t.Fatalf("panic %v, want one saying %q", r, tc.want)
				}
			}()
			tc.make()
		})
	}
}

// BenchmarkRetryDecision is the latency a retry decision adds (GetToken,
// then its release, as the SDK does for a retry that succeeds), on a
// TokenBucket and on a RedisBucket over loopback, side by side; p50 and p99
// are reported per operation.
func BenchmarkRetryDecision(b *testing.B) {
	srv := redistest.StartT(b)
	ctx := context.Background()
	for _, bc := range []struct {
		name   string
		bucket backoff.Bucket
	}{
		{"TokenBucket", backoff.NewTokenBucket(500)},
		// A long deadline: this measures Redis, not the fallback, and a
		// loaded machine must not switch it over mid-run.
		{"RedisBucket", backoff.NewRedisBucket(newRedis(b, srv), testKey(b), 500,
			func(o *backoff.RedisOptions) { o.OperationTimeout = time.Second })},
	} {
		b.Run(bc.name, func(b *testing.B) {
			take := make([]time.Duration, 0, b.N)
			refund := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				start := time.Now()
				release, err := bc.bucket.GetToken(ctx, backoff.DefaultThrottleRetryCost)
				mid := time.Now()
				if err != nil {
					b.Fatal(err)
				}
				if err := release(); err != nil {
					b.Fatal(err)
				}
				take = append(take, mid.Sub(start))
				refund = append(refund, time.Since(mid))
			}
			b.StopTimer()
			if rb, ok := bc.bucket.(*backoff.RedisBucket); ok && !rb.Shared() {
				b.Fatal("the bucket fell back to its local bucket: the figures are not Redis's")
			}
			b.ReportMetric(quantile(take, 0.50), "take-p50-µs")
			b.ReportMetric(quantile(take, 0.99), "take-p99-µs")
			b.ReportMetric(quantile(refund, 0.50), "refund-p50-µs")
			b.ReportMetric(quantile(refund, 0.99), "refund-p99-µs")
		})
	}
}

func quantile(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[int(q*float64(len(s)-1))]) / float64(time.Microsecond)
}
