package backoff_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/streamstatus/streamstatus/backoff"
)

// A token bucket is the retry quota every retryer of a budget draws on: a
// retry takes its cost, the release gives it back, and an empty bucket
// refuses with a *QuotaExceededError.
func ExampleNewTokenBucket() {
	bucket := backoff.NewTokenBucket(20)
	budget := backoff.NewBudget(func(b *backoff.Budget) { b.Bucket = bucket })

	release, err := budget.Bucket.GetToken(context.Background(), backoff.DefaultRetryCost)
	fmt.Println(err, bucket.Available())
	_, err = bucket.GetToken(context.Background(), backoff.DefaultRetryCost)
	var quota *backoff.QuotaExceededError
	fmt.Println(errors.As(err, &quota), quota.Cost, quota.Available)
	_ = release()
	fmt.Println(bucket.Available())
	// Output:
	// <nil> 6
	// true 14 6
	// 20
}
