package fake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/smithy-go/eventstream"
)

type stepKind int

const (
	stepBytes stepKind = iota
	stepPause
	stepHang
	stepReset
	stepCut
	stepRepeat
)

// Step is one action of a streaming [Response]: write a frame or raw bytes,
// pause, hang, or abort the connection. Build steps with [Event],
// [Exception], [ExceptionPayload], [ErrorMsg], [Raw], [Pause], [Hang],
// [Reset], [Cut] and the content helpers.
type Step struct {
	kind stepKind
	data []byte
	d    time.Duration
	n    int
}

// Frame encodes m as one event-stream frame (prelude, headers, payload and
// CRCs) with the smithy-go encoder. It is exported for tests that corrupt
// frames before sending them with [Raw]. Frame panics if m cannot be encoded
// (a header name or value, or the message, exceeds the format's limits).
func Frame(m eventstream.Message) []byte {
	var buf bytes.Buffer
	if err := eventstream.NewEncoder().Encode(&buf, m); err != nil {
		panic(fmt.Sprintf("fake: encode event-stream frame: %v", err))
	}
	return buf.Bytes()
}

// frameStep encodes a message with the given string headers (name, value
// pairs) and payload.
func frameStep(payload []byte, kv ...string) Step {
	var m eventstream.Message
	for i := 0; i+1 < len(kv); i += 2 {
		m.Headers.Set(kv[i], eventstream.StringValue(kv[i+1]))
	}
	m.Payload = payload
	return Step{kind: stepBytes, data: Frame(m)}
}

// Event is an event frame: :message-type "event", :event-type eventType,
// :content-type "application/json", with payload as the JSON body.
func Event(eventType string, payload []byte) Step {
	return frameStep(payload,
		eventstream.EventTypeHeader, eventType,
		eventstream.ContentTypeHeader, "application/json",
		eventstream.MessageTypeHeader, eventstream.EventMessageType,
	)
}

// Exception is a modeled-exception frame: :message-type "exception",
// :exception-type exceptionType, :content-type "application/json" and the
// payload {"message": message}. Use the union member name the service sends,
// e.g. "throttlingException", so the SDK surfaces its typed error.
func Exception(exceptionType string, message string) Step {
	return ExceptionPayload(exceptionType, mustJSON(map[string]string{"message": message}))
}

// ExceptionPayload is like [Exception] with a raw JSON payload, e.g.
// {"message":"...","originalStatusCode":500,"originalMessage":"..."} for a
// "modelStreamErrorException".
func ExceptionPayload(exceptionType string, payload []byte) Step {
	return frameStep(payload,
		eventstream.ExceptionTypeHeader, exceptionType,
		eventstream.ContentTypeHeader, "application/json",
		eventstream.MessageTypeHeader, eventstream.ExceptionMessageType,
	)
}

// ErrorMsg is an error frame: :message-type "error" with :error-code code
// and :error-message message, and no payload.
func ErrorMsg(code, message string) Step {
	return frameStep(nil,
		eventstream.MessageTypeHeader, eventstream.ErrorMessageType,
		eventstream.ErrorCodeHeader, code,
		eventstream.ErrorMessageHeader, message,
	)
}

// Raw writes b as-is (for corrupt or truncated frames).
func Raw(b []byte) Step {
	return Step{kind: stepBytes, data: bytes.Clone(b)}
}

// Pause sleeps for d before the next step. [Server.Close] or a client
// disconnect ends it early and aborts the response: the connection is
// closed without finishing the body.
func Pause(d time.Duration) Step {
	return Step{kind: stepPause, d: d}
}

// Hang stops sending and holds the response open until the client goes
// away or [Server.Close] is called, then aborts the response (the connection
// is closed without finishing the body); later steps are never run.
func Hang() Step {
	return Step{kind: stepHang}
}

// Reset aborts the connection with a TCP RST: what was written so far is
// flushed, the server waits (up to a minute; less if the client goes away)
// until the client's kernel has
// acknowledged all of it (Linux; elsewhere a short pause), then the
// connection is hijacked and closed with SO_LINGER 0. The client reads
// every byte written before the Reset, then sees "connection reset by
// peer".
func Reset() Step {
	return Step{kind: stepReset}
}

// Cut closes the connection (a normal FIN) without finishing the chunked
// body, after flushing what was written so far. A plain net/http client sees
// io.ErrUnexpectedEOF while reading the body.
func Cut() Step {
	return Step{kind: stepCut}
}

// sleep waits for d, returning false if stop1 or stop2 closes first.
func sleep(d time.Duration, stop1, stop2 <-chan struct{}) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop1:
		return false
	case <-stop2:
		return false
	}
}

// mustJSON marshals v, which is always a plain map or struct here.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("fake: marshal JSON: %v", err))
	}
	return b
}

// Chunk is an InvokeModelWithResponseStream "chunk" event whose payload is
// {"bytes":"<base64 of data>"}; the SDK delivers data as
// types.ResponseStreamMemberChunk.Value.Bytes.
func Chunk(data []byte) Step {
	// encoding/json encodes []byte as standard base64, as the service does.
	return Event("chunk", mustJSON(struct {
		Bytes []byte `json:"bytes"`
	}{data}))
}

// ConverseText is a complete successful ConverseStream answer: messageStart,
// one contentBlockDelta per text, contentBlockStop, messageStop with
// stopReason "end_turn", and metadata with usage (1 input token, one output
// token per text) and latencyMs 1.
func ConverseText(texts ...string) []Step {
	steps := []Step{MessageStart()}
	for _, t := range texts {
		steps = append(steps, TextDelta(t))
	}
	return append(steps,
		ContentBlockStop(),
		MessageStop("end_turn"),
		Metadata(1, len(texts)),
	)
}

// MessageStart is a ConverseStream messageStart event {"role":"assistant"}.
func MessageStart() Step {
	return Event("messageStart", []byte(`{"role":"assistant"}`))
}

// TextDelta is a ConverseStream contentBlockDelta event for content block 0:
// {"contentBlockIndex":0,"delta":{"text":text}}.
func TextDelta(text string) Step {
	type delta struct {
		Text string `json:"text"`
	}
	return Event("contentBlockDelta", mustJSON(struct {
		ContentBlockIndex int   `json:"contentBlockIndex"`
		Delta             delta `json:"delta"`
	}{0, delta{text}}))
}

// ContentBlockStop is a ConverseStream contentBlockStop event for content
// block 0: {"contentBlockIndex":0}.
func ContentBlockStop() Step {
	return Event("contentBlockStop", []byte(`{"contentBlockIndex":0}`))
}

// MessageStop is a ConverseStream messageStop event
// {"stopReason":stopReason}, e.g. "end_turn" or "max_tokens".
func MessageStop(stopReason string) Step {
	return Event("messageStop", mustJSON(map[string]string{"stopReason": stopReason}))
}

// Metadata is a ConverseStream metadata event with the given token usage
// (totalTokens is their sum) and latencyMs 1.
func Metadata(inputTokens, outputTokens int) Step {
	type usage struct {
		InputTokens  int `json:"inputTokens"`
		OutputTokens int `json:"outputTokens"`
		TotalTokens  int `json:"totalTokens"`
	}
	type metrics struct {
		LatencyMs int `json:"latencyMs"`
	}
	return Event("metadata", mustJSON(struct {
		Usage   usage   `json:"usage"`
		Metrics metrics `json:"metrics"`
	}{usage{inputTokens, outputTokens, inputTokens + outputTokens}, metrics{1}}))
}

// AnthropicError is an InvokeModelWithResponseStream chunk whose bytes are
// an Anthropic error envelope, {"type":"error","error":{"type":errType,
// "message":message}}: the in-band failure Bedrock can send with HTTP 200
// for Anthropic models (for example "overloaded_error").
func AnthropicError(errType, message string) Step {
	type detail struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}
	return Chunk(mustJSON(struct { // field order as Anthropic sends it: "type" first
		Type  string `json:"type"`
		Error detail `json:"error"`
	}{"error", detail{errType, message}}))
}

// Repeat writes data n times (for example one encoded frame, to stream a
// long or large response without holding it all in memory), flushing once
// at the end.
func Repeat(data []byte, n int) Step {
	return Step{kind: stepRepeat, data: data, n: n}
}
