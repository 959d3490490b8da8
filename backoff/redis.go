package backoff

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
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
	// key expires, and a bucket whose key expired is full again. Each
	// take's record (see RedisBucket) lives as long after the take. Zero
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
	// every line there; logging.Nop{} silences the bucket. AddTokens and
	// releases have no context: an outage they find before any GetToken
	// (a process whose first calls all succeed) warns on stderr.
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
// Tokens go back where they came from. The release of a take that Redis
// granted refunds Redis, even when it comes while the bucket has fallen
// back (it is then kept and sent when Redis answers again); the release of
// a take that the fallback served refunds the fallback. A take whose answer
// did not come in time may still run on Redis later (a paused server, a
// client with ContextTimeoutEnabled or a short ReadTimeout gives up while
// the command is queued, go-redis resends after a broken connection): every
// take carries a unique id and leaves a record next to the key for
// KeyTTL, so it runs at most once, and the bucket cancels it when Redis
// answers again: a take that ran is refunded, one that had not run yet
// never will. Nothing is lost unless this process cannot reach Redis for
// longer than KeyTTL after such a take ran (or exits first), and an
// AddTokens that timed out may or may not reach Redis: the shared bucket
// then misses at most that refund (it never gains tokens nobody gave back).
//
// RedisBucket implements Bucket and retry.RateLimiter. It is safe for
// concurrent use.
type RedisBucket struct {
	rdb      redis.UniversalClient
	key      string
	capacity uint
	opts     RedisOptions
	ttlMS    int64
	// recPrefix + id is the key of a take's record, in the key's slot;
	// idPrefix + a count is a take's id, unique to this bucket.
	recPrefix, idPrefix string
	ids                 atomic.Uint64

	// down is true while operations go to the fallback; probeAt is the
	// time (Unix ns) from which one operation may try Redis again.
	down      atomic.Bool
	probeAt   atomic.Int64
	outages   atomic.Uint64
	seen      atomic.Pointer[loggerBox] // the last non-nop logger found in a GetToken context
	late      sync.WaitGroup            // script runs that outlived their deadline (tests wait for them)
	mu        sync.Mutex
	unsettled map[string]settlement // takes to release or cancel once Redis answers, by id
}

// settlement is what a take still owes Redis: its release (the retry
// succeeded) or its cancellation (its answer never came).
type settlement struct {
	n       uint
	release bool
}

type loggerBox struct{ logging.Logger }

// NewRedisBucket returns a retry quota of the given capacity kept in Redis
// under key, shared with every RedisBucket on the same key and server. The
// key is used as given: prefix it for your application (for example
// "streamstatus:bedrock:us-east-1"). Short-lived records of takes live next
// to it, under key + ":take:" + id (or "{" + key + "}:take:" + id for a key
// without a Cluster hash tag, so that they share its slot). rdb may be a
// single node, a Sentinel failover client or a Cluster client; the key and
// its records live in one slot.
//
// It panics when rdb is nil, key is empty or has a '}' outside a hash tag
// (its records could not share its slot), capacity is above 2^53 (Lua's
// integer range) or an option is negative: those are programming errors.
func NewRedisBucket(rdb redis.UniversalClient, key string, capacity uint, optFns ...func(*RedisOptions)) *RedisBucket {
	var o RedisOptions
	for _, fn := range optFns {
		fn(&o)
	}
	recPrefix, recOK := recordPrefix(key)
	switch {
	case rdb == nil:
		panic("backoff.NewRedisBucket: nil Redis client; pass a redis.NewClient or redis.NewUniversalClient")
	case key == "":
		panic("backoff.NewRedisBucket: empty key; name the quota, for example \"streamstatus:bedrock:us-east-1\"")
	case !recOK:
		panic(fmt.Sprintf("backoff.NewRedisBucket: key %q has a '}' outside a hash tag, so its take records cannot share its Cluster slot; drop the '}' or use a tag such as \"{bedrock}:quota\"", key))
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
	var nonce [8]byte
	rand.Read(nonce[:]) // never fails (crypto/rand, Go 1.24)
	return &RedisBucket{
		rdb: rdb, key: key, capacity: capacity, opts: o, ttlMS: o.KeyTTL.Milliseconds(),
		recPrefix: recPrefix, idPrefix: hex.EncodeToString(nonce[:]) + ":",
		unsettled: map[string]settlement{},
	}
}

// recordPrefix returns the prefix of the keys of key's take records, which
// must hash to key's Cluster slot, and false when there is none.
func recordPrefix(key string) (string, bool) {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key + ":take:", true // the key's hash tag is the records'
		}
	}
	if strings.ContainsRune(key, '}') {
		return "", false
	}
	return "{" + key + "}:take:", true // a tag of the whole key hashes as the key
}

// sameQuota reports whether b and o keep their tokens in one Redis key: the
// same key through the same client, or through clients of the same server
// that can be compared (a single node's network, address and database; a
// Cluster's seed addresses in common). A Sentinel failover client (whose
// options hide the master's address) or a Ring is the same only as itself.
func (b *RedisBucket) sameQuota(o *RedisBucket) bool {
	if b == o {
		return true
	}
	if b.key != o.key {
		return false
	}
	if reflect.ValueOf(b.rdb).Comparable() && b.rdb == o.rdb {
		return true
	}
	switch x := b.rdb.(type) {
	case *redis.Client:
		y, ok := o.rdb.(*redis.Client)
		if !ok || x == nil || y == nil {
			return false
		}
		xo, yo := x.Options(), y.Options()
		const failover = "FailoverClient" // go-redis's address of every failover client
		return xo.Addr != failover && xo.Addr == yo.Addr && xo.Network == yo.Network && xo.DB == yo.DB
	case *redis.ClusterClient:
		y, ok := o.rdb.(*redis.ClusterClient)
		if !ok || x == nil || y == nil {
			return false
		}
		for _, a := range x.Options().Addrs {
			if slices.Contains(y.Options().Addrs, a) {
				return true
			}
		}
	}
	return false
}

// Key returns the Redis key of the bucket.
func (b *RedisBucket) Key() string { return b.key }

// Capacity returns the bucket's capacity.
func (b *RedisBucket) Capacity() uint { return b.capacity }

// Fallback returns the local bucket that serves while Redis does not.
func (b *RedisBucket) Fallback() Bucket { return b.opts.Fallback }

// Shared reports whether operations currently go to Redis (false while
// the bucket has fallen back to its local bucket).
func (b *RedisBucket) Shared() bool { return !b.down.Load() }

// Outages returns how many times the bucket has fallen back to its local
// bucket since it was made (once per outage: each time it warns).
func (b *RedisBucket) Outages() uint64 { return b.outages.Load() }

// GetToken takes cost tokens from the shared bucket, or from the fallback
// while Redis fails. The returned release puts them back where they came
// from (the SDK calls it when the retry succeeds). An empty bucket returns
// *QuotaExceededError. Like TokenBucket and the SDK's own limiter, it takes
// nothing for a context that is already done and returns its error.
func (b *RedisBucket) GetToken(ctx context.Context, cost uint) (release func() error, err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("streamstatus: retry token not taken: %w", err)
	}
	if b.opts.Logger == nil {
		if l := smithymiddleware.GetLogger(ctx); !isNop(l) {
			b.seen.Store(&loggerBox{l})
		}
	}
	if b.useRedis(ctx) {
		id := b.idPrefix + strconv.FormatUint(b.ids.Add(1), 36)
		owe := func() { b.owe(id, settlement{n: cost}) }
		r := b.run(func(ctx context.Context) scriptResult { return b.eval(ctx, takeScript, id, cost) }, owe,
			func(r scriptResult) {
				if r.err == nil { // Redis answers: cancel this take (and settle the others) now
					b.settle(nil)
				}
			})
		if r.err == nil {
			if r.status != 1 {
				return nil, &QuotaExceededError{Cost: cost, Available: r.tokens}
			}
			return func() error { return b.release(id, cost) }, nil
		}
		// The take may run later, or may have run (go-redis resends after
		// a broken connection): cancel it once Redis answers again.
		owe()
		b.failed(ctx, r.err)
	}
	return b.opts.Fallback.GetToken(ctx, cost)
}

// release gives the tokens of the take id back to Redis, now if Redis
// answers, or else as soon as it does.
func (b *RedisBucket) release(id string, cost uint) error {
	s := settlement{n: cost, release: true}
	b.owe(id, s) // before useRedis: a probe that brings Redis back settles it
	if b.useRedis(nil) && b.owes(id) {
		b.settleOne(nil, id, s)
	}
	return nil
}

// AddTokens puts n tokens back into the shared bucket, up to the capacity,
// and into the fallback (see RedisOptions.Fallback). The SDK calls it when
// a first attempt succeeds.
func (b *RedisBucket) AddTokens(n uint) error {
	if n == 0 {
		return nil
	}
	if b.useRedis(nil) {
		r := b.run(func(ctx context.Context) scriptResult { return b.eval(ctx, refundScript, "", n) }, nil, nil)
		if r.err != nil {
			b.failed(nil, r.err)
		}
	}
	return b.opts.Fallback.AddTokens(n) // the local quota refills too
}

// Available returns the tokens left in the shared bucket, read from Redis
// within the operation timeout whatever the client's own timeouts say, as
// every operation of the bucket is. It does not consult the fallback, nor
// fall back: a Redis that does not answer is an error.
func (b *RedisBucket) Available(ctx context.Context) (uint, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("streamstatus: read retry bucket %q from Redis: %w", b.key, err)
	}
	r := b.run(func(rctx context.Context) scriptResult {
		rctx, cancel := context.WithCancel(rctx)
		defer cancel()
		defer context.AfterFunc(ctx, cancel)() // the caller's cancellation too
		n, err := b.rdb.Get(rctx, b.key).Uint64()
		switch {
		case errors.Is(err, redis.Nil):
			return scriptResult{tokens: b.capacity}
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			return scriptResult{err: errRedisTimeout(b.opts.OperationTimeout)}
		case err != nil:
			return scriptResult{err: err}
		}
		return scriptResult{tokens: uint(min(n, uint64(b.capacity)))}
	}, nil, nil)
	if r.err != nil {
		return 0, fmt.Errorf("streamstatus: read retry bucket %q from Redis: %w", b.key, r.err)
	}
	return r.tokens, nil
}

// useRedis says whether this operation goes to Redis. While the bucket has
// fallen back, one operation per ProbeInterval probes Redis (a read of the
// key, which cannot lose tokens if it times out); when Redis answers, the
// bucket settles what it owes and uses Redis again.
func (b *RedisBucket) useRedis(ctx context.Context) bool {
	if !b.down.Load() {
		return true
	}
	now := time.Now().UnixNano()
	at := b.probeAt.Load()
	if now < at || !b.probeAt.CompareAndSwap(at, now+int64(b.opts.ProbeInterval)) {
		return false
	}
	r := b.run(func(ctx context.Context) scriptResult {
		return scriptResult{err: b.rdb.Exists(ctx, b.key).Err()}
	}, nil, nil)
	if r.err != nil {
		b.failed(ctx, r.err)
		return false
	}
	if !b.settle(ctx) {
		return false
	}
	if b.down.CompareAndSwap(true, false) {
		b.logger(ctx).Logf(logging.Debug, "streamstatus: retry bucket %q: Redis answers again; the shared bucket is in use", b.key)
	}
	// A release owed while this probe settled (it found the bucket down)
	// is owed before the bucket came up, so this settles it.
	return b.settle(ctx)
}

func (b *RedisBucket) failed(ctx context.Context, err error) {
	b.probeAt.Store(time.Now().Add(b.opts.ProbeInterval).UnixNano())
	if b.down.CompareAndSwap(false, true) {
		b.outages.Add(1)
		b.logger(ctx).Logf(logging.Warn, "streamstatus: retry bucket %q: Redis failed (%v); using a local bucket of %d tokens until Redis answers again (tried every %v)",
			b.key, err, b.capacity, b.opts.ProbeInterval)
	}
}

// owe records that the take id must be released or cancelled on Redis.
func (b *RedisBucket) owe(id string, s settlement) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.unsettled[id] = s
}

// owes reports whether the take id still owes Redis its settlement.
func (b *RedisBucket) owes(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.unsettled[id]
	return ok
}

// settle sends Redis every release and cancellation it is owed, and reports
// whether all were settled. Each is idempotent, so a settlement sent twice
// (two callers at once, or after a late answer) settles once. On a failure
// the bucket falls back and the rest waits for the next probe.
func (b *RedisBucket) settle(ctx context.Context) bool {
	b.mu.Lock()
	owed := make(map[string]settlement, len(b.unsettled))
	for id, s := range b.unsettled {
		owed[id] = s
	}
	b.mu.Unlock()
	for id, s := range owed {
		if b.settleOne(ctx, id, s) != nil {
			return false
		}
	}
	return true
}

// settleOne sends one release or cancellation; on success the take no
// longer owes anything, on failure it stays owed and the bucket falls back.
func (b *RedisBucket) settleOne(ctx context.Context, id string, s settlement) error {
	script := cancelScript
	if s.release {
		script = releaseScript
	}
	done := func(r scriptResult) {
		if r.err == nil {
			b.mu.Lock()
			defer b.mu.Unlock()
			if b.unsettled[id] == s {
				delete(b.unsettled, id)
			}
		}
	}
	r := b.run(func(ctx context.Context) scriptResult { return b.eval(ctx, script, id, s.n) }, nil, done)
	done(r)
	if r.err != nil {
		b.failed(ctx, r.err)
	}
	return r.err
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
	status int64 // 1 granted or applied, 0 refused or nothing to do, -1 settled before it ran
	tokens uint
	err    error
}

// errRedisTimeout is the error of an operation past its deadline.
type errRedisTimeout time.Duration

func (e errRedisTimeout) Error() string {
	return fmt.Sprintf("no answer within %v", time.Duration(e))
}

// run runs op and returns within the operation timeout whatever the client
// does: op runs in a goroutine, and a caller past the deadline leaves with
// a timeout error. abandon, if not nil, runs as the caller leaves; late, if
// not nil, then receives the answer that came after the caller left (with
// a client that did not give up at the deadline).
func (b *RedisBucket) run(op func(context.Context) scriptResult, abandon func(), late func(scriptResult)) scriptResult {
	ctx, cancel := context.WithTimeout(context.Background(), b.opts.OperationTimeout)
	var claimed atomic.Bool // whoever sets it first owns the result: the caller (timeout) or the op goroutine
	done := make(chan scriptResult, 1)
	left := make(chan struct{}) // closed once the caller that left has run abandon
	b.late.Add(1)
	go func() {
		defer b.late.Done()
		defer cancel()
		r := op(ctx)
		if claimed.CompareAndSwap(false, true) {
			done <- r
			return
		}
		<-left
		if late != nil {
			late(r)
		}
	}()
	select {
	case r := <-done:
		return r
	case <-ctx.Done():
		if !claimed.CompareAndSwap(false, true) {
			return <-done // the answer came as the deadline passed
		}
		if abandon != nil {
			abandon()
		}
		close(left)
		return scriptResult{err: errRedisTimeout(b.opts.OperationTimeout)}
	}
}

// eval runs script on the key with n and, when id is not empty, the take
// record of id.
func (b *RedisBucket) eval(ctx context.Context, script *redis.Script, id string, n uint) scriptResult {
	keys := []string{b.key}
	if id != "" {
		keys = append(keys, b.recPrefix+id)
	}
	vals, err := script.Run(ctx, b.rdb, keys, uint64(b.capacity), uint64(n), b.ttlMS, b.ttlMS).Int64Slice()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = errRedisTimeout(b.opts.OperationTimeout)
		}
		return scriptResult{err: err}
	}
	if len(vals) != 2 || vals[0] < -1 || vals[0] > 1 || vals[1] < 0 || vals[1] > math.MaxInt64 {
		return scriptResult{err: fmt.Errorf("unexpected script reply %v", vals)}
	}
	return scriptResult{status: vals[0], tokens: uint(vals[1])}
}

var (
	_ Bucket = (*RedisBucket)(nil)
	_ Bucket = (*TokenBucket)(nil)
)
