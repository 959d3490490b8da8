package backoff_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/retry"

	"github.com/streamstatus/streamstatus/backoff"
)

// TestBudgetNotBuiltByNewBudgetFailsEveryPath: a Budget literal has none of
// NewBudget's defaults (no clock, no bucket, no costs). Every way it can
// enter a call fails with an error naming backoff.NewBudget, none panics.
func TestBudgetNotBuiltByNewBudgetFailsEveryPath(t *testing.T) {
	lit := &backoff.Budget{MaxAttempts: 2}
	mse := exception("internalServerException", `{}`, 0)
	wantNewBudget := func(path string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "backoff.NewBudget") {
			t.Errorf("%s: err %v; want an error naming backoff.NewBudget", path, err)
		}
	}
	wantNewBudget("Validate", lit.Validate())
	wantNewBudget("Validate on nil", (*backoff.Budget)(nil).Validate())
	if err := backoff.NewBudget().Validate(); err != nil {
		t.Errorf("Validate on NewBudget(): %v", err)
	}
	_, err := lit.NewStandard().GetAttemptToken(context.Background())
	wantNewBudget("NewStandard().GetAttemptToken", err)
	_, err = lit.NewAdaptive().GetAttemptToken(context.Background())
	wantNewBudget("NewAdaptive().GetAttemptToken", err)
	_, err = lit.BackoffDelay(1, mse)
	wantNewBudget("BackoffDelay", err)

	// retry.NewStandard(lit.StandardOptions): the SDK keeps its own rate
	// limiter (the literal has no bucket), and the delay is refused.
	sdk := retry.NewStandard(lit.StandardOptions)
	if _, err := sdk.GetRetryToken(context.Background(), mse); err != nil {
		t.Errorf("retry.NewStandard(lit.StandardOptions).GetRetryToken: %v", err)
	}
	_, err = sdk.RetryDelay(1, mse)
	wantNewBudget("retry.NewStandard(lit.StandardOptions).RetryDelay", err)

	open, n := script(attempt{events: []string{"a"}})
	err = backoff.RetryStream(context.Background(), lit, open, func(string) error { return nil })
	wantNewBudget("RetryStream", err)
	if *n != 0 {
		t.Errorf("RetryStream with a literal budget opened the stream %d times; want 0", *n)
	}
}
