package backoff

// The retry tokens a budget's retryer takes (GetRetryToken) and finds again
// by the attempt's error (RetryDelay, the call's next attempt): see the
// retryer's doc comment in budget.go.

import (
	"reflect"
	"slices"
	"sync/atomic"
)

// maxTracked bounds retryer.loose. A token stays there only when the
// client's retryer answers RetryDelay itself (a wrapper such as
// retry.AddWithMaxBackoffDelay) on an operation without call state.
const maxTracked = 256

// retryToken is a retry token a budget's retryer took from its inner
// retryer, for the retry after the attempt that failed with err.
type retryToken struct {
	err      error
	ptrs     []error        // the pointer nodes of err's Unwrap chain, err's first
	values   []reflect.Type // the types of its other nodes
	release  func(error) error
	owner    *retryer    // the retryer that tracked it; nil if never tracked
	delayed  atomic.Bool // the budget's RetryDelay computed the wait before the retry
	refunded atomic.Bool
}

// refund gives the token back (once) when the budget refuses the retry it
// was taken for: the SDK's retry loop drops the release of a retry that
// is not made. t may be nil.
func (t *retryToken) refund() {
	if t != nil && t.release != nil && t.refunded.CompareAndSwap(false, true) {
		_ = t.release(nil)
	}
}

// track records t for RetryDelay, among the tokens of calls with call
// state (held: the call's state holds t) or the others. RetryDelay finds
// it by a pointer its error's Unwrap chain shares with t's error (see
// match). An error value (a struct or string type with value receivers)
// cannot be told apart from an equal one of another call failing at the
// same time, whose token it would take: a token whose error's chain holds
// no pointer is not tracked. It counts as delayed by the budget (its delay
// is not checked) and is not given back when RetryDelay refuses its retry.
func (r *retryer) track(t *retryToken, held bool) {
	t.ptrs, t.values = chain(t.err)
	if len(t.ptrs) == 0 {
		t.delayed.Store(true)
		return
	}
	t.owner = r
	r.mu.Lock()
	defer r.mu.Unlock()
	if held {
		r.calls = append(r.calls, t)
		return
	}
	if len(r.loose) >= maxTracked {
		r.loose = slices.Delete(r.loose, 0, 1) // no call state checks its delay: only its refund is lost
	}
	r.loose = append(r.loose, t)
}

// match marks the tokens whose retry RetryDelay's err may be asked for as
// delayed by the budget, and removes and returns the one it certainly is,
// or nil. A wrapper may wrap the attempt's error, differently in
// GetRetryToken and RetryDelay: the token is the one whose error's chain
// shares a pointer with err's, the first pointer of err's chain held by
// any token. When that pointer is held by several tokens (a package-level
// sentinel error returned by concurrent calls), which one is err's is
// ambiguous: no token is matched (none is given back) and each counts as
// delayed. When err's chain shares no pointer with any token but holds an
// error value, each token whose chain holds a value of the same type
// counts as delayed (a wrapper may have wrapped that value in
// GetRetryToken), none matched: never a false refusal.
func (r *retryer) match(err error) *retryToken {
	ptrs, values := chain(err)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range ptrs {
		var found *retryToken
		n := 0
		for _, tokens := range []*[]*retryToken{&r.calls, &r.loose} {
			for _, tt := range *tokens {
				if slices.Contains(tt.ptrs, p) { // no panic: p is a pointer
					found, n = tt, n+1
					tt.delayed.Store(true) // a candidate: none of them is refused
				}
			}
		}
		switch {
		case n == 1:
			r.remove(found)
			return found
		case n > 1:
			// Ambiguous: no token is this retry's for sure, none is
			// refunded. One loose candidate (without call state; the
			// oldest) is let go all the same, one per RetryDelay, so that
			// a collision does not leave them tracked and every later
			// retry with the same sentinel ambiguous too. Call tokens end
			// with their calls.
			for _, tt := range r.loose {
				if slices.Contains(tt.ptrs, p) {
					r.remove(tt)
					break
				}
			}
			return nil
		}
	}
	for _, tokens := range [][]*retryToken{r.calls, r.loose} {
		for _, tt := range tokens {
			if slices.ContainsFunc(values, func(v reflect.Type) bool { return slices.Contains(tt.values, v) }) {
				tt.delayed.Store(true)
			}
		}
	}
	return nil
}

// remove removes t from r's tokens, if r tracks it; r.mu is held.
func (r *retryer) remove(t *retryToken) {
	for _, tokens := range []*[]*retryToken{&r.calls, &r.loose} {
		if i := slices.Index(*tokens, t); i >= 0 {
			*tokens = slices.Delete(*tokens, i, i+1)
			return
		}
	}
}

// untrack removes t from its retryer's tokens; t may be nil.
func (t *retryToken) untrack() {
	if t != nil && t.owner != nil {
		t.owner.mu.Lock()
		defer t.owner.mu.Unlock()
		t.owner.remove(t)
	}
}

// holds reports whether target, a pointer, is err or in err's Unwrap
// chain, by identity (errors.Is would also ask Is methods, which may match
// another call's error).
func holds(err, target error) bool {
	ptrs, _ := chain(err)
	return slices.Contains(ptrs, target)
}

// chain returns the nodes of err's Unwrap chain (err included, depth
// first) whose dynamic type is a pointer, and the types of the others.
func chain(err error) (ptrs []error, values []reflect.Type) {
	var walk func(error)
	walk = func(err error) {
		for err != nil {
			if ty := reflect.TypeOf(err); ty.Kind() == reflect.Pointer {
				ptrs = append(ptrs, err)
			} else {
				values = append(values, ty)
			}
			switch u := err.(type) {
			case interface{ Unwrap() error }:
				err = u.Unwrap()
			case interface{ Unwrap() []error }:
				for _, e := range u.Unwrap() {
					walk(e)
				}
				return
			default:
				return
			}
		}
	}
	walk(err)
	return ptrs, values
}
