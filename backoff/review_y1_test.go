package backoff_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"

	"github.com/streamstatus/streamstatus/backoff"
)

// TestDefect_ManyPendingRetriesLetReplacedDelayThrough: config-wide, with
// the streamstatus middlewares (call state), "the first retry the wrapper
// delayed is refused, naming the fix (its retry token is given back)". One
// client's retryer serves every call at once: when more than 256 calls
// wait out a retry at the same time (a throttle storm), the oldest
// tracked token is forgotten and taken as delayed by the budget, although
// the call state still holds it. That call's retry, delayed by
// retry.AddWithMaxBackoffDelay, is made, and its token kept. The SDK's
// retry loop is followed step by step: GetAttemptToken, GetRetryToken,
// RetryDelay, GetAttemptToken.
func TestDefect_ManyPendingRetriesLetReplacedDelayThrough(t *testing.T) {
	bucket := backoff.NewTokenBucket(1 << 20)
	b := backoff.NewBudget(func(b *backoff.Budget) {
		b.Bucket = bucket
		b.Transient, b.Throttle = backoff.Immediate, backoff.Immediate
	})
	r := retry.AddWithMaxBackoffDelay(b.NewStandard(), 1).(aws.RetryerV2) // replaces the budget's RetryDelay
	first := callCtx(t)
	if _, err := r.GetAttemptToken(first); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GetRetryToken(first, exception("internalServerException", `{}`, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.RetryDelay(1, exception("internalServerException", `{}`, 0)); err != nil {
		t.Fatal(err)
	}
	// 256 other calls of the same client fail and wait out their retries.
	for range 256 {
		ctx := callCtx(t)
		if _, err := r.GetAttemptToken(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := r.GetRetryToken(ctx, exception("internalServerException", `{}`, 0)); err != nil {
			t.Fatal(err)
		}
	}
	before := bucket.Available()
	_, err := r.GetAttemptToken(first)
	if err == nil || !strings.Contains(err.Error(), "budget.NewStandard() unwrapped") {
		t.Errorf("the first call's retry, delayed by the wrapper: err %v; want it refused naming budget.NewStandard()", err)
	}
	if got, want := bucket.Available(), before+backoff.DefaultRetryCost; got != want {
		t.Errorf("bucket holds %d, want %d (the refused retry's token given back)", got, want)
	}
}
