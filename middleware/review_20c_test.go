package middleware

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/aws/smithy-go/eventstream"
	"github.com/aws/smithy-go/transport/http/protocol/restjson1"
)

// TestDefect_CloseCountsDamagedPassedFrame: under WithBedrock's protocol a
// large event after content passes through with its CRC left to the SDK's
// decoder; the body marks it `uncounted` once it handed on the CRC bytes.
// The SDK's reader goroutine then checks the CRC, finds it wrong and calls
// crcFailed (protocol.go). If the consumer closes the stream in between
// (Close may be called from any goroutine: a consumer giving up, a context
// watcher), Close's new count (5097d86: "handed on whole, and not
// rejected (crcFailed) before Close") counts the damaged frame as an
// event: the span's event count and the stream's Events say 3 while the
// consumer received 2, and a frame the SDK rejected is counted as
// delivered. crcFailed can no longer undo it (uncounted is already
// cleared).
func TestDefect_CloseCountsDamagedPassedFrame(t *testing.T) {
	schema, registry := responseStreamSchema(t)
	bad := bigChunk(t, strings.Repeat("h", 40<<10))
	bad[len(bad)-1] ^= 0xff // its message CRC
	stream := slices.Concat(
		bigChunk(t, `{"type":"message_start"}`),  // read whole (read-ahead): content
		bigChunk(t, strings.Repeat("g", 40<<10)), // passed through, delivered
		bad,                                      // passed through, CRC left to the SDK
	)
	const delivered = 2

	b, tracer := observedInvokeBody(t, stream)
	p := isolateEventStreams(restjson1.New(nil), newCodecPool())
	for i := range delivered {
		if _, err := p.DeserializeEventMessage(schema, registry, b); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	// The SDK's decoder (b.codec, set by the protocol) reads the damaged
	// frame whole, prelude to CRC bytes, as eventstream.Decoder does ...
	if b.codec == nil {
		t.Fatal("the protocol did not give the body its codec")
	}
	if _, err := io.ReadFull(b, make([]byte, len(bad))); err != nil {
		t.Fatalf("reading the damaged frame's bytes: %v", err)
	}
	// ... the consumer closes the stream while the decoder checks the CRC ...
	_ = b.Close()
	// ... and the decoder's checksum error reaches crcFailed (protocol.go).
	b.mu.Lock()
	_ = b.crcFailed(eventstream.ChecksumError{})
	b.mu.Unlock()

	if len(tracer.spans) != 1 {
		t.Fatalf("%d spans, want 1", len(tracer.spans))
	}
	if got := tracer.spans[0].props[attrEvents]; got != delivered {
		t.Errorf("span %s = %v, want %d: the frame the SDK's decoder rejected (CRC) was counted as an event (body Events %d)",
			attrEvents, got, delivered, b.info.Events)
	}
	if b.info.Events != delivered {
		t.Errorf("stream Events = %d, want %d: a damaged frame counted as delivered", b.info.Events, delivered)
	}
}
