package middleware

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go/eventstream"

	"github.com/streamstatus/streamstatus/internal/streamerr"
)

// errReadPastFrame fails a read the read-ahead should never make.
var errReadPastFrame = errors.New("test: the read-ahead read past the frame it should have stopped at")

// TestReadAheadEndsAtFramesThatAreNotEvents: a frame that is neither an
// event nor a failure (an unknown :message-type, or none) ends the
// read-ahead. It is handed to the SDK, which reports it; the plugin does not
// wait for more bytes first (the bare SDK would not) nor hold such frames
// without limit.
func TestReadAheadEndsAtFramesThatAreNotEvents(t *testing.T) {
	big := strings.Repeat("x", 40<<10)
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"unknown message type", frame(t, "future", "", "", big)},
		{"no message type", noTypeFrame(t, big)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head := append(event(t, "messageStart"), tc.frame...)
			src := &closeRecorder{Reader: io.MultiReader(bytes.NewReader(head), failingReader{errReadPastFrame})}
			b := newStreamBody(context.Background(), src, streamerr.Stream{Service: "Bedrock Runtime"}, resolve(nil))
			if err := b.readAhead(); err != nil {
				t.Fatalf("readAhead: %v", err)
			}
			held := len(b.pending) + len(b.next)
			if held != len(head) {
				t.Fatalf("read-ahead holds %d bytes, want the %d of messageStart and the frame", held, len(head))
			}
			got := make([]byte, len(head))
			if _, err := io.ReadFull(b, got); err != nil || !bytes.Equal(got, head) {
				t.Fatalf("replay: %v", err)
			}
		})
	}
}

// TestReadAheadMemoryIsBoundedWhateverArrives: frames before content of any
// kind never make the read-ahead hold more than its limit plus one frame.
func TestReadAheadMemoryIsBoundedWhateverArrives(t *testing.T) {
	const limit = 16 << 10
	one := frame(t, "future", "", "", strings.Repeat("y", 1000))
	frames := [][]byte{event(t, "messageStart")}
	for i := 0; i < 500; i++ { // ~500 KB of frames the SDK does not know
		frames = append(frames, one)
	}
	frames = append(frames, event(t, "chunk"))
	b, _, err := body(t, []Option{func(o *Options) { o.ReadAheadLimit = limit }}, frames...)
	if err != nil {
		t.Fatal(err)
	}
	if held := len(b.pending) + len(b.next); held > limit+len(one) {
		t.Fatalf("read-ahead holds %d bytes, limit %d plus one frame of %d", held, limit, len(one))
	}
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

// noTypeFrame is an event-stream frame without a :message-type header.
func noTypeFrame(t testing.TB, payload string) []byte {
	t.Helper()
	var m eventstream.Message
	m.Headers.Set(eventstream.EventTypeHeader, eventstream.StringValue("chunk"))
	m.Payload = []byte(payload)
	var buf bytes.Buffer
	if err := eventstream.NewEncoder().Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestStallTimeoutsAllocateNothingPerFrame: with both timeouts on, a
// healthy stream's cost is a constant per stream (the timer), nothing per
// frame.
func TestStallTimeoutsAllocateNothingPerFrame(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts per frame are exact only without -race (see race_on_test.go)")
	}
	perStream := func(frames int, opts ...Option) float64 {
		stream := bytes.Repeat(event(t, "chunk"), frames)
		r := resolve(opts)
		src := &closeRecorder{}
		buf := make([]byte, 4096)
		return testing.AllocsPerRun(20, func() { _ = drainBody(t, src, stream, r, buf).Close() })
	}
	on := []Option{WithFirstEventTimeout(time.Minute), WithIdleTimeout(time.Minute)}
	off10, off1000 := perStream(10), perStream(1000)
	on10, on1000 := perStream(10, on...), perStream(1000, on...)
	t.Logf("allocations per stream: 10 frames %v (timeouts off) %v (on); 1000 frames %v / %v", off10, on10, off1000, on1000)
	if on1000 != on10 || off1000 != off10 {
		t.Fatalf("allocations grow with frames: 10 frames %v/%v, 1000 frames %v/%v (off/on)", off10, on10, off1000, on1000)
	}
}

// BenchmarkPassThrough: 1- and 1,000-frame streams through the stream
// body, with and without the stall timeouts (the per-stream and the
// per-frame cost). Compare ns/op and allocs/op:
//
//	go test -run '^$' -bench PassThrough -count 6 ./middleware/
func BenchmarkPassThrough(b *testing.B) {
	for _, frames := range []int{1, 1000} {
		stream := bytes.Repeat(event(b, "chunk"), frames)
		for _, bc := range []struct {
			name string
			opts []Option
		}{
			{"timeouts=off", nil},
			{"timeouts=on", []Option{WithFirstEventTimeout(time.Minute), WithIdleTimeout(time.Minute)}},
		} {
			b.Run(fmt.Sprintf("frames=%d/%s", frames, bc.name), func(b *testing.B) {
				r := resolve(bc.opts)
				src := &closeRecorder{}
				buf := make([]byte, 4096)
				b.ReportAllocs()
				b.SetBytes(int64(len(stream)))
				for b.Loop() {
					_ = drainBody(b, src, stream, r, buf).Close()
				}
			})
		}
	}
}
