package backoff_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"

	"github.com/streamstatus/streamstatus/backoff"
)

// TestOptFnsChangingBudgetFieldsFailFirstCall: NewStandard's and
// NewAdaptive's option functions may add rules, but a field the budget
// owns that they change fails the retryer's first call, naming the field
// and the Budget field to set instead; with or without call state.
func TestOptFnsChangingBudgetFieldsFailFirstCall(t *testing.T) {
	b := backoff.NewBudget()
	for _, tc := range []struct {
		field, fix string
		set        func(*retry.StandardOptions)
	}{
		{"MaxAttempts", "Budget.MaxAttempts", func(o *retry.StandardOptions) { o.MaxAttempts = 1 }},
		{"Backoff", "Budget.Transient", func(o *retry.StandardOptions) { o.Backoff = hourDelay{} }},
		{"MaxBackoff", "Max", func(o *retry.StandardOptions) { o.MaxBackoff = time.Second }},
		{"BaseDelay", "Initial", func(o *retry.StandardOptions) { o.BaseDelay = time.Second }},
		{"RateLimiter", "Budget.Bucket", func(o *retry.StandardOptions) { o.RateLimiter = backoff.NewTokenBucket(1) }},
		{"RetryCost", "Budget.RetryCost", func(o *retry.StandardOptions) { o.RetryCost = 1 }},
		{"ThrottlingRetryCost", "Budget.ThrottleRetryCost", func(o *retry.StandardOptions) { o.ThrottlingRetryCost = 1 }},
		{"NoRetryIncrement", "Budget.SuccessRefund", func(o *retry.StandardOptions) { o.NoRetryIncrement = 7 }},
	} {
		retryers := map[string]aws.RetryerV2{
			"NewStandard": b.NewStandard(tc.set),
			"NewAdaptive": b.NewAdaptive(func(o *retry.AdaptiveModeOptions) {
				o.StandardOptions = append(o.StandardOptions, tc.set)
			}),
		}
		for name, r := range retryers {
			for _, ctx := range []context.Context{context.Background(), callCtx(t)} {
				_, err := r.GetAttemptToken(ctx)
				if err == nil || !strings.Contains(err.Error(), "StandardOptions."+tc.field+",") ||
					!strings.Contains(err.Error(), tc.fix) || !strings.Contains(err.Error(), name) {
					t.Errorf("%s setting %s: first call err %v; want it to name %s, %s and the fix %s", name, tc.field, err, name, tc.field, tc.fix)
				}
			}
		}
	}
	// Rules added, or fields the budget does not own, are fine.
	ok := []aws.RetryerV2{
		b.NewStandard(func(o *retry.StandardOptions) {
			o.Retryables = append(o.Retryables, retry.RetryableErrorCode{Codes: map[string]struct{}{"Busy": {}}})
		}),
		b.NewAdaptive(func(o *retry.AdaptiveModeOptions) { o.FailOnNoAttemptTokens = true }),
	}
	for i, r := range ok {
		if _, err := r.GetAttemptToken(context.Background()); err != nil {
			t.Errorf("retryer %d with allowed options: first call %v; want it made", i, err)
		}
	}
}
