package integration_test

import (
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"

	"github.com/streamstatus/streamstatus/middleware"
)

// TestDefect_WithBedrockDropsAdaptiveRetryer: the AWS SDK's documented way
// to choose the adaptive retry mode is a retryer, not RetryMode:
//
//	config.LoadDefaultConfig(ctx, config.WithRetryer(func() aws.Retryer { return retry.NewAdaptiveMode() }))
//
// which leaves cfg.RetryMode empty. WithBedrock(WithBudget(b)) then
// replaces the client's adaptive retryer with budget.NewStandard(): the
// fix for review z1 ("keep the client's retry mode") looks only at
// RetryMode, so the client-side rate limiter the user chose is silently
// dropped, at construction and per call.
func TestDefect_WithBedrockDropsAdaptiveRetryer(t *testing.T) {
	srv := newServer(t)
	b := immediateBudget()
	cfg := testConfig(srv, 0)
	cfg.Retryer = func() aws.Retryer { return retry.NewAdaptiveMode() }
	bare := bedrockruntime.NewFromConfig(cfg)
	if !holdsAdaptive(reflect.ValueOf(bare.Options().Retryer)) {
		t.Fatalf("the bare client's retryer %T is not in the adaptive mode", bare.Options().Retryer)
	}
	c := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithBudget(b)))
	if r := c.Options().Retryer; !holdsAdaptive(reflect.ValueOf(r)) {
		t.Errorf("cfg.Retryer = retry.NewAdaptiveMode() with WithBedrock(WithBudget(b)): the client's retryer (%T) holds no adaptive mode; want budget.NewAdaptive(), or a failure naming the fix", r)
	}
	// Per call: the option function sees the client's options.
	o := bare.Options()
	middleware.WithBedrock(middleware.WithBudget(b))(&o)
	if !holdsAdaptive(reflect.ValueOf(o.Retryer)) {
		t.Errorf("per call on an adaptive client: the retryer (%T) holds no adaptive mode", o.Retryer)
	}
}

// adaptiveIn returns the *retry.AdaptiveMode the retryer holds (through the
// SDK's wrappers and the budget's retryer), or nil.
func adaptiveIn(v reflect.Value) *retry.AdaptiveMode {
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		if v.Type() == reflect.TypeFor[*retry.AdaptiveMode]() {
			return v.Interface().(*retry.AdaptiveMode)
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Interface {
			if a := adaptiveIn(f); a != nil {
				return a
			}
		}
	}
	return nil
}

// TestDefect_PerCallWithBudgetRebuildsTheAdaptiveLimiter: the adaptive
// mode's point is a client-side rate limiter that learns from the client's
// throttles and slows the client's next calls down. Per call,
// WithBedrock(WithBudget(b)) on a client in the adaptive mode (RetryMode
// adaptive, the README's per-call install path) installs a new
// budget.NewAdaptive() for every call: each call starts with a fresh rate
// limiter that knows nothing of the throttles the calls before it met, so
// the client never slows down across calls, which is what the fix claims
// to keep ("the adaptive mode's client-side rate limiter slows a client
// down under throttling"). The bare client's calls share one limiter.
func TestDefect_PerCallWithBudgetRebuildsTheAdaptiveLimiter(t *testing.T) {
	srv := newServer(t)
	b := immediateBudget()
	cfg := testConfig(srv, 0)
	cfg.Retryer = nil
	cfg.RetryMode = aws.RetryModeAdaptive
	client := bedrockruntime.NewFromConfig(cfg)
	perCall := middleware.WithBedrock(middleware.WithBudget(b)) // built once, as the README advises
	call := func(opt func(*bedrockruntime.Options)) *retry.AdaptiveMode {
		o := client.Options() // what the SDK gives a call's option functions
		if opt != nil {
			opt(&o)
		}
		return adaptiveIn(reflect.ValueOf(o.Retryer))
	}
	if a1, a2 := call(nil), call(nil); a1 == nil || a1 != a2 {
		t.Fatalf("bare adaptive client: calls' adaptive modes %p and %p, want one shared", a1, a2)
	}
	a1, a2 := call(perCall), call(perCall)
	if a1 == nil || a2 == nil {
		t.Fatalf("per-call WithBedrock(WithBudget(b)) on an adaptive client: no adaptive mode (%p, %p)", a1, a2)
	}
	if a1 != a2 {
		t.Errorf("per-call WithBedrock(WithBudget(b)) on an adaptive client: each call gets its own adaptive rate limiter (%p, %p); the client's throttles never slow its next calls down", a1, a2)
	}
}
