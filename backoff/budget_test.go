package backoff_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	smithymiddleware "github.com/aws/smithy-go/middleware"

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

// callCtx returns a context carrying the call state CallStart gives a call.
func callCtx(t *testing.T) context.Context {
	var ctx context.Context
	_, _, err := backoff.CallStart().HandleInitialize(context.Background(), smithymiddleware.InitializeInput{},
		smithymiddleware.InitializeHandlerFunc(func(c context.Context, _ smithymiddleware.InitializeInput) (smithymiddleware.InitializeOutput, smithymiddleware.Metadata, error) {
			ctx = c
			return smithymiddleware.InitializeOutput{}, smithymiddleware.Metadata{}, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

// TestBudgetRetryerMatchesEachRetryWithItsOwnDelay: one retryer serves
// interleaved calls; the delay the budget computed for one call's retry
// does not count for another's, and a retry whose delay the budget never
// computed is refused with its token given back.
func TestBudgetRetryerMatchesEachRetryWithItsOwnDelay(t *testing.T) {
	bucket := backoff.NewTokenBucket(100)
	b := backoff.NewBudget(func(b *backoff.Budget) { b.MaxAttempts = 3; b.Bucket = bucket })
	r := b.NewStandard()
	ctxA, ctxB := callCtx(t), callCtx(t)
	errA := exception("internalServerException", `{}`, 0)
	errB := exception("internalServerException", `{}`, 0)
	for _, ctx := range []context.Context{ctxA, ctxB} {
		if _, err := r.GetAttemptToken(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.GetRetryToken(ctxA, errA); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GetRetryToken(ctxB, errB); err != nil {
		t.Fatal(err)
	}
	if _, err := r.RetryDelay(1, errA); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GetAttemptToken(ctxA); err != nil {
		t.Fatalf("call A's retry, delayed by the budget: %v", err)
	}
	// Call B's delay was never asked of the budget.
	_, err := r.GetAttemptToken(ctxB)
	if err == nil || !strings.Contains(err.Error(), "budget.NewStandard() unwrapped") {
		t.Fatalf("call B's retry, whose delay the budget did not compute: err %v; want a refusal naming budget.NewStandard()", err)
	}
	if got, want := bucket.Available(), uint(100-backoff.DefaultRetryCost); got != want {
		t.Errorf("bucket holds %d, want %d: A's retry keeps its token, B's refused retry gives its back", got, want)
	}
}
