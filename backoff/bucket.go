package backoff

import (
	"context"
	"fmt"
	"sync"
)

// TokenBucket is a retry quota: every retry takes tokens, successes put
// tokens back, and an empty bucket stops retries. One bucket may be shared
// by any number of retryers and clients (for example the bedrockruntime
// clients of two regions); it is safe for concurrent use.
//
// TokenBucket implements retry.RateLimiter, so it also plugs directly into
// retry.StandardOptions.RateLimiter.
type TokenBucket struct {
	mu       sync.Mutex
	tokens   uint
	capacity uint
}

// NewTokenBucket returns a full bucket of the given capacity.
func NewTokenBucket(capacity uint) *TokenBucket {
	return &TokenBucket{tokens: capacity, capacity: capacity}
}

// QuotaExceededError is returned when the bucket holds fewer tokens than a
// retry costs.
type QuotaExceededError struct {
	// Cost is what the retry needed; Available is what the bucket held.
	Cost, Available uint
}

// Error says how many tokens the retry needed and how many were left.
func (e *QuotaExceededError) Error() string {
	return fmt.Sprintf("retry quota exceeded: a retry costs %d tokens, %d are left; "+
		"the shared retry bucket refills as calls succeed", e.Cost, e.Available)
}

// GetToken takes cost tokens. The returned release puts them back (the SDK
// calls it when the retry succeeds). Like the SDK's own limiter, it takes
// nothing for a context that is already done and returns its error.
func (t *TokenBucket) GetToken(ctx context.Context, cost uint) (release func() error, err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("streamstatus: retry token not taken: %w", err)
	}
	if !t.take(cost) {
		return nil, &QuotaExceededError{Cost: cost, Available: t.Available()}
	}
	return func() error { return t.AddTokens(cost) }, nil
}

func (t *TokenBucket) take(cost uint) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cost > t.tokens {
		return false
	}
	t.tokens -= cost
	return true
}

// AddTokens puts n tokens back, up to the capacity.
func (t *TokenBucket) AddTokens(n uint) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tokens = min(t.tokens+n, t.capacity)
	return nil
}

// Available returns the tokens in the bucket now.
func (t *TokenBucket) Available() uint {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.tokens
}

// Capacity returns the bucket's capacity.
func (t *TokenBucket) Capacity() uint { return t.capacity }
