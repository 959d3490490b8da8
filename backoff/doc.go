// Package backoff says how much retrying a program can afford: retry
// budgets (attempts, elapsed time, backoff shape, a token bucket shared by
// any number of clients) built on github.com/cenkalti/backoff/v4, and
// RetryStream, the stream-level recovery for failures after content.
//
//	go get github.com/streamstatus/streamstatus
//	budget := backoff.NewBudget(func(b *backoff.Budget) { b.MaxAttempts = 4 })
//	client := bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock(middleware.WithBudget(budget)))
//
// A Budget plugs into the SDK's own retryer; it does not replace the SDK's
// retry loop. [Budget.NewStandard] and [Budget.NewAdaptive] build the SDK's
// standard and adaptive retryers with the budget's attempts, backoff shapes
// and token bucket; [Budget.StandardOptions] and [Budget.AdaptiveOptions]
// are the same as option functions for retry.NewStandard and
// retry.NewAdaptiveMode. Throttles back off with their own, longer shape
// (the SDK's convention), and a modelStreamErrorException whose provider
// answered 429 counts as a throttle.
//
// The SDK's retry loop ends when the operation returns; a stream that fails
// after content is beyond it. [RetryStream] re-runs such a call as a whole,
// with delays and budget from the same Budget, and never delivers an event
// twice unless the caller's reset callback ran in between.
package backoff
