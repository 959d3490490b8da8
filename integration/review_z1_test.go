package integration_test

import (
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"

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
