package framing_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/streamstatus/streamstatus/internal/framing"
)

// The format's limits (smithy, "Amazon Event Stream Specification",
// https://smithy.io/2.0/aws/amazon-eventstream.html): a payload of at most
// 25,165,824 bytes (24 MiB), encoded headers of at most 131,072 bytes
// (128 KiB).
const (
	formatMaxPayload = 24 << 20
	formatMaxHeaders = 128 << 10
)

// limitHeaders is a header block of exactly n bytes (n >= 4): string
// headers of up to 32 KiB each, the last one sized to fill the block.
func limitHeaders(n int) []byte {
	var block []byte
	for i := 0; len(block) < n; i++ {
		left := n - len(block)
		name := string(rune('a' + i))
		const overhead = 1 + 1 + 1 + 2 // name length, name, type, value length
		size := min(left-overhead, 32<<10)
		if rest := left - overhead - size; rest > 0 && rest < overhead { // leave room for a whole last header
			size -= overhead
		}
		block = append(block, scanStr(name, strings.Repeat("h", size))...)
	}
	return block
}

// TestScannerFrameLimitsFollowTheFormat: a frame at the format's limits is
// accepted; one byte more of payload or of headers is rejected with
// ErrPreludeLength and a message that names the limit.
func TestScannerFrameLimitsFollowTheFormat(t *testing.T) {
	hdr := scanStr(":message-type", "event")
	for _, tc := range []struct {
		name       string
		headers    []byte
		payload    int
		wantDetail string // "" means accepted
	}{
		{"payload 17 MiB", hdr, 17 << 20, ""},
		{"payload at the limit", hdr, formatMaxPayload, ""},
		{"payload one byte over", hdr, formatMaxPayload + 1, "payload length 25165825 exceeds the event-stream limit of 25165824 bytes"},
		{"headers at the limit", limitHeaders(formatMaxHeaders), 10, ""},
		{"headers one byte over", limitHeaders(formatMaxHeaders + 1), 10, "headers length 131073 exceeds the event-stream limit of 131072 bytes"},
		{"both at the limit", limitHeaders(formatMaxHeaders), formatMaxPayload, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload := bytes.Repeat([]byte{'p'}, tc.payload)
			in := scanFrame(tc.headers, payload)
			s := framing.NewScanner(bytes.NewReader(in))
			f, err := s.Next()
			if tc.wantDetail == "" {
				if err != nil {
					t.Fatalf("valid frame (%d header bytes, %d payload bytes) rejected: %v", len(tc.headers), tc.payload, err)
				}
				if len(f.Payload()) != tc.payload || len(f.Bytes()) != len(in) {
					t.Fatalf("payload %d bytes, frame %d; want %d, %d", len(f.Payload()), len(f.Bytes()), tc.payload, len(in))
				}
				return
			}
			var fe *framing.FrameError
			if !errors.As(err, &fe) || !errors.Is(err, framing.ErrPreludeLength) || !strings.Contains(err.Error(), tc.wantDetail) {
				t.Fatalf("error %v, want ErrPreludeLength naming %q", err, tc.wantDetail)
			}
			if s.Offset() != framing.PreludeLen || framing.ScannerBufCap(s) != 0 {
				t.Fatalf("rejected after %d bytes with a %d-byte buffer; want the prelude only, nothing allocated", s.Offset(), framing.ScannerBufCap(s))
			}
		})
	}
}
