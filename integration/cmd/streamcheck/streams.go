package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/aws/smithy-go/eventstream"

	"github.com/streamstatus/streamstatus/integration/fake"
)

// This file builds what the endpoint sends: the healthy stream of a call,
// and that stream with a fault in it.

// words make the streamed text read like text; each delta also carries its
// index, so no two events of one stream are alike and a duplicate shows.
var words = []string{"Streams", "fail", "inside", "the", "answer,", "after", "HTTP", "200;", "typed", "errors", "make", "them", "retryable."}

// stream is the healthy answer of one streaming call.
type stream struct {
	// frames are the encoded event frames, one per event.
	frames [][]byte
	// labels are the events as the consumer renders them (see label in
	// check.go), one per frame.
	labels []string
	// nonContent is how many leading frames the plugin does not count as
	// content (ConverseStream's messageStart), so a fault at a frame up to
	// this index comes before content.
	nonContent int
}

// healthyStream is the answer of call n of op with events content events.
func healthyStream(op string, n, events int, model string) stream {
	return buildStream(op, n, events, model, true)
}

// streamLabels is the labels of healthyStream without its frames: what the
// consumer of call n must see.
func streamLabels(op string, n, events int, model string) []string {
	return buildStream(op, n, events, model, false).labels
}

// streamLen is the number of frames (and labels) of a healthy stream.
func streamLen(op string, events int) int {
	if op == opConverseStream {
		return events + 4
	}
	return events + 5
}

// nonContentOf is the nonContent of op's healthy streams.
func nonContentOf(op string) int {
	if op == opConverseStream {
		return 1
	}
	return 0
}

func buildStream(op string, n, events int, model string, frames bool) stream {
	var s stream
	s.labels = make([]string, 0, streamLen(op, events))
	if frames {
		s.frames = make([][]byte, 0, streamLen(op, events))
	}
	add := func(eventType string, payload any, label string) {
		if label != "" && !frames {
			s.labels = append(s.labels, label)
			return
		}
		b, err := json.Marshal(payload)
		if err != nil {
			panic(err) // plain maps and structs only
		}
		if label == "" {
			label = string(b)
		}
		if frames {
			s.frames = append(s.frames, eventFrame(eventType, b))
		}
		s.labels = append(s.labels, label)
	}
	text := func(i int) string { return fmt.Sprintf("%s%d ", words[i%len(words)], i) }
	type obj = map[string]any

	s.nonContent = nonContentOf(op)
	if op == opConverseStream {
		add("messageStart", obj{"role": "assistant"}, "messageStart")
		for i := 0; i < events; i++ {
			add("contentBlockDelta", obj{"contentBlockIndex": 0, "delta": obj{"text": text(i)}}, "delta:"+text(i))
		}
		add("contentBlockStop", obj{"contentBlockIndex": 0}, "contentBlockStop")
		add("messageStop", obj{"stopReason": "end_turn"}, "messageStop:end_turn")
		add("metadata", obj{"usage": obj{"inputTokens": 12, "outputTokens": events, "totalTokens": 12 + events},
			"metrics": obj{"latencyMs": 1}}, "metadata")
		return s
	}

	// InvokeModelWithResponseStream with an Anthropic model: each chunk's
	// bytes are one Anthropic Messages streaming event, as Bedrock sends them
	// (so the Anthropic SDKs' Bedrock clients can read this endpoint too).
	chunk := func(event any) {
		b, err := json.Marshal(event)
		if err != nil {
			panic(err)
		}
		add("chunk", struct {
			Bytes []byte `json:"bytes"`
		}{b}, string(b))
	}
	// Struct types keep "type" first, as Anthropic sends it.
	type message struct {
		ID           string   `json:"id"`
		Type         string   `json:"type"`
		Role         string   `json:"role"`
		Model        string   `json:"model"`
		Content      []string `json:"content"`
		StopReason   *string  `json:"stop_reason"`
		StopSequence *string  `json:"stop_sequence"`
		Usage        obj      `json:"usage"`
	}
	chunk(struct {
		Type    string  `json:"type"`
		Message message `json:"message"`
	}{"message_start", message{ID: fmt.Sprintf("msg_streamcheck_%06d", n), Type: "message", Role: "assistant",
		Model: model, Content: []string{}, Usage: obj{"input_tokens": 12, "output_tokens": 1}}})
	type textBlock struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	chunk(struct {
		Type         string    `json:"type"`
		Index        int       `json:"index"`
		ContentBlock textBlock `json:"content_block"`
	}{"content_block_start", 0, textBlock{"text", ""}})
	for i := 0; i < events; i++ {
		chunk(struct {
			Type  string    `json:"type"`
			Index int       `json:"index"`
			Delta textBlock `json:"delta"`
		}{"content_block_delta", 0, textBlock{"text_delta", text(i)}})
	}
	chunk(struct {
		Type  string `json:"type"`
		Index int    `json:"index"`
	}{"content_block_stop", 0})
	type stop struct {
		StopReason   string  `json:"stop_reason"`
		StopSequence *string `json:"stop_sequence"`
	}
	chunk(struct {
		Type  string `json:"type"`
		Delta stop   `json:"delta"`
		Usage obj    `json:"usage"`
	}{"message_delta", stop{StopReason: "end_turn"}, obj{"output_tokens": events}})
	chunk(struct {
		Type    string `json:"type"`
		Metrics obj    `json:"amazon-bedrock-invocationMetrics"`
	}{"message_stop", obj{"inputTokenCount": 12, "outputTokenCount": events, "invocationLatency": 5, "firstByteLatency": 1}})
	return s
}

// eventFrame encodes one event frame the way Bedrock does.
func eventFrame(eventType string, payload []byte) []byte {
	var m eventstream.Message
	m.Headers.Set(eventstream.EventTypeHeader, eventstream.StringValue(eventType))
	m.Headers.Set(eventstream.ContentTypeHeader, eventstream.StringValue("application/json"))
	m.Headers.Set(eventstream.MessageTypeHeader, eventstream.StringValue(eventstream.EventMessageType))
	m.Payload = payload
	return fake.Frame(m)
}

// padded returns frame with 32 KiB of JSON whitespace after its payload:
// a frame large enough that, after content, the plugin passes it through
// in parts (middleware's passWhole, 2 KiB) and leaves its CRC to the SDK
// under WithBedrock, so the corrupt fault checks that path too.
func padded(frame []byte) []byte {
	m, err := eventstream.NewDecoder().Decode(bytes.NewReader(frame), nil)
	if err != nil {
		panic(fmt.Sprintf("streamcheck: decode our own frame: %v", err))
	}
	m.Payload = append(m.Payload, bytes.Repeat([]byte(" "), 32<<10)...)
	return fake.Frame(m)
}

// response is the endpoint's answer to one attempt: the healthy stream of
// the call with the faults of p (already narrowed to this attempt) in it.
func (s stream) response(p pick) fake.Response {
	if r := p.ending; r != nil && r.kind.http {
		return httpFault(r.status)
	}
	end := len(s.frames)
	var tail []fake.Step
	if r := p.ending; r != nil {
		end = min(r.frame, len(s.frames))
		switch r.kind.name {
		case "reset":
			tail = []fake.Step{fake.Reset()}
		case "cut":
			end = min(r.frame, len(s.frames)-1)
			f := s.frames[end]
			tail = []fake.Step{fake.Raw(f[:len(f)/2]), fake.Cut()}
		case "corrupt":
			end = min(r.frame, len(s.frames)-1)
			f := padded(s.frames[end])
			f[len(f)-1] ^= 0xff // the message CRC
			tail = []fake.Step{fake.Raw(f)}
		case "error":
			tail = []fake.Step{fake.ErrorMsg(r.code, r.kind.message)}
		case "anthropicError":
			tail = []fake.Step{fake.AnthropicError(r.envType, envelopeMessage(r.envType))}
		case "modelStreamError":
			payload := map[string]any{"message": r.kind.message}
			if r.orig != 0 {
				payload["originalStatusCode"] = r.orig
				payload["originalMessage"] = http.StatusText(r.orig)
			}
			b, _ := json.Marshal(payload)
			tail = []fake.Step{fake.ExceptionPayload(r.kind.exception, b)}
		default:
			tail = []fake.Step{fake.Exception(r.kind.exception, r.kind.message)}
		}
	}
	var steps []fake.Step
	for i := 0; i <= end; i++ {
		for _, sl := range p.slows {
			if min(sl.frame, len(s.frames)) == i {
				steps = append(steps, fake.Pause(sl.pause))
			}
		}
		if i < end {
			steps = append(steps, fake.Raw(s.frames[i]))
		}
	}
	return fake.Response{Steps: append(steps, tail...)}
}

// envelopeMessage is the message Anthropic sends with an error type.
func envelopeMessage(t string) string {
	switch t {
	case "overloaded_error":
		return "Overloaded"
	case "rate_limit_error":
		return "Number of request tokens has exceeded your per-minute rate limit"
	case "api_error":
		return "Internal server error"
	}
	return "streamcheck injected " + t
}

// httpErrorTypes is the x-amzn-ErrorType httpFault sends for a status, the
// one Bedrock sends; other statuses get none.
var httpErrorTypes = map[int]string{
	400: "ValidationException", 403: "AccessDeniedException", 404: "ResourceNotFoundException",
	408: "ModelTimeoutException", 424: "ModelErrorException", 429: "ThrottlingException",
	500: "InternalServerException", 503: "ServiceUnavailableException",
}

// httpFault is an HTTP error answer with the error type Bedrock sends for
// the status, so SDKs map it to their modeled errors.
func httpFault(status int) fake.Response {
	msg := http.StatusText(status)
	if msg == "" {
		msg = fmt.Sprintf("HTTP %d", status)
	}
	return fake.Response{Status: status, ErrorType: httpErrorTypes[status], ErrorMessage: "streamcheck injected: " + msg}
}

// nonStreamingAnswer is the healthy answer of Converse and InvokeModel.
func nonStreamingAnswer(op string, n int, model string) []byte {
	var v any
	if op == "Converse" {
		v = map[string]any{
			"output":     map[string]any{"message": map[string]any{"role": "assistant", "content": []any{map[string]string{"text": "Hello from streamcheck."}}}},
			"stopReason": "end_turn",
			"usage":      map[string]int{"inputTokens": 12, "outputTokens": 4, "totalTokens": 16},
			"metrics":    map[string]int{"latencyMs": 1},
		}
	} else {
		v = map[string]any{
			"id": fmt.Sprintf("msg_streamcheck_%06d", n), "type": "message", "role": "assistant", "model": model,
			"content":     []any{map[string]string{"type": "text", "text": "Hello from streamcheck."}},
			"stop_reason": "end_turn", "stop_sequence": nil,
			"usage": map[string]int{"input_tokens": 12, "output_tokens": 4},
		}
	}
	b, _ := json.Marshal(v)
	return b
}
