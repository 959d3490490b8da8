package backoff

import "github.com/redis/go-redis/v9"

// The two scripts below are the whole shared state machine of a RedisBucket.
// Each runs atomically on the Redis server, so any number of processes may
// take and refund on one key at once. The key holds the tokens left; a
// missing key means a full bucket, which is what a restarted Redis or an
// expired key gives: the SDK's retry quota starts full, and so does ours.
//
// Time does not enter the quota (the SDK's bucket refills only by refunds,
// never by the clock), so neither script reads TIME; the key's TTL is kept by
// the server. Every script that finds the key refreshes its TTL, so a key in
// use never expires, and a key nobody touches for the TTL goes away.
//
// ARGV is the same for both: capacity, n (the cost or the refund), TTL in
// milliseconds. Both return {ok, tokens}: ok is 1 when the take was granted
// (always 1 for a refund), tokens the count left after the operation.

// takeScript takes n tokens when at least n are left.
var takeScript = redis.NewScript(`
local key = KEYS[1]
local capacity = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])

local tokens = redis.call("GET", key)
if tokens then
  tokens = math.min(tonumber(tokens), capacity)
else
  tokens = capacity
end

if n > tokens then
  redis.call("PEXPIRE", key, ttl)
  return {0, tokens}
end
tokens = tokens - n
redis.call("SET", key, tokens, "PX", ttl)
return {1, tokens}
`)

// refundScript puts n tokens back, never above capacity. A bucket that comes
// back to full is deleted: a missing key already means full.
var refundScript = redis.NewScript(`
local key = KEYS[1]
local capacity = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])

local tokens = redis.call("GET", key)
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
`)
