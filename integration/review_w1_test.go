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
