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
