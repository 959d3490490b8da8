package middleware

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go/transport/http/protocol/restjson1"

	"github.com/streamstatus/streamstatus/internal/streamerr"
)

// stallingBody is a response body that serves data, then blocks its next
// Read (closing waiting once it does) until Close, which then ends that
// Read with an error, as closing an HTTP response body does.
type stallingBody struct {
	data     []byte
	waiting  chan struct{}
	closed   chan struct{}
	waitOnce sync.Once
	shutOnce sync.Once
}

func newStallingBody(data []byte) *stallingBody {
	return &stallingBody{data: data, waiting: make(chan struct{}), closed: make(chan struct{})}
}

func (s *stallingBody) Read(p []byte) (int, error) {
	if len(s.data) > 0 {
		n := copy(p, s.data)
		s.data = s.data[n:]
		return n, nil
	}
	s.waitOnce.Do(func() { close(s.waiting) })
	<-s.closed
	return 0, errors.New("body closed")
}

func (s *stallingBody) Close() error {
	s.shutOnce.Do(func() { close(s.closed) })
	return nil
}

// TestDecodeCloseWhileBlockedMidFrame: under WithBedrock's protocol the
// SDK's reader goroutine holds the body's lock for a whole message
// (streamBody.decode), so its many small reads of a frame skip the lock.
// A Close while that goroutine waits on the connection in the middle of a
// frame must still return at once, end the decode with an error, and
// leave no frame buffer held once the decode has returned.
func TestDecodeCloseWhileBlockedMidFrame(t *testing.T) {
	schema, registry := responseStreamSchema(t)
	p := isolateEventStreams(restjson1.New(nil), newCodecPool()).(*isolatedProtocol)
	first := bigChunk(t, "first")
	second := bigChunk(t, strings.Repeat("s", 5000)) // above passWhole: passed through in parts

	// The connection stalls in the middle of the second frame.
	src := newStallingBody(append(append([]byte{}, first...), second[:len(second)/2]...))
	info := streamerr.Stream{Service: "Bedrock Runtime", Operation: "InvokeModelWithResponseStream"}
	b := newStreamBody(context.Background(), src, info, resolve(nil))
	if err := b.readAhead(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.DeserializeEventMessage(schema, registry, b); err != nil {
		t.Fatalf("first event: %v", err)
	}

	decoded := make(chan error, 1)
	go func() {
		_, err := p.DeserializeEventMessage(schema, registry, b)
		decoded <- err
	}()
	select { // the decoder is inside the second frame, blocked on the connection
	case <-src.waiting:
	case <-time.After(5 * time.Second):
		t.Fatal("the decoder never reached the stall")
	}

	closed := make(chan struct{})
	go func() { _ = b.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked behind the decode's lock")
	}
	select {
	case err := <-decoded:
		if err == nil {
			t.Fatal("the decode of a frame cut by Close returned an event")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the decode never returned after Close")
	}
	if held := heldBytes(b); held != 0 {
		t.Errorf("the body still holds a %d-byte frame buffer after Close and the decode's end", held)
	}
	if b.codec != nil {
		t.Error("the stream's codec was not given back after its decode failed")
	}
}

// closingReader is a response body that, once closed, fails every Read,
// as an HTTP response body does.
type closingReader struct {
	r      io.Reader
	closed atomic.Bool
}

func (c *closingReader) Read(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, errors.New("read on closed body")
	}
	return c.r.Read(p)
}

func (c *closingReader) Close() error { c.closed.Store(true); return nil }

// TestDecodeRacesClose: streams decoded through WithBedrock's protocol the
// way the SDK's reader goroutine does (smithyhttp.EventStreamReader: decode,
// and stop once the stream is closed), while another goroutine closes them
// at random points. Run under -race (the README's test command): every
// event delivered must be exactly its own (pooled frame buffers are
// poisoned when they go back), and no frame buffer may stay held once the
// reader stopped, in particular when Close ran during a decode that then
// returned an event, after which nothing reads the body again.
func TestDecodeRacesClose(t *testing.T) {
	schema, registry := responseStreamSchema(t)
	p := isolateEventStreams(restjson1.New(nil), newCodecPool()).(*isolatedProtocol)
	info := streamerr.Stream{Service: "Bedrock Runtime", Operation: "InvokeModelWithResponseStream"}
	sizes := []int{10, 900, 3000, 7000, 40000}
	inParallel(t, 48, func(g int) error {
		var frames [][]byte
		var want []string
		for i := range 20 {
			content := fmt.Sprintf("%d/%d:", g, i) + strings.Repeat(string(rune('a'+(g+i)%26)), sizes[(g+i)%len(sizes)])
			want = append(want, content)
			frames = append(frames, bigChunk(t, content))
		}
		src := &closingReader{r: &chunkedReader{data: bytes.Join(frames, nil), max: 1 + g*997%9000}}
		b := newStreamBody(context.Background(), src, info, resolve(nil))
		if err := b.readAhead(); err != nil {
			return err
		}
		done := make(chan struct{})
		closed := make(chan struct{})
		go func() {
			time.Sleep(time.Duration(g%12) * 40 * time.Microsecond)
			close(done) // the SDK's Close: done first, then the body
			_ = b.Close()
			close(closed)
		}()
		for i := 0; ; i++ {
			ev, err := p.DeserializeEventMessage(schema, registry, b)
			if err != nil {
				break // the stream's end, or Close
			}
			chunk, ok := any(ev).(*types.PayloadPart) // through any: on the per-operation SDK generation PayloadPart is no smithy.Deserializable
			if !ok {
				return fmt.Errorf("stream %d event %d: %T", g, i, ev)
			}
			if got := string(chunk.Bytes); i >= len(want) || got != want[i] {
				return fmt.Errorf("stream %d event %d: content of %d bytes is not its own (starts %.20q)", g, i, len(got), got)
			}
			select {
			case <-done:
			default:
				continue
			}
			break // the SDK's reader stops once closed, without reading again
		}
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			return fmt.Errorf("stream %d: Close did not return", g)
		}
		if held := heldBytes(b); held != 0 {
			return fmt.Errorf("stream %d: %d-byte frame buffer held after Close and the reader's stop", g, held)
		}
		return nil
	})
}
