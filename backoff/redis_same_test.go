package backoff_test

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/streamstatus/streamstatus/backoff"
)

// TestRedisBucketsSameQuota: two RedisBuckets are one quota (RetryStream
// refunds it once) when they share the key on the same Redis, through one
// client or two of the same address and database; not on another key,
// database or address. No client here connects.
func TestRedisBucketsSameQuota(t *testing.T) {
	client := func(addr string, db int) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: addr, DB: db})
		t.Cleanup(func() { c.Close() })
		return c
	}
	one := client("127.0.0.1:1", 0)
	base := backoff.NewRedisBucket(one, "k", 10)
	for _, tc := range []struct {
		name  string
		other *backoff.RedisBucket
		want  bool
	}{
		{"itself", base, true},
		{"same client and key", backoff.NewRedisBucket(one, "k", 10), true},
		{"another client of the same address and DB", backoff.NewRedisBucket(client("127.0.0.1:1", 0), "k", 10), true},
		{"another key", backoff.NewRedisBucket(one, "k2", 10), false},
		{"another DB", backoff.NewRedisBucket(client("127.0.0.1:1", 1), "k", 10), false},
		{"another address", backoff.NewRedisBucket(client("127.0.0.1:2", 0), "k", 10), false},
	} {
		if got := backoff.SameQuota(base, tc.other); got != tc.want {
			t.Errorf("%s: SameQuota = %v; want %v", tc.name, got, tc.want)
		}
	}
}
