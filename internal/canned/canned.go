// Package canned stands in for Bedrock Runtime in the library's runnable
// examples: an aws.HTTPClient that answers each call, in process, with the
// next of its canned ConverseStream event streams, encoded with smithy-go's
// eventstream.Encoder as the service encodes them.
//
// It exists so that the library module's own tests need nothing outside the
// module (the fake endpoint of the integration module serves the end-to-end
// tests): a dependency of users' builds must not require a module that only
// a replace directive resolves.
package canned

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/aws/smithy-go/eventstream"
)

// Answer is the response body one call receives: event-stream frames, then
// either the end of the body or, for a stalled answer, no more bytes until
// the client closes the body or its request context ends.
type Answer struct {
	stream []byte
	stall  bool
}

// Stream is an answer of frames that ends normally.
func Stream(frames ...[]byte) Answer { return Answer{stream: bytes.Join(frames, nil)} }

// Stalled is an answer of frames after which the connection goes quiet.
func Stalled(frames ...[]byte) Answer { return Answer{stream: bytes.Join(frames, nil), stall: true} }

// Endpoint is an aws.HTTPClient that answers the n-th call with the n-th
// answer, and every later call with the last one. It never touches the
// network. Safe for concurrent use.
type Endpoint struct {
	mu      sync.Mutex
	answers []Answer
	calls   int
}

// NewEndpoint returns an endpoint with the given answers; it panics without
// one.
func NewEndpoint(answers ...Answer) *Endpoint {
	if len(answers) == 0 {
		panic("canned: NewEndpoint needs at least one answer")
	}
	return &Endpoint{answers: answers}
}

// Calls returns how many requests the endpoint has answered.
func (e *Endpoint) Calls() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls
}

// Do answers req with a 200 event stream.
func (e *Endpoint) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close() // a RoundTripper closes the request body
	}
	e.mu.Lock()
	a := e.answers[min(e.calls, len(e.answers)-1)]
	e.calls++
	n := e.calls
	e.mu.Unlock()
	return &http.Response{
		Status:     "200 OK",
		StatusCode: http.StatusOK,
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{
			"Content-Type":     {"application/vnd.amazon.eventstream"},
			"X-Amzn-Requestid": {fmt.Sprintf("canned-%d", n)},
		},
		Body:          &body{r: bytes.NewReader(a.stream), stall: a.stall, ctx: req.Context(), closed: make(chan struct{})},
		ContentLength: -1,
		Request:       req,
	}, nil
}

// errClosed is what a stalled body's Read returns once the client closed it.
var errClosed = errors.New("canned: read on closed response body")

type body struct {
	r      *bytes.Reader
	stall  bool
	ctx    context.Context
	once   sync.Once
	closed chan struct{}
}

func (b *body) Read(p []byte) (int, error) {
	if b.r.Len() > 0 || !b.stall {
		return b.r.Read(p)
	}
	select {
	case <-b.closed:
		return 0, errClosed
	case <-b.ctx.Done():
		return 0, b.ctx.Err()
	}
}

func (b *body) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

var _ io.ReadCloser = (*body)(nil)

// frame encodes one message with string headers (name, value pairs).
func frame(payload []byte, kv ...string) []byte {
	var m eventstream.Message
	for i := 0; i+1 < len(kv); i += 2 {
		m.Headers.Set(kv[i], eventstream.StringValue(kv[i+1]))
	}
	m.Payload = payload
	var buf bytes.Buffer
	if err := eventstream.NewEncoder().Encode(&buf, m); err != nil {
		panic(fmt.Sprintf("canned: encode event-stream frame: %v", err))
	}
	return buf.Bytes()
}

// Event is an event frame of the given :event-type with a JSON payload.
func Event(eventType string, payload any) []byte {
	return frame(mustJSON(payload),
		eventstream.EventTypeHeader, eventType,
		eventstream.ContentTypeHeader, "application/json",
		eventstream.MessageTypeHeader, eventstream.EventMessageType)
}

// Exception is a modeled-exception frame: :exception-type exceptionType
// (the union member name the service sends, e.g. "throttlingException")
// and the payload {"message": message}.
func Exception(exceptionType, message string) []byte {
	return frame(mustJSON(map[string]string{"message": message}),
		eventstream.ExceptionTypeHeader, exceptionType,
		eventstream.ContentTypeHeader, "application/json",
		eventstream.MessageTypeHeader, eventstream.ExceptionMessageType)
}

// MessageStart is a ConverseStream messageStart event.
func MessageStart() []byte { return Event("messageStart", map[string]string{"role": "assistant"}) }

// TextDelta is a ConverseStream contentBlockDelta event with text for
// content block 0.
func TextDelta(text string) []byte {
	return Event("contentBlockDelta", map[string]any{"contentBlockIndex": 0, "delta": map[string]string{"text": text}})
}

// ConverseText is a complete ConverseStream answer: messageStart, one
// contentBlockDelta per text, contentBlockStop, messageStop (end_turn) and
// metadata.
func ConverseText(texts ...string) []byte {
	frames := [][]byte{MessageStart()}
	for _, t := range texts {
		frames = append(frames, TextDelta(t))
	}
	frames = append(frames,
		Event("contentBlockStop", map[string]int{"contentBlockIndex": 0}),
		Event("messageStop", map[string]string{"stopReason": "end_turn"}),
		Event("metadata", map[string]any{
			"usage":   map[string]int{"inputTokens": 1, "outputTokens": len(texts), "totalTokens": 1 + len(texts)},
			"metrics": map[string]int{"latencyMs": 1},
		}))
	return bytes.Join(frames, nil)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("canned: marshal JSON: %v", err))
	}
	return b
}
