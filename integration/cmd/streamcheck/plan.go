package main

// This file is what a parsed SPEC means for each call: which faults call n
// gets (the same for any concurrency, from the seed), which of its attempts
// see them, and what the client must see as a result.

// appliesTo reports whether r applies to attempt of a call of operation op.
func (r *rule) appliesTo(op string, attempt int) bool {
	if r.op != "" && r.op != op {
		return false
	}
	if r.kind.name == "anthropicError" && op != opInvokeStream {
		return false
	}
	if !r.kind.http && op != opConverseStream && op != opInvokeStream {
		return false // stream faults need a stream
	}
	return r.attempts == 0 || attempt <= r.attempts
}

// pick is what a SPEC chose for one call, before attempts and operation
// are taken into account.
type pick struct {
	ending *rule   // at most one fault that ends or replaces the stream
	slows  []*rule // pauses
}

// choose picks the faults of call number n (1-based). The choice depends
// only on the spec, the seed and n, so a run is reproducible whatever the
// concurrency.
func (s *faultSpec) choose(seed int64, n int) pick {
	var p pick
	for _, r := range s.rules {
		if r.kind.ending && r.call == n {
			p.ending = r
			break
		}
	}
	if p.ending == nil {
		u := draw(seed, n, 0)
		var acc float64
		for _, r := range s.rules {
			if !r.kind.ending || r.call != 0 {
				continue
			}
			acc += r.p
			if u < acc {
				p.ending = r
				break
			}
		}
	}
	for i, r := range s.rules {
		if r.kind.ending {
			continue
		}
		if r.call == n || (r.call == 0 && draw(seed, n, i+1) < r.p) {
			p.slows = append(p.slows, r)
		}
	}
	return p
}

// forAttempt narrows a pick to the faults one attempt of an operation sees.
func (p pick) forAttempt(op string, attempt int) pick {
	var out pick
	if p.ending != nil && p.ending.appliesTo(op, attempt) {
		out.ending = p.ending
	}
	for _, r := range p.slows {
		if r.appliesTo(op, attempt) {
			out.slows = append(out.slows, r)
		}
	}
	return out
}

// draw returns a number in [0, 1) determined by seed, call number and
// stream (0 for the ending draw, i+1 for rule i's own draw): a SplitMix64
// hash, so draws are independent of the order calls arrive in.
func draw(seed int64, n, stream int) float64 {
	x := uint64(seed)*0x9e3779b97f4a7c15 ^ uint64(n)*0xbf58476d1ce4e5b9 ^ uint64(stream)*0x94d049bb133111eb
	for i := 0; i < 2; i++ {
		x ^= x >> 30
		x *= 0xbf58476d1ce4e5b9
		x ^= x >> 27
		x *= 0x94d049bb133111eb
		x ^= x >> 31
	}
	return float64(x>>11) / (1 << 53)
}
