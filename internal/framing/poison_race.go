//go:build race

package framing

// poison overwrites a buffer given back to the pool, in -race builds (the
// README's test command): a frame, payload or header value read after its
// buffer went back then reads 0xdb bytes instead of its own, and the race
// detector reports the read against this write when it happens on another
// goroutine.
func poison(b []byte) {
	for i := range b {
		b[i] = 0xdb
	}
}
