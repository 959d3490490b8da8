package integration_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/smithy-go/logging"
	"github.com/redis/go-redis/v9"

	"github.com/streamstatus/streamstatus/backoff"
	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/internal/redistest"
	"github.com/streamstatus/streamstatus/middleware"
)

// The fleet storm runs this test binary again as child processes: each is
// one member of the fleet, with its own bedrockruntime client and its own
// Redis connection. The parent passes the setup in these variables.
const (
	envFleetChild    = "STREAMSTATUS_FLEET_CHILD" // "1" in a child
	envFleetEndpoint = "STREAMSTATUS_FLEET_ENDPOINT"
	envFleetRedis    = "STREAMSTATUS_FLEET_REDIS" // empty: a per-process TokenBucket
	envFleetKey      = "STREAMSTATUS_FLEET_KEY"
	envFleetStreams  = "STREAMSTATUS_FLEET_STREAMS"
)

// The storm's figures: the SDK's defaults for the bucket and the throttle
// cost, 4 processes of 60 concurrent streams each, 3 attempts per call.
const (
	fleetProcesses = 4
	fleetStreams   = 60
	fleetAttempts  = 3
	fleetCapacity  = backoff.DefaultBucketCapacity
	fleetCost      = backoff.DefaultThrottleRetryCost
)

// TestFleetChild is one process of TestFleetThrottleStorm; run alone it
// skips.
func TestFleetChild(t *testing.T) {
	if os.Getenv(envFleetChild) != "1" {
		t.Skip("a child process of TestFleetThrottleStorm")
	}
	streams, _ := strconv.Atoi(os.Getenv(envFleetStreams))
	var bucket backoff.Bucket = backoff.NewTokenBucket(fleetCapacity)
	if addr := os.Getenv(envFleetRedis); addr != "" {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		defer rdb.Close()
		// This test is about sharing, not about the fallback (the fault
		// tests are): four race-instrumented processes on two cores can
		// starve a 50ms deadline, so give Redis time.
		rb := backoff.NewRedisBucket(rdb, os.Getenv(envFleetKey), fleetCapacity,
			func(o *backoff.RedisOptions) { o.OperationTimeout = 5 * time.Second })
		defer func() {
			if n := rb.Outages(); n > 0 {
				t.Errorf("the Redis bucket fell back to its local bucket %d times during the storm", n)
			}
		}()
		bucket = rb
	}
	b := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = fleetAttempts; b.Bucket = bucket })
	// The endpoint is in the parent process and outlives this one: close
	// the keep-alive connections before goleak looks.
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	cfg := aws.Config{
		HTTPClient:   &http.Client{Transport: tr},
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(testAccessKey, testSecretKey, ""),
		BaseEndpoint: aws.String(os.Getenv(envFleetEndpoint)),
		Retryer:      func() aws.Retryer { return b.NewStandard() },
	}
	client := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithBudget(b)))
	var quota, maxAttempts, other atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < streams; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := invokeStream.run(context.Background(), client)
			var qe *backoff.QuotaExceededError
			var me *retry.MaxAttemptsError
			switch {
			case errors.As(res.callErr, &qe):
				quota.Add(1)
			case errors.As(res.callErr, &me):
				maxAttempts.Add(1)
			default:
				other.Add(1)
				t.Errorf("call ended with %v, want a quota or max-attempts error", res.callErr)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("fleet-child: quota=%d max-attempts=%d other=%d\n", quota.Load(), maxAttempts.Load(), other.Load())
}

// runFleet runs the storm once: fleetProcesses children against srv, with
// one Redis bucket on key when redisAddr is set, else a bucket per process.
// It returns the server calls and the children's outcome lines.
func runFleet(t *testing.T, srv *fake.Server, redisAddr, key string) (calls int, outcomes []string) {
	t.Helper()
	cmds := make([]*exec.Cmd, fleetProcesses)
	outs := make([]*bytes.Buffer, fleetProcesses)
	for i := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFleetChild$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			envFleetChild+"=1",
			envFleetEndpoint+"="+srv.URL,
			envFleetRedis+"="+redisAddr,
			envFleetKey+"="+key,
			envFleetStreams+"="+strconv.Itoa(fleetStreams))
		outs[i] = &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v\n%s", i, err, outs[i])
		}
		sc := bufio.NewScanner(outs[i])
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "fleet-child: "); ok {
				outcomes = append(outcomes, line)
			}
		}
	}
	if len(outcomes) != fleetProcesses {
		t.Fatalf("%d of %d children reported", len(outcomes), fleetProcesses)
	}
	return srv.CallCount(), outcomes
}

// TestFleetThrottleStorm is the storm of TestThrottleStorm across OS
// processes: 4 processes, each with its own client, every first frame
// throttled. With one Redis bucket of C tokens and a throttle retry cost of
// K, the fleet's server calls are at most N + ⌊C/K⌋ (N the fleet's
// streams); with a bucket per process, each process retries ⌊C/K⌋ times.
func TestFleetThrottleStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 8 child processes")
	}
	rs := redistest.StartT(t)
	throttled := fake.Response{Steps: []fake.Step{fake.Exception("throttlingException", "Too many requests")}}
	n := fleetProcesses * fleetStreams
	retriesPerBucket := min(fleetStreams*(fleetAttempts-1), fleetCapacity/fleetCost)
	sharedLimit := n + min(n*(fleetAttempts-1), fleetCapacity/fleetCost)

	local := newServer(t)
	local.SetDefault(throttled)
	localCalls, localOut := runFleet(t, local, "", "")

	shared := newServer(t)
	shared.SetDefault(throttled)
	key := "streamstatus:test:fleet:" + strconv.FormatInt(time.Now().UnixNano(), 36)
	sharedCalls, sharedOut := runFleet(t, shared, rs.Addr(), key)

	t.Logf("%d processes x %d streams (N = %d), every first frame throttled, %d attempts, bucket C = %d, throttle retry K = %d",
		fleetProcesses, fleetStreams, n, fleetAttempts, fleetCapacity, fleetCost)
	t.Logf("per-process buckets: %d server calls (%d retries); children %v", localCalls, localCalls-n, localOut)
	t.Logf("one Redis bucket:    %d server calls (%d retries; bound N + ⌊C/K⌋ = %d); children %v", sharedCalls, sharedCalls-n, sharedLimit, sharedOut)

	if sharedCalls > sharedLimit {
		t.Fatalf("shared bucket: %d server calls, more than N + ⌊C/K⌋ = %d", sharedCalls, sharedLimit)
	}
	// The standard retryer sends every first attempt and retries until
	// the bucket is empty: the bound is met exactly.
	if sharedCalls != sharedLimit {
		t.Fatalf("shared bucket: %d server calls, want exactly %d", sharedCalls, sharedLimit)
	}
	if want := n + fleetProcesses*retriesPerBucket; localCalls != want {
		t.Fatalf("per-process buckets: %d server calls, want %d (each process retries on its own bucket)", localCalls, want)
	}
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()
	if left, err := rdb.Get(context.Background(), key).Int(); err != nil || left != fleetCapacity%fleetCost {
		t.Fatalf("Redis holds %d tokens (%v) after the storm, want %d", left, err, fleetCapacity%fleetCost)
	}
}

// timedBucket records the slowest operation of the bucket it wraps.
type timedBucket struct {
	backoff.Bucket
	mu      sync.Mutex
	slowest time.Duration
	ops     int
}

func (b *timedBucket) record(start time.Time) {
	d := time.Since(start)
	b.mu.Lock()
	b.slowest = max(b.slowest, d)
	b.ops++
	b.mu.Unlock()
}

func (b *timedBucket) GetToken(ctx context.Context, cost uint) (func() error, error) {
	defer b.record(time.Now())
	release, err := b.Bucket.GetToken(ctx, cost)
	if err != nil {
		return nil, err
	}
	return func() error { defer b.record(time.Now()); return release() }, nil
}

func (b *timedBucket) AddTokens(n uint) error {
	defer b.record(time.Now())
	return b.Bucket.AddTokens(n)
}

// warnLogger counts warnings.
type warnLogger struct {
	warns atomic.Int32
	mu    sync.Mutex
	lines []string
}

func (l *warnLogger) Logf(c logging.Classification, format string, v ...any) {
	if c == logging.Warn {
		l.warns.Add(1)
	}
	l.mu.Lock()
	l.lines = append(l.lines, string(c)+" "+fmt.Sprintf(format, v...))
	l.mu.Unlock()
}

// TestFleetRedisKilledMidStorm: SDK calls whose first attempt is throttled
// keep succeeding when Redis is killed in the middle of the storm: every
// bucket operation stays within its deadline, the bucket warns once, and
// after a restart the bucket is shared again.
func TestFleetRedisKilledMidStorm(t *testing.T) {
	rs := redistest.StartT(t)
	srv := newServer(t)
	clean, _ := invokeStream.healthy(1, "ok")
	srv.SetScript(func(c fake.Call) fake.Response {
		if strings.HasPrefix(c.Header.Get("Amz-Sdk-Request"), "attempt=1;") {
			return fake.Response{Steps: []fake.Step{fake.Exception("throttlingException", "Too many requests")}}
		}
		return fake.Response{Steps: clean}
	})
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()
	log := &warnLogger{}
	key := "streamstatus:test:killed:" + strconv.FormatInt(time.Now().UnixNano(), 36)
	rb := backoff.NewRedisBucket(rdb, key, fleetCapacity, func(o *backoff.RedisOptions) {
		o.Logger = log
		o.ProbeInterval = 50 * time.Millisecond
	})
	bucket := &timedBucket{Bucket: rb}
	budget := immediateBudget(func(b *backoff.Budget) { b.Bucket = bucket })
	// One client per worker: concurrent healthy streams on one client
	// race in the SDK's shared event-stream codec (DESIGN.md §3).
	client := budgetClient(srv, budget, "standard")

	var calls, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		client := budgetClient(srv, budget, "standard")
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if res := invokeStream.run(context.Background(), client); res.callErr != nil || res.streamErr != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprint(res.callErr, res.streamErr))
				}
				calls.Add(1)
			}
		}()
	}
	waitCalls := func(n int64) {
		deadline := time.Now().Add(20 * time.Second)
		for calls.Load() < n && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	waitCalls(50)
	// A loaded machine may push an operation past 50ms before the kill;
	// the bucket then falls back and comes back on its own. Kill while it
	// is shared, and count the warnings from then on.
	for deadline := time.Now().Add(5 * time.Second); !rb.Shared() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	warnsBefore := log.warns.Load()
	if err := rs.Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := calls.Load()
	waitCalls(killedAt + 200)
	close(stop)
	wg.Wait()
	bucket.mu.Lock()
	slowest, ops := bucket.slowest, bucket.ops
	bucket.mu.Unlock()
	t.Logf("%d calls (%d after the kill), %d failed; %d bucket operations, slowest %v (deadline %v); log %q",
		calls.Load(), calls.Load()-killedAt, failed.Load(), ops, slowest, backoff.DefaultRedisTimeout, log.lines)
	if failed.Load() != 0 {
		t.Fatalf("%d calls failed, first: %v", failed.Load(), firstErr.Load())
	}
	if calls.Load()-killedAt < 200 {
		t.Fatalf("only %d calls in 20s after the kill: calls stalled", calls.Load()-killedAt)
	}
	if slowest > backoff.DefaultRedisTimeout+150*time.Millisecond {
		t.Fatalf("slowest bucket operation %v, past the %v deadline", slowest, backoff.DefaultRedisTimeout)
	}
	if n := log.warns.Load() - warnsBefore; n != 1 || rb.Shared() {
		t.Fatalf("%d warnings after the kill (want 1), shared %v (want false)", n, rb.Shared())
	}

	if err := rs.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !rb.Shared() && time.Now().Before(deadline) {
		invokeStream.run(context.Background(), client)
		time.Sleep(10 * time.Millisecond)
	}
	before, _ := rb.Available(context.Background())
	if res := invokeStream.run(context.Background(), client); res.callErr != nil || !rb.Shared() {
		t.Fatalf("after the restart: %v, shared %v", res.callErr, rb.Shared())
	}
	// One throttle retry (5) that succeeded: taken and given back, and the
	// bucket was full; Redis saw both, so the count is unchanged and the
	// key is gone. Take one without release to see Redis move.
	if _, err := rb.GetToken(context.Background(), 14); err != nil {
		t.Fatal(err)
	}
	after, err := rb.Available(context.Background())
	if err != nil || after != before-14 {
		t.Fatalf("Redis count %d -> %d (%v) across a take of 14; the bucket is not shared again", before, after, err)
	}
}

// countHook counts the commands a go-redis client sends (each one round
// trip here: no pipelines).
type countHook struct{ cmds atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.cmds.Add(1)
		return next(ctx, cmd)
	}
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.cmds.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// TestRedisRoundTripsPerFirstTimeSuccess: a call that succeeds at its first
// attempt costs one Redis round trip. The SDK's standard retryer calls the
// limiter once for it: the first attempt's release runs
// RateLimiter.AddTokens(NoRetryIncrement) (GetToken is only called for
// retries), and AddTokens is one refund script (EVALSHA).
func TestRedisRoundTripsPerFirstTimeSuccess(t *testing.T) {
	rs := redistest.StartT(t)
	srv := newServer(t)
	clean, _ := invokeStream.healthy(1, "ok")
	srv.SetDefault(fake.Response{Steps: clean})
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()
	hook := &countHook{}
	rdb.AddHook(hook)
	rb := backoff.NewRedisBucket(rdb, "streamstatus:test:roundtrips", fleetCapacity)
	client := budgetClient(srv, immediateBudget(func(b *backoff.Budget) { b.Bucket = rb }), "standard")
	invokeStream.run(context.Background(), client) // connection set-up and script load
	const calls = 20
	before := hook.cmds.Load()
	for i := 0; i < calls; i++ {
		if res := invokeStream.run(context.Background(), client); res.callErr != nil || res.streamErr != nil {
			t.Fatal(res.callErr, res.streamErr)
		}
	}
	if n := hook.cmds.Load() - before; n != calls {
		t.Fatalf("%d Redis commands for %d first-time successes, want 1 each", n, calls)
	}
}

// BenchmarkFirstTimeSuccessBucket: one healthy ConverseStream call through
// the plugin with the budget's bucket in-process and in Redis on loopback,
// side by side, and the Redis round trips each call makes.
func BenchmarkFirstTimeSuccessBucket(b *testing.B) {
	rs := redistest.StartT(b)
	srv := newServer(b)
	clean, _ := invokeStream.healthy(1, "ok")
	srv.SetDefault(fake.Response{Steps: clean})
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()
	hook := &countHook{}
	rdb.AddHook(hook)
	for _, bc := range []struct {
		name   string
		bucket backoff.Bucket
	}{
		{"TokenBucket", backoff.NewTokenBucket(fleetCapacity)},
		{"RedisBucket", backoff.NewRedisBucket(rdb, "streamstatus:bench:first-time", fleetCapacity,
			func(o *backoff.RedisOptions) { o.OperationTimeout = time.Second })},
	} {
		b.Run(bc.name, func(b *testing.B) {
			client := budgetClient(srv, immediateBudget(func(bb *backoff.Budget) { bb.Bucket = bc.bucket }), "standard")
			invokeStream.run(context.Background(), client)
			before := hook.cmds.Load()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if res := invokeStream.run(context.Background(), client); res.callErr != nil || res.streamErr != nil {
					b.Fatal(res.callErr, res.streamErr)
				}
			}
			b.ReportMetric(float64(hook.cmds.Load()-before)/float64(b.N), "redis-roundtrips/call")
		})
	}
}
