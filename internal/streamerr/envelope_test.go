package streamerr_test

import (
	"bytes"
	"encoding/base64"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/smithy-go/eventstream"

	"github.com/streamstatus/streamstatus/classify"

	"github.com/streamstatus/streamstatus/internal/framing"
	"github.com/streamstatus/streamstatus/internal/streamerr"
	"github.com/streamstatus/streamstatus/smithyext"
)

func chunk(t testing.TB, payload string) *framing.Frame {
	t.Helper()
	f, err := framing.NewScanner(bytes.NewReader(chunkBytesOf(t, payload))).Next()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// chunkBytesOf encodes a chunk event frame carrying payload.
func chunkBytesOf(t testing.TB, payload string) []byte {
	t.Helper()
	var m eventstream.Message
	m.Headers.Set(":message-type", eventstream.StringValue("event"))
	m.Headers.Set(":event-type", eventstream.StringValue("chunk"))
	m.Payload = []byte(payload)
	var buf bytes.Buffer
	if err := eventstream.NewEncoder().Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sdkSkipsNull reports whether the linked SDK skips null JSON members
// (the schema-serde generation, with a Protocol option).
func sdkSkipsNull() bool {
	_, ok := reflect.TypeFor[bedrockruntime.Options]().FieldByName("Protocol")
	return ok
}

func chunkOf(content string) string {
	return `{"bytes":"` + base64.StdEncoding.EncodeToString([]byte(content)) + `"}`
}

func TestEnvelopeDetection(t *testing.T) {
	detect := streamerr.New(classify.New(classify.DefaultTables()...)).EnvelopeDetector("Bedrock Runtime", "InvokeModelWithResponseStream")
	s := streamerr.Stream{Service: "Bedrock Runtime", Operation: "InvokeModelWithResponseStream", Events: 5}
	tests := []struct {
		name    string
		payload string
		code    string // "" means not an envelope
	}{
		{"compact envelope", chunkOf(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`), "overloaded_error"},
		{"envelope with a space", chunkOf(`{"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}`), "rate_limit_error"},
		{"whitespace around the bytes key", `{ "bytes" : "` + base64.StdEncoding.EncodeToString([]byte(`{"type":"error","error":{"type":"api_error","message":"m"}}`)) + `"}`, "api_error"},
		{"bytes after another key", `{"p":"abc","bytes":"` + base64.StdEncoding.EncodeToString([]byte(`{"type":"error","error":{"type":"api_error","message":"m"}}`)) + `"}`, "api_error"},
		// Layouts the fast path leaves to the exact decode (envelopeAnswer).
		{"escaped bytes key", `{"\u0062ytes":"` + base64.StdEncoding.EncodeToString([]byte(`{"type":"error","error":{"type":"api_error","message":"m"}}`)) + `"}`, "api_error"},
		{"nested bytes key first", `{"x":{"bytes":"AAAA"},"bytes":"` + base64.StdEncoding.EncodeToString([]byte(`{"type":"error","error":{"type":"api_error","message":"m"}}`)) + `"}`, "api_error"},
		{"content after another key", `{"p":"abc","bytes":"` + base64.StdEncoding.EncodeToString([]byte(`{"type":"content_block_delta"}`)) + `"}`, ""},
		{"content behind an escaped key", `{"\u0062ytes":"` + base64.StdEncoding.EncodeToString([]byte(`{"type":"content_block_delta"}`)) + `"}`, ""},
		// The SDK reads the first JSON value and keeps the last non-null
		// "bytes" member (chunkBytes).
		{"envelope in a later duplicate", `{"bytes":"` + base64.StdEncoding.EncodeToString([]byte(`{"type":"content_block_delta"}`)) + `","bytes":"` + base64.StdEncoding.EncodeToString([]byte(`{"type":"error","error":{"type":"api_error","message":"m"}}`)) + `"}`, "api_error"},
		{"envelope after a null duplicate", `{"bytes":null,"bytes":"` + base64.StdEncoding.EncodeToString([]byte(`{"type":"error","error":{"type":"api_error","message":"m"}}`)) + `"}`, "api_error"},
		// The schema-serde SDK skips the null; the per-operation one keeps
		// it, and the chunk's bytes are empty.
		{"envelope before a null duplicate", `{"bytes":"` + base64.StdEncoding.EncodeToString([]byte(`{"type":"error","error":{"type":"api_error","message":"m"}}`)) + `","bytes":null}`, map[bool]string{true: "api_error"}[sdkSkipsNull()]},
		{"content in a later duplicate", `{"bytes":"` + base64.StdEncoding.EncodeToString([]byte(`{"type":"error","error":{"type":"api_error","message":"m"}}`)) + `","bytes":"` + base64.StdEncoding.EncodeToString([]byte(`{"type":"content_block_delta"}`)) + `"}`, ""},
		{"envelope followed by another object", `{"bytes":"` + base64.StdEncoding.EncodeToString([]byte(`{"type":"error","error":{"type":"api_error","message":"m"}}`)) + `"}{"bytes":"eA=="}`, "api_error"},
		{"content followed by an envelope object", chunkOf(`{"type":"content_block_delta"}`) + `{"bytes":"` + base64.StdEncoding.EncodeToString([]byte(`{"type":"error"}`)) + `"}`, ""},
		{"envelope without an error type", chunkOf(`{"type":"error"}`), "error"},
		{"ordinary content", chunkOf(`{"type":"content_block_delta","delta":{"text":"error"}}`), ""},
		{"content starting like an envelope but not JSON", chunkOf(`{"type":"error"`), ""},
		{"type errors", chunkOf(`{"type":"errors"}`), ""},
		{"not a chunk payload", `{"other":1}`, ""},
		{"bad base64", `{"bytes":"eyJ0eXBlIjoiZXJyb3Ii!!!"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			se := detect(s, chunk(t, tt.payload))
			if tt.code == "" {
				if se != nil {
					t.Fatalf("content taken for an envelope: %v", se)
				}
				return
			}
			if se == nil || se.Code != tt.code || se.Kind != smithyext.KindEnvelope || se.Events != 5 {
				t.Fatalf("got %v, want an envelope %s", se, tt.code)
			}
		})
	}
}

func TestEnvelopeDetectionDoesNotAllocateOnContent(t *testing.T) {
	detect := streamerr.New(classify.New(classify.DefaultTables()...)).EnvelopeDetector("Bedrock Runtime", "InvokeModelWithResponseStream")
	s := streamerr.Stream{Service: "Bedrock Runtime"}
	for _, content := range []string{
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}`,
		`{"type":"message_start","message":{"id":"msg_1","role":"assistant"}}`,
		// Any layout is scanned without allocating, not only "type" first.
		`{"index":0,"delta":{"type":"error","text":"{\"type\":\"error\"}"},"type":"content_block_delta"}`,
		`{"typ":"error","types":"error","type":"content_block_delta"}`,
		"{\n  \"type\": \"message_stop\"\n}",
	} {
		for _, payload := range []string{chunkOf(content), chunkOf(content)[:len(chunkOf(content))-1] + `,"p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"}`} {
			f := chunk(t, payload)
			if n := testing.AllocsPerRun(100, func() { _ = detect(s, f) }); n != 0 {
				t.Fatalf("%v allocations to pass %q", n, payload)
			}
		}
	}
}

// TestEnvelopeDetectionAnyJSONLayout: an envelope is a JSON object whose
// top-level "type" is "error", however the JSON is laid out; content that
// mentions errors anywhere else stays content.
func TestEnvelopeDetectionAnyJSONLayout(t *testing.T) {
	detect := streamerr.New(classify.New(classify.DefaultTables()...)).EnvelopeDetector("Bedrock Runtime", "InvokeModelWithResponseStream")
	s := streamerr.Stream{Service: "Bedrock Runtime", Operation: "InvokeModelWithResponseStream"}
	envelopes := []struct{ name, json string }{
		{"error first", `{"error":{"type":"overloaded_error","message":"m"},"type":"error"}`},
		{"space after the brace", `{ "type": "error", "error": {"type": "overloaded_error", "message": "m"}}`},
		{"space before the colon", `{"type" : "error","error":{"type":"overloaded_error","message":"m"}}`},
		{"pretty-printed", "{\n  \"type\": \"error\",\n  \"error\": {\n    \"type\": \"overloaded_error\",\n    \"message\": \"m\"\n  }\n}"},
		{"tabs and CRLF", "\r\n\t{\t\"type\"\t:\t\"error\"\r\n,\"error\":{\"message\":\"m\",\"type\":\"overloaded_error\"}}"},
		{"other keys first", `{"request_id":"req_1","meta":{"a":[1,2,{"type":"x"}],"s":"}\"{"},"error":{"type":"overloaded_error","message":"m"},"type":"error"}`},
		{"long prefix before type", `{"pad":"` + strings.Repeat("z", 300) + `","type":"error","error":{"type":"overloaded_error","message":"m"}}`},
	}
	for _, e := range envelopes {
		t.Run("envelope/"+e.name, func(t *testing.T) {
			se := detect(s, chunk(t, chunkOf(e.json)))
			if se == nil || se.Code != "overloaded_error" || se.Message != "m" {
				t.Fatalf("envelope %s not detected: %v", e.json, se)
			}
		})
	}
	content := []struct{ name, json string }{
		{"nested type error", `{"type":"content_block_delta","delta":{"type":"error","text":"x"}}`},
		{"nested first", `{"delta":{"type":"error"},"type":"content_block_delta"}`},
		{"text mentions the envelope", `{"type":"content_block_delta","delta":{"type":"text_delta","text":"{\"type\":\"error\"}"}}`},
		{"type error inside a string value", `{"note":"\"type\":\"error\"","type":"message_delta"}`},
		{"type error inside an array", `[{"type":"error"}]`},
		{"type is not a string", `{"type":{"error":true}}`},
		{"type Error", `{"type":"Error"}`},
		{"type error with an escape", `{"type":"error\n"}`},
		{"plain text", `type: error`},
		{"unterminated", `{"type" : "error"`},
	}
	for _, c := range content {
		t.Run("content/"+c.name, func(t *testing.T) {
			if se := detect(s, chunk(t, chunkOf(c.json))); se != nil {
				t.Fatalf("content %s taken for an envelope: %v", c.json, se)
			}
		})
	}
}

// BenchmarkEnvelopeDetectionOnContent: what the detector costs on the
// chunks of a healthy stream (0 allocs/op is the target).
func BenchmarkEnvelopeDetectionOnContent(b *testing.B) {
	detect := streamerr.New(classify.New(classify.DefaultTables()...)).EnvelopeDetector("Bedrock Runtime", "InvokeModelWithResponseStream")
	s := streamerr.Stream{Service: "Bedrock Runtime"}
	for _, c := range []struct{ name, json string }{
		{"type first", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello, world"}}`},
		{"type last", `{"index":0,"delta":{"type":"text_delta","text":"Hello, world"},"type":"content_block_delta"}`},
	} {
		f := chunk(b, chunkOf(c.json))
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if detect(s, f) != nil {
					b.Fatal("content taken for an envelope")
				}
			}
		})
	}
}
