package framing_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"runtime"
	"testing"

	"github.com/streamstatus/streamstatus/internal/framing"
)

// TestScannerAllocationBoundedByClaim sweeps the length a frame prelude
// claims, from the 16-byte minimum to 4 GiB, each time with a valid prelude
// CRC and a body far shorter than claimed (DESIGN.md §5 invariant 3):
//   - a claim within MaxFrameLen allocates at most the claimed length (the
//     allocator's size class included) and fails as truncated;
//   - a larger claim, or a headers length the total has no room for, is
//     rejected before anything is allocated for the frame.
//
// It measures bytes allocated, not only the buffer's capacity: under
// go test -race the scanner used to allocate twice the claim (slices.Grow
// allocates once only thanks to a compiler optimization that instrumented
// builds turn off).
func TestScannerAllocationBoundedByClaim(t *testing.T) {
	const slack = 4 << 10 // the error value and its message
	claims := []uint32{16, 17, 100, 4 << 10, 64 << 10, 1 << 20, framing.MaxFrameLen - 1, framing.MaxFrameLen,
		framing.MaxFrameLen + 1, 1 << 25, 1 << 30, 1 << 31, 0xfffffff0, 0xffffffff}
	for _, claim := range claims {
		t.Run(fmt.Sprint(claim), func(t *testing.T) {
			body := bytes.Repeat([]byte{'x'}, int(min(claim-framing.PreludeLen-1, 10)))
			in := append(scanPrelude(claim, scanClaimHeaders(claim)), body...)
			s := framing.NewScanner(bytes.NewReader(in))
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := s.Next()
			runtime.ReadMemStats(&after)
			allocated := after.TotalAlloc - before.TotalAlloc
			bufCap := framing.ScannerBufCap(s)
			if claim > framing.MaxFrameLen {
				if !errors.Is(err, framing.ErrPreludeLength) || bufCap != 0 || allocated > slack {
					t.Fatalf("error %v, frame buffer %d bytes, %d bytes allocated; want ErrPreludeLength and nothing allocated", err, bufCap, allocated)
				}
				if n := testing.AllocsPerRun(20, func() { _, _ = framing.NewScanner(bytes.NewReader(in)).Next() }); n > 8 {
					t.Errorf("%v allocations to reject the prelude", n)
				}
				return
			}
			limit := uint64(claim) + uint64(claim)/8 + slack
			if !errors.Is(err, framing.ErrTruncated) || bufCap < int(claim) || uint64(bufCap) > limit || allocated > limit {
				t.Fatalf("error %v, frame buffer %d bytes, %d bytes allocated; want ErrTruncated and at most %d bytes", err, bufCap, allocated, limit)
			}
		})
	}
}

// TestScannerHeadersLengthClaim: a headers length the frame has no room
// for (up to 4 GiB) is rejected from the prelude alone, before any
// allocation, whatever the total.
func TestScannerHeadersLengthClaim(t *testing.T) {
	for _, c := range []struct{ total, headers uint32 }{
		{16, 1}, {100, 85}, {framing.MaxFrameLen, framing.MaxFrameLen - 15}, {framing.MaxFrameLen, 0xffffffff},
	} {
		p := binary.BigEndian.AppendUint32(nil, c.total)
		p = binary.BigEndian.AppendUint32(p, c.headers)
		p = binary.BigEndian.AppendUint32(p, crc32.ChecksumIEEE(p))
		s := framing.NewScanner(bytes.NewReader(append(p, "short"...)))
		if _, err := s.Next(); !errors.Is(err, framing.ErrPreludeLength) || framing.ScannerBufCap(s) != 0 {
			t.Errorf("total %d headers %d: error %v, frame buffer %d bytes; want ErrPreludeLength, nothing allocated",
				c.total, c.headers, err, framing.ScannerBufCap(s))
		}
	}
}
