package backoff

import "context"

// WaitLate waits until every Redis script run of b that outlived its
// deadline has ended (goleak counts them otherwise).
func WaitLate(b *RedisBucket) { b.late.Wait() }

// TakeScript, ReleaseScript and CancelScript run one script of b for the
// take id, as a RedisBucket does, and return its {status, tokens} answer.
func TakeScript(b *RedisBucket, id string, n uint) (int64, uint, error) {
	return answer(b.eval(context.Background(), takeScript, id, n))
}

func ReleaseScript(b *RedisBucket, id string, n uint) (int64, uint, error) {
	return answer(b.eval(context.Background(), releaseScript, id, n))
}

func CancelScript(b *RedisBucket, id string, n uint) (int64, uint, error) {
	return answer(b.eval(context.Background(), cancelScript, id, n))
}

func answer(r scriptResult) (int64, uint, error) { return r.status, r.tokens, r.err }

// Tracked returns how many retry tokens r, a budget's retryer, tracks.
func Tracked(r any) int {
	rr := r.(*retryer)
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return len(rr.calls) + len(rr.loose)
}

// SameQuota reports whether a and b keep their tokens in one Redis key.
func SameQuota(a, b *RedisBucket) bool { return a.sameQuota(b) }
