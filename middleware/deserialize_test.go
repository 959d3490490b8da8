package middleware

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/aws/smithy-go/eventstream"

	"github.com/streamstatus/streamstatus/internal/framing"
	"github.com/streamstatus/streamstatus/internal/streamerr"
	"github.com/streamstatus/streamstatus/smithyext"
)

func frame(t testing.TB, messageType, typeHeader, typeValue, payload string) []byte {
	t.Helper()
	var m eventstream.Message
	m.Headers.Set(eventstream.MessageTypeHeader, eventstream.StringValue(messageType))
	if typeHeader != "" {
		m.Headers.Set(typeHeader, eventstream.StringValue(typeValue))
	}
	m.Payload = []byte(payload)
	var buf bytes.Buffer
	if err := eventstream.NewEncoder().Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func event(t testing.TB, eventType string) []byte {
	return frame(t, "event", eventstream.EventTypeHeader, eventType, `{"x":1}`)
}

type closeRecorder struct {
	io.Reader
	closed int
}

func (c *closeRecorder) Close() error { c.closed++; return nil }

func body(t *testing.T, opts []Option, frames ...[]byte) (*streamBody, *closeRecorder, error) {
	t.Helper()
	src := &closeRecorder{Reader: bytes.NewReader(bytes.Join(frames, nil))}
	r := resolve(opts)
	b := newStreamBody(context.Background(), src, streamerr.Stream{Service: "Bedrock Runtime"}, r)
	return b, src, b.readAhead()
}

func TestHealthyStreamIsReplayedByteForByte(t *testing.T) {
	frames := [][]byte{event(t, "messageStart"), event(t, "contentBlockDelta"), frame(t, "future", "", "", "?"), event(t, "messageStop")}
	b, _, err := body(t, nil, frames...)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(iotest1(b))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, bytes.Join(frames, nil)) {
		t.Fatal("the SDK's reader would not see the stream byte for byte")
	}
}

// iotest1 reads one byte at a time, as the SDK's decoder may.
func iotest1(r io.Reader) io.Reader {
	return readerFunc(func(p []byte) (int, error) { return r.Read(p[:min(1, len(p))]) })
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func TestReadAheadStopsAtFirstContent(t *testing.T) {
	// The exception comes after the first content event: it must not be read
	// during the call, only when the consumer gets there.
	frames := [][]byte{event(t, "messageStart"), event(t, "contentBlockDelta"),
		frame(t, "exception", eventstream.ExceptionTypeHeader, "throttlingException", `{"message":"m"}`)}
	b, _, err := body(t, nil, frames...)
	if err != nil {
		t.Fatalf("call failed though content came first: %v", err)
	}
	got, err := io.ReadAll(b)
	var se *smithyext.StatusError
	if !errors.As(err, &se) || se.Events != 2 || se.Status != 429 {
		t.Fatalf("want a 429 after 2 events, got %v", err)
	}
	if !bytes.Equal(got, bytes.Join(frames[:2], nil)) {
		t.Fatal("the events before the exception were not passed through")
	}
}

func TestExceptionBeforeContentFailsTheCall(t *testing.T) {
	b, src, err := body(t, nil, event(t, "messageStart"), frame(t, "exception", eventstream.ExceptionTypeHeader, "internalServerException", `{}`))
	var se *smithyext.StatusError
	if !errors.As(err, &se) || se.Events != 0 || se.Status != 500 {
		t.Fatalf("want a 500 before any event, got %v", err)
	}
	_ = b.Close()
	_ = b.Close()
	if src.closed != 1 {
		t.Fatalf("body closed %d times, want 1", src.closed)
	}
}

func TestEveryEventIsContentWhenConfigured(t *testing.T) {
	_, _, err := body(t, []Option{WithNonContentEvents()}, event(t, "messageStart"),
		frame(t, "exception", eventstream.ExceptionTypeHeader, "internalServerException", `{}`))
	if err != nil {
		t.Fatalf("messageStart counted as content, so the call must succeed: %v", err)
	}
}

func TestReadAheadIsBounded(t *testing.T) {
	var frames [][]byte
	for i := 0; i < 10; i++ {
		frames = append(frames, event(t, "messageStart"))
	}
	frames = append(frames, frame(t, "exception", eventstream.ExceptionTypeHeader, "internalServerException", `{}`))
	limit := 3 * len(frames[0])
	b, _, err := body(t, []Option{func(o *Options) { o.ReadAheadLimit = limit }}, frames...)
	if err != nil {
		t.Fatalf("read-ahead went past its limit to the exception: %v", err)
	}
	if len(b.pending) != limit {
		t.Fatalf("held %d bytes, want the limit %d", len(b.pending), limit)
	}
}

func TestTruncatedStreamIsRetryableBeforeContent(t *testing.T) {
	f := event(t, "chunk")
	_, _, err := body(t, nil, f[:len(f)-3])
	var se *smithyext.StatusError
	if !errors.As(err, &se) || !se.Retryable || se.Kind != smithyext.KindTransport || !errors.Is(err, framing.ErrTruncated) {
		t.Fatalf("want a retryable transport error, got %v", err)
	}
}

func TestCorruptFrameIsNotRetryable(t *testing.T) {
	f := event(t, "chunk")
	f[len(f)-1] ^= 0xff
	_, _, err := body(t, nil, f)
	var se *smithyext.StatusError
	if !errors.As(err, &se) || se.Retryable || se.Kind != smithyext.KindCorrupt || !errors.Is(err, framing.ErrMessageCRC) {
		t.Fatalf("want a permanent corrupt-frame error, got %v", err)
	}
}

func TestPassThroughAllocatesNothingPerFrame(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts per frame are exact only without -race (see race_on_test.go)")
	}
	one := event(t, "chunk")
	stream := bytes.Repeat(one, 200)
	r := resolve(nil)
	src := &closeRecorder{}
	buf := make([]byte, 4096)
	allocs := testing.AllocsPerRun(20, func() { drainBody(t, src, stream, r, buf) })
	// A constant per stream (the body, the scanner and its buffer, the
	// read-ahead copy), nothing per frame: 200 frames must not show.
	t.Logf("%v allocations per 200-frame stream", allocs)
	if allocs > 10 {
		t.Fatalf("%v allocations for a 200-frame stream: something allocates per frame", allocs)
	}
}

// drainBody reads a stream body over stream (src's reader) to its end in
// reads of len(buf), as the SDK's reader does, and returns it unclosed.
func drainBody(t testing.TB, src *closeRecorder, stream []byte, r *resolved, buf []byte) *streamBody {
	src.Reader = bytes.NewReader(stream)
	b := newStreamBody(context.Background(), src, streamerr.Stream{}, r)
	if err := b.readAhead(); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := b.Read(buf); err != nil {
			return b
		}
	}
}
