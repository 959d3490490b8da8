package integration_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/redis/go-redis/v9"

	"github.com/streamstatus/streamstatus/backoff"
	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/internal/redistest"
	"github.com/streamstatus/streamstatus/middleware"
)

// holdsAdaptive reports whether the retryer r is, or wraps (through the
// SDK's wrappers and the budget's retryer, which embed the retryer they
// wrap), the SDK's adaptive mode.
func holdsAdaptive(v reflect.Value) bool {
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return false
		}
		if v.Type() == reflect.TypeFor[*retry.AdaptiveMode]() {
			return true
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return false
	}
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Interface && holdsAdaptive(f) {
			return true
		}
	}
	return false
}

// TestDefect_WithBedrockDropsAdaptiveRetryMode: a config in the adaptive
// retry mode (cfg.RetryMode, AWS_RETRY_MODE=adaptive: client-side rate
// limiting after throttles) and WithBedrock(WithBudget(b)) at
// construction. The README says the limits of the budget hold "nor can
// the adaptive mode's client-side rate limiter" stretch a retry, and the
// budget has NewAdaptive; yet WithBedrock replaces the client's adaptive
// retryer (not the budget's) with budget.NewStandard(): the retry mode the
// user chose is silently dropped, and the client no longer slows down
// under throttling (worse than the bare SDK in the storm the budget is
// for). Per call too.
func TestDefect_WithBedrockDropsAdaptiveRetryMode(t *testing.T) {
	srv := newServer(t)
	b := immediateBudget()
	cfg := testConfig(srv, 0)
	cfg.Retryer = nil // the SDK builds it from RetryMode
	cfg.RetryMode = aws.RetryModeAdaptive
	bare := bedrockruntime.NewFromConfig(cfg)
	if !holdsAdaptive(reflect.ValueOf(bare.Options().Retryer)) {
		t.Fatalf("the bare client's retryer %T is not in the adaptive mode", bare.Options().Retryer)
	}
	if !holdsAdaptive(reflect.ValueOf(b.NewAdaptive())) {
		t.Fatal("holdsAdaptive does not see the adaptive mode inside budget.NewAdaptive()")
	}
	c := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithBudget(b)))
	if r := c.Options().Retryer; !holdsAdaptive(reflect.ValueOf(r)) {
		t.Errorf("cfg.RetryMode = adaptive with WithBedrock(WithBudget(b)): the client's retryer (%T) holds no adaptive mode; want budget.NewAdaptive(), or a failure naming the fix", r)
	}
}

// annotates is a retryer wrapper that leaves every decision to the
// budget's retryer but annotates the attempt's error it passes on, in
// GetRetryToken as in RetryDelay (a logging or tracing wrapper).
type annotates struct{ aws.RetryerV2 }

func (w annotates) GetRetryToken(ctx context.Context, err error) (func(error) error, error) {
	return w.RetryerV2.GetRetryToken(ctx, fmt.Errorf("retry token: %w", err))
}

func (w annotates) RetryDelay(attempt int, err error) (time.Duration, error) {
	return w.RetryerV2.RetryDelay(attempt, fmt.Errorf("attempt %d: %w", attempt, err))
}

// TestDefect_AnnotatingWrapperRefusedAsDelayReplaced: backoff.Of takes a
// wrapper that passes the error on wrapped for the budget's retryer ("a
// wrapper that passes the error on wrapped ... still leaves the decision
// to the budget", and wrapsDelayErr's retries are made), so
// WithBedrock(WithBudget(b)) keeps it. A wrapper that wraps the error in
// GetRetryToken too tracks the token under its own wrapping, which the
// RetryDelay's other wrapping does not hold: config-wide with the
// middlewares, its first retry, delayed by the budget itself, is refused
// as "the client's retryer replaced the retry budget's delay".
func TestDefect_AnnotatingWrapperRefusedAsDelayReplaced(t *testing.T) {
	srv := busyServer(t)
	b := immediateBudget(func(b *backoff.Budget) { b.MaxAttempts = 3; b.Bucket = backoff.NewTokenBucket(100) })
	if got := backoff.Of(annotates{b.NewStandard()}); got != b {
		t.Fatalf("Of(annotates) = %p; want the budget %p", got, b)
	}
	cfg := testConfig(srv, 0)
	cfg.Retryer = func() aws.Retryer { return annotates{b.NewStandard()} }
	middleware.AppendMiddlewares(&cfg.APIOptions, middleware.WithBudget(b))
	err := invokeStream.run(context.Background(), bedrockruntime.NewFromConfig(cfg)).callErr
	var ex *backoff.ExhaustedError
	if srv.CallCount() != 3 || !errors.As(err, &ex) || ex.Reason != "attempts" {
		t.Errorf("%d attempts, err %v; want the budget's 3, then *backoff.ExhaustedError (attempts)", srv.CallCount(), err)
	}
}

// TestDefect_RetryStreamTwoRedisBucketsOneKeyRefundTwice: the fleet
// bucket is shared by its Redis key ("any number of clients can share",
// every process builds its own RedisBucket on the key), and RetryStream
// says "the client's retryer may be another budget's sharing the bucket
// (the bucket still gets one refund)". In one process, the client's budget
// and RetryStream's budget each built with NewRedisBucket on the same key:
// a stream that succeeds at once refunds the shared bucket twice (the
// client's retryer, then RetryStream, which compares the two *RedisBucket
// pointers only).
func TestDefect_RetryStreamTwoRedisBucketsOneKeyRefundTwice(t *testing.T) {
	rs := redistest.StartT(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { rdb.Close() })
	key := "streamstatus:z1:" + t.Name()
	clientBucket := backoff.NewRedisBucket(rdb, key, 100)
	streamBucket := backoff.NewRedisBucket(rdb, key, 100)
	ctx := context.Background()
	if _, err := clientBucket.GetToken(ctx, 50); err != nil {
		t.Fatal(err)
	}
	clean, _ := invokeStream.healthy(2, "ok")
	srv := newServer(t)
	srv.Enqueue(fake.Response{Steps: clean})
	clientBudget := immediateBudget(func(b *backoff.Budget) { b.Bucket = clientBucket })
	streamBudget := immediateBudget(func(b *backoff.Budget) { b.Bucket = streamBucket })
	err := backoff.RetryStream(ctx, streamBudget, openInvoke(budgetClient(srv, clientBudget, "standard")),
		func(types.ResponseStream) error { return nil })
	if err != nil || srv.CallCount() != 1 {
		t.Fatalf("err %v, %d server calls; want success at once", err, srv.CallCount())
	}
	got, err := streamBucket.Available(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint(50 + backoff.DefaultSuccessRefund); got != want {
		t.Errorf("shared Redis bucket holds %d tokens; want %d (one refund for the one successful call)", got, want)
	}
}
