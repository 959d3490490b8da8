package middleware

import (
	"testing"
)

// Review of issue 15, "Done when" 2: the read-ahead's "memory is bounded by
// ReadAheadLimit plus one frame whatever arrives"; DefaultReadAheadLimit's
// doc: "a stream holds at most its largest frame (the scanner's buffer) plus
// 64 KiB". The read-ahead appends non-content frames to a slice that grows
// by append's policy, so what it holds is the slice's capacity, not its
// length (which is all TestReadAheadMemoryIsBoundedWhateverArrives checks):
// with ordinary small messageStart-sized events the held capacity passes
// the bound by 8 KiB (and each growth briefly holds the old array too).
func TestDefect_ReadAheadCapacityPastLimit(t *testing.T) {
	one := event(t, "messageStart") // 72 bytes
	var frames [][]byte
	for i := 0; i < 2*DefaultReadAheadLimit/len(one); i++ {
		frames = append(frames, one)
	}
	frames = append(frames, event(t, "chunk"))
	b, _, err := body(t, nil, frames...)
	if err != nil {
		t.Fatal(err)
	}
	held := cap(b.pending) + cap(b.next)
	if bound := DefaultReadAheadLimit + len(one); held > bound {
		t.Fatalf("read-ahead holds %d bytes (pending cap %d, len %d; next cap %d), bound %d: the limit plus one %d-byte frame",
			held, cap(b.pending), len(b.pending), cap(b.next), bound, len(one))
	}
}
