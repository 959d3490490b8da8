package integration_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/streamstatus/streamstatus/backoff"
	"github.com/streamstatus/streamstatus/integration/fake"
)

// TestRetryStreamRerunCountsAsARetry: RetryStream and the SDK's retryer
// (standard or adaptive, built from the budget) share one bucket with the
// SDK's quota semantics. A stream that fails after content is run again
// with a retry token; the SDK saw the first run's attempt succeed (+1). If
// the rerun's first attempt succeeds, the retry's tokens come back and the
// SDK adds no second first-attempt refund: net +1. If it fails and the SDK
// retries it, the retry RetryStream paid for failed: its tokens are lost,
// the SDK's own retry gets its tokens back: net +1 - 14.
func TestRetryStreamRerunCountsAsARetry(t *testing.T) {
	content, _ := invokeStream.content(2, "partial")
	broken := fake.Response{Steps: steps(content, []fake.Step{fake.Exception("serviceUnavailableException", "busy")})}
	clean, _ := invokeStream.healthy(2, "ok")
	busy := fake.Response{Steps: []fake.Step{fake.Exception("serviceUnavailableException", "busy")}}
	for _, mode := range []string{"standard", "adaptive"} {
		for _, tc := range []struct {
			name  string
			rerun []fake.Response
			calls int
			want  uint
		}{
			{"rerun succeeds", []fake.Response{{Steps: clean}}, 2, 50 + backoff.DefaultSuccessRefund},
			{"rerun retried by the SDK", []fake.Response{busy, {Steps: clean}}, 3, 50 + backoff.DefaultSuccessRefund - backoff.DefaultRetryCost},
		} {
			srv := newServer(t)
			srv.Enqueue(append([]fake.Response{broken}, tc.rerun...)...)
			bucket := backoff.NewTokenBucket(100)
			if _, err := bucket.GetToken(context.Background(), 50); err != nil {
				t.Fatal(err)
			}
			b := immediateBudget(func(b *backoff.Budget) { b.Bucket = bucket })
			err := backoff.RetryStream(context.Background(), b, openInvoke(budgetClient(srv, b, mode)), func(types.ResponseStream) error { return nil },
				func(o *backoff.StreamOptions) { o.Reset = func(int, error) error { return nil } })
			if err != nil || srv.CallCount() != tc.calls {
				t.Fatalf("%s, %s: err %v, %d server calls; want success after %d", mode, tc.name, err, srv.CallCount(), tc.calls)
			}
			if got := bucket.Available(); got != tc.want {
				t.Errorf("%s, %s: bucket holds %d tokens; want %d", mode, tc.name, got, tc.want)
			}
		}
	}
}
