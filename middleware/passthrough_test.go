package middleware

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/aws/smithy-go/eventstream"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/aws/smithy-go/transport/http/protocol/restjson1"

	"github.com/streamstatus/streamstatus/internal/framing"
	"github.com/streamstatus/streamstatus/internal/streamerr"
	"github.com/streamstatus/streamstatus/smithyext"
)

// bigChunk is an InvokeModelWithResponseStream chunk frame whose bytes are
// content of size bytes (a frame far above passWhole).
func bigChunk(t testing.TB, content string) []byte {
	return frame(t, "event", eventstream.EventTypeHeader, "chunk",
		`{"bytes":"`+base64.StdEncoding.EncodeToString([]byte(content))+`"}`)
}

// invokeBody is body() for InvokeModelWithResponseStream, whose chunks the
// envelope detector inspects, read through r's reads.
func invokeBody(t *testing.T, src io.Reader) *streamBody {
	t.Helper()
	info := streamerr.Stream{Service: "Bedrock Runtime", Operation: "InvokeModelWithResponseStream"}
	b := newStreamBody(context.Background(), &closeRecorder{Reader: src}, info, resolve(nil))
	if err := b.readAhead(); err != nil {
		t.Fatalf("readAhead: %v", err)
	}
	return b
}

// TestLargeEventsPassThroughByteForByte: after content, frames above
// passWhole are handed on in parts (head, payload from the connection,
// CRC) and the SDK's reader sees exactly the stream, whatever the sizes of
// its reads and of the connection's; the body never held such a frame in
// the scanner's buffer.
func TestLargeEventsPassThroughByteForByte(t *testing.T) {
	content := `{"type":"content_block_delta","delta":{"text":"` + strings.Repeat("a", 90<<10) + `"}}`
	frames := [][]byte{bigChunk(t, `{"type":"message_start"}`)}
	for i := range 5 {
		frames = append(frames, bigChunk(t, content[:len(content)-i*1000]))
	}
	frames = append(frames, bigChunk(t, `{"type":"message_stop"}`))
	want := bytes.Join(frames, nil)
	for _, rs := range []struct {
		name       string
		src, reads int // largest read of the connection and of the SDK
	}{{"whole reads", 1 << 20, 1 << 20}, {"small reads", 1000, 333}, {"byte reads", 7, 1}} {
		t.Run(rs.name, func(t *testing.T) {
			b := invokeBody(t, &chunkedReader{data: want, max: rs.src})
			var got []byte
			passed := 0
			for {
				p := make([]byte, rs.reads)
				n, err := b.Read(p)
				got = append(got, p[:n]...)
				if b.passing {
					passed++
					if c := b.scan.Held(); c > 4<<10 {
						t.Fatalf("while passing a frame through, the scanner holds a %d-byte buffer", c)
					}
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("after %d bytes: %v", len(got), err)
				}
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("the SDK's reader saw %d bytes, not the stream's %d byte for byte", len(got), len(want))
			}
			if passed == 0 {
				t.Fatal("no frame was passed through in parts")
			}
			if b.info.Events != len(frames) {
				t.Fatalf("events counted %d, want %d", b.info.Events, len(frames))
			}
		})
	}
}

// TestLargeFailuresAfterContentAreTyped: a large frame after content that
// must not reach the SDK (an exception, an envelope, a damaged or cut-off
// event) ends the stream with our typed error, and the SDK's reader never
// receives the whole frame.
func TestLargeFailuresAfterContentAreTyped(t *testing.T) {
	first := bigChunk(t, `{"type":"content_block_delta"}`)
	big := bigChunk(t, strings.Repeat("b", 40<<10))
	damaged := bytes.Clone(big)
	damaged[len(damaged)/2] ^= 1
	envelope := bigChunk(t, `{"type":"error","error":{"type":"overloaded_error","message":"`+strings.Repeat("m", 40<<10)+`"}}`)
	lateEnvelope := bigChunk(t, `{"pad":"`+strings.Repeat("p", 40<<10)+`","type":"error","error":{"type":"overloaded_error","message":"m"}}`)
	exception := frame(t, "exception", eventstream.ExceptionTypeHeader, "throttlingException",
		`{"message":"`+strings.Repeat("t", 40<<10)+`"}`)
	for _, tc := range []struct {
		name   string
		last   []byte
		cut    int // bytes of last sent
		code   string
		frameE error // the FrameError sentinel, for read failures
	}{
		{"exception", exception, len(exception), "ThrottlingException", nil},
		{"envelope", envelope, len(envelope), "overloaded_error", nil},
		{"envelope after a long first key", lateEnvelope, len(lateEnvelope), "overloaded_error", nil},
		{"damaged event", damaged, len(damaged), "", framing.ErrMessageCRC},
		{"event cut in its payload", big, len(big) / 2, "", framing.ErrTruncated},
		{"event cut in its CRC", big, len(big) - 2, "", framing.ErrTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := append(bytes.Clone(first), big...)
			stream = append(stream, tc.last[:tc.cut]...)
			b := invokeBody(t, &chunkedReader{data: stream, max: 4096})
			got, err := io.ReadAll(readerFunc(func(p []byte) (int, error) { return b.Read(p[:min(len(p), 1500)]) }))
			var se *smithyext.StatusError
			if !errors.As(err, &se) {
				t.Fatalf("stream ended with %v, want a *smithyext.StatusError", err)
			}
			if tc.code != "" && se.Code != tc.code {
				t.Fatalf("code %q, want %q (%v)", se.Code, tc.code, se)
			}
			if tc.frameE != nil && !errors.Is(err, tc.frameE) {
				t.Fatalf("error %v, want %v", err, tc.frameE)
			}
			if wantGot := len(first) + len(big); len(got) < wantGot || len(got) >= wantGot+len(tc.last) {
				t.Fatalf("the SDK's reader got %d bytes: want the %d of the good frames and less than the whole failing frame", len(got), wantGot)
			}
			if se.Events != 2 {
				t.Fatalf("Events %d, want 2", se.Events)
			}
		})
	}
}

// chunkedReader returns data in reads of at most max bytes.
type chunkedReader struct {
	data []byte
	max  int
}

func (r *chunkedReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.max)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestDamagedLargeEventTypedOnEveryDecodePath: a damaged large event after
// content ends the stream with the same typed error whoever checks its CRC:
// the body (the SDK's codec reading it directly, as on every path but
// WithBedrock's) or, under WithBedrock's protocol, the SDK's decoder alone
// (the body leaves the CRC to it and turns its checksum error into ours).
// Either way the damaged event is not delivered and not counted.
func TestDamagedLargeEventTypedOnEveryDecodePath(t *testing.T) {
	schema, registry := responseStreamSchema(t)
	good := bigChunk(t, strings.Repeat("g", 40<<10))
	damaged := bytes.Clone(good)
	damaged[len(damaged)/2] ^= 1
	stream := slices.Concat(bigChunk(t, `{"type":"message_start"}`), good, damaged, good)
	info := streamerr.Stream{Service: "Bedrock Runtime", Operation: "InvokeModelWithResponseStream"}
	for _, side := range []struct {
		name     string
		protocol smithyhttp.ClientProtocol
		leaves   bool // the body leaves the CRC to the SDK
	}{
		{"body checks", restjson1.New(nil), false},
		{"SDK checks (WithBedrock)", isolateEventStreams(restjson1.New(nil), newCodecPool()), true},
	} {
		t.Run(side.name, func(t *testing.T) {
			b := newStreamBody(context.Background(), &closeRecorder{Reader: bytes.NewReader(stream)}, info, resolve(nil))
			if err := b.readAhead(); err != nil {
				t.Fatal(err)
			}
			var events int
			var err error
			for {
				if _, err = side.protocol.DeserializeEventMessage(schema, registry, b); err != nil {
					break
				}
				events++
				if events == 2 && b.sdkChecksCRC() != side.leaves {
					t.Fatalf("body leaves the CRC to the SDK: %v, want %v", b.sdkChecksCRC(), side.leaves)
				}
			}
			var se *smithyext.StatusError
			if !errors.As(err, &se) || se.Kind != smithyext.KindCorrupt || !errors.Is(err, framing.ErrMessageCRC) {
				t.Fatalf("stream ended with %v, want a corrupt-frame StatusError", err)
			}
			if events != 2 || se.Events != 2 {
				t.Fatalf("%d events decoded, %d counted: want 2 and 2 (the damaged one is neither)", events, se.Events)
			}
			var fe *framing.FrameError
			if !errors.As(err, &fe) || fe.Offset != int64(len(stream)-len(good)-len(damaged)) {
				t.Fatalf("frame error %v: want the damaged frame's offset %d", fe, len(stream)-len(good)-len(damaged))
			}
		})
	}
}
