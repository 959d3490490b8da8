package framing

import "testing"

// TestPoolClasses: every frame size up to MaxPooledLen maps to the smallest
// class that holds it, wasting less than the frame (up to 64 KiB) or less
// than 64 KiB (above); larger frames are not pooled.
func TestPoolClasses(t *testing.T) {
	prev := 0
	for c := range bufPools {
		if classLen(c) <= prev {
			t.Fatalf("class %d (%d bytes) not above class %d (%d)", c, classLen(c), c-1, prev)
		}
		prev = classLen(c)
	}
	if classLen(len(bufPools)-1) != MaxPooledLen {
		t.Fatalf("largest class %d, want MaxPooledLen %d", classLen(len(bufPools)-1), MaxPooledLen)
	}
	for size := 1; size <= MaxPooledLen+1; size += 1 + size/97 {
		c := poolClass(size)
		if size > MaxPooledLen {
			if c != -1 {
				t.Fatalf("size %d pooled in class %d", size, c)
			}
			continue
		}
		n := classLen(c)
		if n < size || (c > 0 && classLen(c-1) >= size) {
			t.Fatalf("size %d in class %d (%d bytes): not the smallest that holds it", size, c, n)
		}
		if waste := n - size; waste >= max(size, 1024) && waste >= 64<<10 {
			t.Fatalf("size %d wastes %d bytes in class %d", size, waste, c)
		}
	}
	for _, size := range []int{MaxPooledLen, MaxPooledLen - 1, 64<<10 + 1, 64 << 10, 1024, 1025} {
		if c := poolClass(size); c < 0 || classLen(c) < size {
			t.Fatalf("size %d: class %d", size, c)
		}
	}
}
