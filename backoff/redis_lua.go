package backoff

import "github.com/redis/go-redis/v9"

// The scripts below are the whole shared state machine of a RedisBucket.
// Each runs atomically on the Redis server, so any number of processes may
// take and refund on one key at once. The key holds the tokens left; a
// missing key means a full bucket, which is what a restarted Redis or an
// expired key gives: the SDK's retry quota starts full, and so does ours.
//
// Time does not enter the quota (the SDK's bucket refills only by refunds,
// never by the clock), so no script reads TIME; the key's TTL is kept by
// the server. Every script that finds the key refreshes its TTL, so a key in
// use never expires, and a key nobody touches for the TTL goes away.
//
// A take is idempotent and can be undone by a process that never saw its
// answer (a client that gave up at a deadline while Redis still ran the
// command later, or that sent it twice on a retry after a broken
// connection). Each take carries a unique id and leaves a record under its
// own key, in the bucket key's hash slot (KEYS[2]), for the record TTL:
//
//	missing   the take has not run
//	"<n>"     the take ran and took n tokens
//	"x"       settled: the take was released, or cancelled before or
//	          after it ran; it never takes (again)
//
// ARGV: capacity, n (the cost or the refund), key TTL in milliseconds,
// record TTL in milliseconds. Every script returns {status, tokens}: tokens
// is the count left after the operation; status is 1 for a granted take or
// an applied refund, 0 for a take refused (too few tokens) or a refund that
// found nothing to give back, -1 for a take whose id was settled before it
// ran.

// takeScript takes n tokens when at least n are left, once per id.
var takeScript = redis.NewScript(`
local key, rec = KEYS[1], KEYS[2]
local capacity = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local recttl = tonumber(ARGV[4])

` + luaTokensLeft + `
local done = redis.call("GET", rec)
if done == "x" then
  return {-1, tokens}
elseif done then
  return {1, tokens}
end

if n > tokens then
  redis.call("PEXPIRE", key, ttl)
  return {0, tokens}
end
tokens = tokens - n
redis.call("SET", key, tokens, "PX", ttl)
redis.call("SET", rec, n, "PX", recttl)
return {1, tokens}
`)

// refundScript puts n tokens back, never above capacity (AddTokens: no id,
// no record). A bucket that comes back to full is deleted: a missing key
// already means full.
var refundScript = redis.NewScript(`
local key = KEYS[1]
local capacity = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])

local tokens = redis.call("GET", key)
` + luaPutBack)

// releaseScript gives back the n tokens of the take with this id, once:
// the release of a granted take. A record that expired (a take older than
// the record TTL) is refunded too: the take did run.
var releaseScript = redis.NewScript(`
local key, rec = KEYS[1], KEYS[2]
local capacity = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local recttl = tonumber(ARGV[4])

local tokens = redis.call("GET", key)
if redis.call("GET", rec) == "x" then
  if tokens then
    return {0, math.min(tonumber(tokens), capacity)}
  end
  return {0, capacity}
end
redis.call("SET", rec, "x", "PX", recttl)
` + luaPutBack)

// cancelScript undoes the take with this id, whose answer the caller never
// saw: if it ran, its tokens go back; if it has not run yet, the record
// makes sure it never takes when it arrives. Either way the id is settled.
var cancelScript = redis.NewScript(`
local key, rec = KEYS[1], KEYS[2]
local capacity = tonumber(ARGV[1])
local ttl = tonumber(ARGV[3])
local recttl = tonumber(ARGV[4])

` + luaTokensLeft + `local done = redis.call("GET", rec)
redis.call("SET", rec, "x", "PX", recttl)
if not done or done == "x" then
  return {0, tokens}
end
if tokens == capacity then
  return {1, capacity}
end
local n = tonumber(done)
` + luaPutBack)

// luaPutBack ends the scripts that give tokens back: n tokens onto the
// bucket's count (tokens, a string or number as read; nil means a missing
// key, that is a full bucket), never above capacity; a bucket that comes
// back to full is deleted, since a missing key already means full.
const luaPutBack = `
if not tokens then
  return {1, capacity}
end
tokens = tonumber(tokens) + n
if tokens >= capacity then
  redis.call("DEL", key)
  return {1, capacity}
end
redis.call("SET", key, tokens, "PX", ttl)
return {1, tokens}
`

// luaTokensLeft reads the bucket's count into tokens, never above capacity;
// a missing key is a full bucket.
const luaTokensLeft = `local tokens = redis.call("GET", key)
if tokens then
  tokens = math.min(tonumber(tokens), capacity)
else
  tokens = capacity
end
`
