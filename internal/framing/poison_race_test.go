//go:build race

package framing_test

import (
	"bytes"
	"testing"

	"github.com/streamstatus/streamstatus/internal/framing"
)

// TestPooledBufferPoisonedOnReturn: under -race a frame buffer that goes
// back to the pool is overwritten, so a frame kept past the next call to
// Next reads garbage (which the tests that check every event's bytes
// catch) instead of, by luck, its old bytes.
func TestPooledBufferPoisonedOnReturn(t *testing.T) {
	one := scanEncode(t, scanBedrockChunk())
	// A frame of another size class next, so the first one's buffer is not
	// taken again at once.
	s := framing.NewScanner(bytes.NewReader(append(bytes.Clone(one), scanFrame(nil, make([]byte, 5000))...)))
	f, err := s.Next()
	if err != nil {
		t.Fatal(err)
	}
	kept := f.Bytes()
	if !bytes.Equal(kept, one) {
		t.Fatal("first frame wrong")
	}
	if _, err := s.Next(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(kept, bytes.Repeat([]byte{0xdb}, len(kept))) {
		t.Fatal("the first frame's buffer went back to the pool unpoisoned")
	}
}
