package framing

import "sync"

// MaxPooledLen is the largest frame whose buffer comes from the shared pool;
// a larger frame gets a buffer of exactly its size (see Scanner).
const MaxPooledLen = 1 << 20

// KeepLen is the largest pooled buffer a scanner keeps between frames (see
// Scanner): what an idle stream may hold.
const KeepLen = 8 << 10

// Frame buffers are pooled in classes: powers of two from 1 KiB to 64 KiB,
// then multiples of 64 KiB up to MaxPooledLen. A frame of n bytes holds at
// most n-1 bytes more than it needs up to 64 KiB (at least 1 KiB for the
// smallest frames), and less than 64 KiB more above: the memory bound per
// stream stays one frame plus 64 KiB.
const (
	minPoolShift = 10
	maxPoolShift = 16
	stepLen      = 1 << maxPoolShift // the class step above 64 KiB
	powClasses   = maxPoolShift - minPoolShift + 1
)

var bufPools [powClasses + MaxPooledLen/stepLen - 1]sync.Pool

// poolClass returns the index in bufPools of the smallest class that holds
// size bytes, or -1 for a frame larger than MaxPooledLen.
func poolClass(size int) int {
	if size > MaxPooledLen {
		return -1
	}
	if size > stepLen {
		return powClasses + (size+stepLen-1)/stepLen - 2
	}
	for c := range powClasses {
		if size <= 1<<(minPoolShift+c) {
			return c
		}
	}
	return -1 // unreachable
}

// classLen returns the buffer length of class c.
func classLen(c int) int {
	if c < powClasses {
		return 1 << (minPoolShift + c)
	}
	return (c - powClasses + 2) * stepLen
}

// grow returns s.buf with length size, taking a buffer from the pool (or
// allocating one) when s holds none large enough.
func (s *Scanner) grow(size int) []byte {
	if cap(s.buf) >= size {
		s.buf = s.buf[:size]
		return s.buf
	}
	s.putBuf()
	c := poolClass(size)
	if c < 0 {
		// Exactly the declared length, never more than MaxFrameLen. Not
		// slices.Grow: it is append(nil, make(n)...), which allocates once
		// only thanks to a compiler optimization that -race and -N builds
		// turn off; there it allocated twice the declared length.
		s.buf = make([]byte, size)
		return s.buf
	}
	if p, ok := bufPools[c].Get().(*[]byte); ok {
		s.bufp = p
	} else {
		b := make([]byte, classLen(c))
		s.bufp = &b
	}
	s.buf = (*s.bufp)[:size]
	return s.buf
}

// putBuf gives s's buffer back to the pool it came from, or drops it.
func (s *Scanner) putBuf() {
	if s.bufp != nil {
		poison(*s.bufp)
		bufPools[poolClass(cap(*s.bufp))].Put(s.bufp)
	}
	s.buf, s.bufp = nil, nil
}

// Held returns the capacity of the frame buffer s holds now: 0 while it
// waits for a frame whose buffer comes from the pool.
func (s *Scanner) Held() int { return cap(s.buf) }
