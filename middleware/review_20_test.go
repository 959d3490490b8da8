package middleware

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/aws/smithy-go/eventstream"

	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/internal/streamerr"
	"github.com/streamstatus/streamstatus/smithyext"
)

// rawException is a modeled error that keeps the exception's payload as it
// was handed to Decode, as any error type with a []byte field filled
// without a copy does (json.RawMessage assigned directly, a wrapper
// around the raw body, ...).
type rawException struct{ raw []byte }

func (e *rawException) Error() string { return "raw exception: " + string(e.raw) }

// TestDefect_DecodeRetainedPayloadOverwrittenByAnotherStream: a
// classify.Rule's Decode gets the exception payload, and until this change
// what it kept stayed the stream's own (the stream ended there; its frame
// buffer went to the garbage collector with the error still holding it).
// Now the buffer goes back to a pool shared by every stream of the
// process at the stream's end, so the typed error a caller holds changes
// under it: poisoned under -race, and overwritten by the next stream's
// frame otherwise: one stream's model output can show up in another
// call's error message.
func TestDefect_DecodeRetainedPayloadOverwrittenByAnotherStream(t *testing.T) {
	const secret = `{"message":"stream A's own exception message"}`
	c := classify.New(classify.Table{ServiceID: "Bedrock Runtime", Rules: []classify.Rule{{
		Type:    "throttlingException",
		Outcome: classify.Outcome{Code: "ThrottlingException", Status: 429, Retryable: true, Throttle: true},
		Decode:  func(p []byte) error { return &rawException{raw: p} },
	}}})
	opts := resolve([]Option{WithClassifier(c)})
	info := streamerr.Stream{Service: "Bedrock Runtime", Operation: "ConverseStream"}

	streamA := append(frame(t, "event", eventstream.EventTypeHeader, "contentBlockDelta", `{"delta":{"text":"hi"}}`),
		frame(t, "exception", eventstream.ExceptionTypeHeader, "throttlingException", secret)...)
	a := newStreamBody(context.Background(), &closeRecorder{Reader: bytes.NewReader(streamA)}, info, opts)
	if err := a.readAhead(); err != nil {
		t.Fatal(err)
	}
	_, err := io.ReadAll(a)
	var se *smithyext.StatusError
	var raw *rawException
	if !errors.As(err, &se) || !errors.As(err, &raw) {
		t.Fatalf("stream A ended with %v, want the StatusError wrapping the modeled error", err)
	}
	if string(raw.raw) != secret {
		t.Fatalf("before anything else ran: %q", raw.raw)
	}

	// Another stream of the process (another caller's) reads a frame of the
	// same size class.
	other := frame(t, "event", eventstream.EventTypeHeader, "contentBlockDelta", `{"delta":{"text":"`+strings.Repeat("B", 60)+`"}}`)
	b := newStreamBody(context.Background(), &closeRecorder{Reader: bytes.NewReader(bytes.Repeat(other, 3))}, info, opts)
	if err := b.readAhead(); err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(b)

	if string(raw.raw) != secret {
		t.Fatalf("stream A's error changed after its stream ended and another stream ran: Decode's payload now reads %q", raw.raw)
	}
}
