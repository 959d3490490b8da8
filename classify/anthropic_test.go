package classify_test

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/aws/smithy-go/eventstream"

	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/smithyext"
)

func chunk(t testing.TB, payload string) *smithyext.Frame {
	t.Helper()
	var m eventstream.Message
	m.Headers.Set(":message-type", eventstream.StringValue("event"))
	m.Headers.Set(":event-type", eventstream.StringValue("chunk"))
	m.Payload = []byte(payload)
	var buf bytes.Buffer
	if err := eventstream.NewEncoder().Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	f, err := smithyext.NewScanner(&buf).Next()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func chunkOf(content string) string {
	return `{"bytes":"` + base64.StdEncoding.EncodeToString([]byte(content)) + `"}`
}

func TestEnvelopeDetection(t *testing.T) {
	detect := classify.Default().EnvelopeDetector("Bedrock Runtime", "InvokeModelWithResponseStream")
	s := classify.Stream{Service: "Bedrock Runtime", Operation: "InvokeModelWithResponseStream", Events: 5}
	tests := []struct {
		name    string
		payload string
		code    string // "" means not an envelope
	}{
		{"compact envelope", chunkOf(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`), "overloaded_error"},
		{"envelope with a space", chunkOf(`{"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}`), "rate_limit_error"},
		{"whitespace around the bytes key", `{ "bytes" : "` + base64.StdEncoding.EncodeToString([]byte(`{"type":"error","error":{"type":"api_error","message":"m"}}`)) + `"}`, "api_error"},
		{"bytes after another key", `{"p":"abc","bytes":"` + base64.StdEncoding.EncodeToString([]byte(`{"type":"error","error":{"type":"api_error","message":"m"}}`)) + `"}`, "api_error"},
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
	detect := classify.Default().EnvelopeDetector("Bedrock Runtime", "InvokeModelWithResponseStream")
	s := classify.Stream{Service: "Bedrock Runtime"}
	for _, content := range []string{
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}`,
		`{"type":"message_start","message":{"id":"msg_1","role":"assistant"}}`,
	} {
		f := chunk(t, chunkOf(content))
		if n := testing.AllocsPerRun(100, func() { _ = detect(s, f) }); n != 0 {
			t.Fatalf("%v allocations to pass %q", n, content)
		}
	}
}
