package backoff

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/smithy-go/logging"
	smithymiddleware "github.com/aws/smithy-go/middleware"
	"github.com/redis/go-redis/v9"
)

// Defaults of RedisOptions.
const (
	// DefaultRedisTimeout bounds one Redis operation of a RedisBucket.
	DefaultRedisTimeout = 50 * time.Millisecond
	// DefaultRedisKeyTTL is how long a bucket's key outlives its last use.
	DefaultRedisKeyTTL = 10 * time.Minute
	// DefaultRedisProbeInterval is how often a RedisBucket that fell back
	// to its local bucket tries Redis again.
	DefaultRedisProbeInterval = time.Second
)

// RedisOptions configure a RedisBucket.
type RedisOptions struct {
	// OperationTimeout bounds each Redis operation (one script run, one
	// round trip, two after a Redis restart forgot the script). Past it
	// the operation is served by Fallback and the call goes on. Zero
	// means DefaultRedisTimeout. The bound holds whatever the client's
	// own timeouts and ContextTimeoutEnabled say.
	OperationTimeout time.Duration
	// Fallback serves the operations while Redis fails or does not answer
	// in time. Nil means a new TokenBucket of the RedisBucket's capacity:
	// during an outage each process has its own quota, as it would
	// without Redis.
	//
	// Fallback is kept as this process's own quota would be: every
	// AddTokens (a first attempt's success) refills it, whether Redis or
	// Fallback serves it, so the successes between two outages refill
	// what the first one drained. Takes that Redis serves are not mirrored:
	// a healthy spell never drains it.
	Fallback Bucket
	// KeyTTL is how long the key lives after its last use; an abandoned
	// key expires, and a bucket whose key expired is full again. Zero
	// means DefaultRedisKeyTTL. At least a millisecond.
	KeyTTL time.Duration
	// ProbeInterval is how often, while Redis fails, one operation tries
	// Redis again (the others go to Fallback at once). Zero means
	// DefaultRedisProbeInterval.
	ProbeInterval time.Duration
	// Logger receives one warning each time the bucket falls back to
	// Fallback, and a debug line when Redis answers again. Nil means the
	// logger of the SDK client whose retry last took a token (smithy-go
	// middleware.GetLogger), or, before any, a standard logger on
	// stderr. Set it to the client's logger (aws.Config.Logger) to route
	// every line there; logging.Nop{} silences the bucket.
	Logger logging.Logger
}

// RedisBucket is a retry quota shared through Redis by every process that
// uses the same key: the fleet-wide version of TokenBucket, with the same
// semantics (take a retry's cost, refund on success, never above the
// capacity; a lost or expired key is a full bucket). Each operation is one
// Lua script run atomically on the server.
//
// Redis is never a dependency of availability: an operation that fails or
// takes longer than RedisOptions.OperationTimeout is served by a local
// fallback bucket, the bucket warns once, and Redis is used again as soon
// as it answers a probe (RedisOptions.ProbeInterval).
//
// RedisBucket implements Bucket and retry.RateLimiter. It is safe for
// concurrent use.
type RedisBucket struct {
	rdb      redis.UniversalClient
	keys     []string
	capacity uint
	opts     RedisOptions
	ttlMS    int64

	// down is true while operations go to the fallback; probeAt is the
	// time (Unix ns) from which one operation may try Redis again.
	down    atomic.Bool
	probeAt atomic.Int64
	// seen is the last non-nop logger found in a GetToken context.
	seen atomic.Pointer[loggerBox]
	// late counts script runs that outlived their deadline and are still
	// going (tests wait for them).
	late sync.WaitGroup
}

type loggerBox struct{ logging.Logger }

// NewRedisBucket returns a retry quota of the given capacity kept in Redis
// under key, shared with every RedisBucket on the same key and server. The
// key is used as given: prefix it for your application (for example
// "streamstatus:bedrock:us-east-1"). rdb may be a single node, a Sentinel
// failover client or a Cluster client; the key lives in one slot.
//
// It panics when rdb is nil, key is empty, capacity is above 2^53 (Lua's
// integer range) or an option is negative: those are programming errors.
func NewRedisBucket(rdb redis.UniversalClient, key string, capacity uint, optFns ...func(*RedisOptions)) *RedisBucket {
	var o RedisOptions
	for _, fn := range optFns {
		fn(&o)
	}
	switch {
	case rdb == nil:
		panic("backoff.NewRedisBucket: nil Redis client; pass a redis.NewClient or redis.NewUniversalClient")
	case key == "":
		panic("backoff.NewRedisBucket: empty key; name the quota, for example \"streamstatus:bedrock:us-east-1\"")
	case uint64(capacity) > 1<<53:
		panic(fmt.Sprintf("backoff.NewRedisBucket: capacity %d is above 2^53, which Redis's Lua cannot count exactly", capacity))
	case o.OperationTimeout < 0, o.KeyTTL < 0, o.ProbeInterval < 0:
		panic(fmt.Sprintf("backoff.NewRedisBucket: negative option (OperationTimeout %v, KeyTTL %v, ProbeInterval %v); use 0 for the default",
			o.OperationTimeout, o.KeyTTL, o.ProbeInterval))
	case o.KeyTTL > 0 && o.KeyTTL < time.Millisecond:
		panic(fmt.Sprintf("backoff.NewRedisBucket: KeyTTL %v is below Redis's 1ms resolution", o.KeyTTL))
	}
	if o.OperationTimeout == 0 {
		o.OperationTimeout = DefaultRedisTimeout
	}
	if o.KeyTTL == 0 {
		o.KeyTTL = DefaultRedisKeyTTL
	}
	if o.ProbeInterval == 0 {
		o.ProbeInterval = DefaultRedisProbeInterval
	}
	if o.Fallback == nil {
		o.Fallback = NewTokenBucket(capacity)
	}
	return &RedisBucket{rdb: rdb, keys: []string{key}, capacity: capacity, opts: o, ttlMS: o.KeyTTL.Milliseconds()}
}

// Key returns the Redis key of the bucket.
func (b *RedisBucket) Key() string { return b.keys[0] }

// Capacity returns the bucket's capacity.
func (b *RedisBucket) Capacity() uint { return b.capacity }

// Fallback returns the local bucket that serves while Redis does not.
func (b *RedisBucket) Fallback() Bucket { return b.opts.Fallback }

// Shared reports whether operations currently go to Redis (false while
// the bucket has fallen back to its local bucket).
func (b *RedisBucket) Shared() bool { return !b.down.Load() }

// GetToken takes cost tokens from the shared bucket, or from the fallback
// while Redis fails. The returned release puts them back (the SDK calls it
// when the retry succeeds). An empty bucket returns *QuotaExceededError.
// Like TokenBucket and the SDK's own limiter, it takes nothing for a
// context that is already done and returns its error.
func (b *RedisBucket) GetToken(ctx context.Context, cost uint) (release func() error, err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("streamstatus: retry token not taken: %w", err)
	}
	if b.opts.Logger == nil && ctx != nil {
		if l := smithymiddleware.GetLogger(ctx); !isNop(l) {
			b.seen.Store(&loggerBox{l})
		}
	}
	if probe, ok := b.useRedis(); ok {
		r := b.run(takeScript, cost, b.refundLateTake)
		if r.err == nil {
			if probe {
				b.recovered(ctx)
			}
			if !r.granted {
				return nil, &QuotaExceededError{Cost: cost, Available: r.tokens}
			}
			return func() error { return b.AddTokens(cost) }, nil
		}
		b.failed(ctx, r.err)
	}
	return b.opts.Fallback.GetToken(ctx, cost)
}

// AddTokens puts n tokens back into the shared bucket, up to the capacity,
// and into the fallback (see RedisOptions.Fallback). The SDK calls it when
// a first attempt succeeds.
func (b *RedisBucket) AddTokens(n uint) error {
	if n == 0 {
		return nil
	}
	if probe, ok := b.useRedis(); ok {
		r := b.run(refundScript, n, nil)
		if r.err == nil {
			if probe {
				b.recovered(nil)
			}
			return b.opts.Fallback.AddTokens(n) // the local quota refills too
		}
		b.failed(nil, r.err)
	}
	return b.opts.Fallback.AddTokens(n)
}

// Available returns the tokens left in the shared bucket, read from Redis
// within the operation timeout. It does not consult the fallback.
func (b *RedisBucket) Available(ctx context.Context) (uint, error) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.OperationTimeout)
	defer cancel()
	n, err := b.rdb.Get(ctx, b.keys[0]).Uint64()
	switch {
	case errors.Is(err, redis.Nil):
		return b.capacity, nil
	case err != nil:
		return 0, fmt.Errorf("streamstatus: read retry bucket %q from Redis: %w", b.keys[0], err)
	}
	return uint(min(n, uint64(b.capacity))), nil
}

// useRedis says whether this operation goes to Redis, and whether it is the
// probe that may bring a fallen-back bucket back to Redis.
func (b *RedisBucket) useRedis() (probe, ok bool) {
	if !b.down.Load() {
		return false, true
	}
	now := time.Now().UnixNano()
	at := b.probeAt.Load()
	if now < at || !b.probeAt.CompareAndSwap(at, now+int64(b.opts.ProbeInterval)) {
		return false, false
	}
	return true, true
}

func (b *RedisBucket) failed(ctx context.Context, err error) {
	b.probeAt.Store(time.Now().Add(b.opts.ProbeInterval).UnixNano())
	if b.down.CompareAndSwap(false, true) {
		b.logger(ctx).Logf(logging.Warn, "streamstatus: retry bucket %q: Redis failed (%v); using a local bucket of %d tokens until Redis answers again (tried every %v)",
			b.keys[0], err, b.capacity, b.opts.ProbeInterval)
	}
}

func (b *RedisBucket) recovered(ctx context.Context) {
	if b.down.CompareAndSwap(true, false) {
		b.logger(ctx).Logf(logging.Debug, "streamstatus: retry bucket %q: Redis answers again; the shared bucket is in use", b.keys[0])
	}
}

func (b *RedisBucket) logger(ctx context.Context) logging.Logger {
	if b.opts.Logger != nil {
		return b.opts.Logger
	}
	if ctx != nil {
		if l := smithymiddleware.GetLogger(ctx); !isNop(l) {
			return l
		}
	}
	if s := b.seen.Load(); s != nil {
		return s.Logger
	}
	return logging.NewStandardLogger(os.Stderr)
}

func isNop(l logging.Logger) bool {
	_, nop := l.(logging.Nop)
	return nop
}

// scriptResult is what a script run answered.
type scriptResult struct {
	granted bool
	tokens  uint
	err     error
}

// errRedisTimeout is the error of an operation past its deadline.
type errRedisTimeout time.Duration

func (e errRedisTimeout) Error() string {
	return fmt.Sprintf("no answer within %v", time.Duration(e))
}

// run runs script with n on the key and returns within the operation
// timeout whatever the client does: the script runs in a goroutine, and a
// caller past the deadline leaves with a timeout error. late, if not nil,
// receives the answer that came after the caller left.
func (b *RedisBucket) run(script *redis.Script, n uint, late func(n uint, r scriptResult)) scriptResult {
	ctx, cancel := context.WithTimeout(context.Background(), b.opts.OperationTimeout)
	var claimed atomic.Bool // whoever sets it first owns the result: the caller (timeout) or the script goroutine
	done := make(chan scriptResult, 1)
	b.late.Add(1)
	go func() {
		defer b.late.Done()
		defer cancel()
		r := b.eval(ctx, script, n)
		if claimed.CompareAndSwap(false, true) {
			done <- r
		} else if late != nil {
			late(n, r)
		}
	}()
	select {
	case r := <-done:
		return r
	case <-ctx.Done():
		if !claimed.CompareAndSwap(false, true) {
			return <-done // the answer came as the deadline passed
		}
		return scriptResult{err: errRedisTimeout(b.opts.OperationTimeout)}
	}
}

func (b *RedisBucket) eval(ctx context.Context, script *redis.Script, n uint) scriptResult {
	vals, err := script.Run(ctx, b.rdb, b.keys, uint64(b.capacity), uint64(n), b.ttlMS).Int64Slice()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = errRedisTimeout(b.opts.OperationTimeout)
		}
		return scriptResult{err: err}
	}
	if len(vals) != 2 || vals[1] < 0 || vals[1] > math.MaxInt64 {
		return scriptResult{err: fmt.Errorf("unexpected script reply %v", vals)}
	}
	return scriptResult{granted: vals[0] == 1, tokens: uint(vals[1])}
}

// refundLateTake gives back a take that Redis granted after the caller had
// left for the fallback bucket, so the shared bucket does not lose it.
func (b *RedisBucket) refundLateTake(n uint, r scriptResult) {
	if r.err != nil || !r.granted {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.opts.OperationTimeout)
	defer cancel()
	b.eval(ctx, refundScript, n)
}

var (
	_ Bucket = (*RedisBucket)(nil)
	_ Bucket = (*TokenBucket)(nil)
)
