package integration_test

// Review y2 (the fixes bb2c0d2, eb42085, 4176b15): each test below fails on
// the code at ddb97ac.

import (
	"context"
	"errors"
	"testing"

	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/smithyext"
)

// TestDefect_EnvelopeInLastDuplicateBytesKeyIsContent: a chunk whose
// payload has the "bytes" member twice, valid JSON, Bedrock's layout (a
// plain "bytes" first). The SDK's JSON shape deserializer sets the member
// once per occurrence, so the chunk's Bytes are the LAST one: here an
// Anthropic overloaded_error envelope, handed to the consumer as content.
// The pre-scan (envelopeAnswer) decides on the first "bytes" value alone
// (ordinary content: no), and chunkEnvelope's exact decode would take the
// first member too (member: "the first member with the key counts"). The
// README: any JSON layout the SDK decodes into the chunk's bytes counts.
// Two layouts: content then envelope, and null then envelope (the SDK
// skips a null member).
func TestDefect_EnvelopeInLastDuplicateBytesKeyIsContent(t *testing.T) {
	const env = "eyJ0eXBlIjoiZXJyb3IiLCJlcnJvciI6eyJ0eXBlIjoib3ZlcmxvYWRlZF9lcnJvciIsIm1lc3NhZ2UiOiJidXN5In19" // {"type":"error","error":{"type":"overloaded_error","message":"busy"}}
	const content = "eyJ0eXBlIjoiY29udGVudF9ibG9ja19kZWx0YSIsImRlbHRhIjp7InRleHQiOiJoaSJ9fQ=="                 // {"type":"content_block_delta","delta":{"text":"hi"}}
	for _, layout := range []struct{ name, payload string }{
		{"content then envelope", `{"bytes":"` + content + `","bytes":"` + env + `"}`},
		{"null then envelope", `{"bytes":null,"bytes":"` + env + `"}`},
	} {
		envelope := fake.Event("chunk", []byte(layout.payload))
		for _, how := range installs {
			t.Run(layout.name+"/"+how.String()+"/after content", func(t *testing.T) {
				srv := newServer(t)
				c := newClient(srv, how, 3)
				srv.Enqueue(fake.Response{Steps: []fake.Step{fake.Chunk([]byte("first")), envelope, fake.Chunk([]byte("last"))}})
				res := invokeStream.run(context.Background(), c)
				var se *smithyext.StatusError
				if !equalStrings(res.events, []string{"chunk:first"}) || !errors.As(res.streamErr, &se) || se.ErrorCode() != "overloaded_error" {
					t.Fatalf("events %q, stream error %v; want only chunk:first, then the overloaded_error StatusError", res.events, res.streamErr)
				}
			})
		}
	}
}

// TestDefect_EnvelopeFollowedByMoreBytesIsContent: a chunk payload that
// is Bedrock's layout, {"bytes":"<envelope>"}, followed by more bytes
// (another object, a stray brace). The SDK's JSON shape deserializer stops
// at the chunk object's closing brace and hands the envelope to the
// consumer as the chunk's Bytes (the bare SDK run of the same stream shows
// it); the plugin's exact decode (chunkBytes) first requires json.Valid of
// the whole payload, so it answers "not an envelope" and the envelope goes
// through as content, after content with no typed error.
func TestDefect_EnvelopeFollowedByMoreBytesIsContent(t *testing.T) {
	const env = "eyJ0eXBlIjoiZXJyb3IiLCJlcnJvciI6eyJ0eXBlIjoib3ZlcmxvYWRlZF9lcnJvciIsIm1lc3NhZ2UiOiJidXN5In19" // {"type":"error","error":{"type":"overloaded_error","message":"busy"}}
	for _, payload := range []string{
		`{"bytes":"` + env + `"}{"bytes":"eA=="}`,
		`{"bytes":"` + env + `"}}`,
	} {
		for _, how := range installs {
			t.Run(payload[len(payload)-3:]+"/"+how.String(), func(t *testing.T) {
				srv := newServer(t)
				c := newClient(srv, how, 3)
				srv.Enqueue(fake.Response{Steps: []fake.Step{fake.Chunk([]byte("first")), fake.Event("chunk", []byte(payload)), fake.Chunk([]byte("last"))}})
				res := invokeStream.run(context.Background(), c)
				var se *smithyext.StatusError
				if !equalStrings(res.events, []string{"chunk:first"}) || !errors.As(res.streamErr, &se) || se.ErrorCode() != "overloaded_error" {
					t.Fatalf("events %q, stream error %v; want only chunk:first, then the overloaded_error StatusError", res.events, res.streamErr)
				}
			})
		}
	}
}

// TestDefect_ContentInLastDuplicateBytesKeyTakenForEnvelope: the mirror of
// TestDefect_EnvelopeInLastDuplicateBytesKeyIsContent. A chunk
// {"bytes":"<envelope>","bytes":"<content>"}: the SDK decodes the chunk's
// Bytes from the last member (the bare SDK hands the content to the
// consumer); the plugin reads the first and ends a healthy stream with an
// overloaded_error StatusError, the content never delivered.
func TestDefect_ContentInLastDuplicateBytesKeyTakenForEnvelope(t *testing.T) {
	const env = "eyJ0eXBlIjoiZXJyb3IiLCJlcnJvciI6eyJ0eXBlIjoib3ZlcmxvYWRlZF9lcnJvciIsIm1lc3NhZ2UiOiJidXN5In19" // {"type":"error","error":{"type":"overloaded_error","message":"busy"}}
	const content = "aGk="                                                                                     // hi
	chunk := fake.Event("chunk", []byte(`{"bytes":"`+env+`","bytes":"`+content+`"}`))
	for _, how := range installs {
		t.Run(how.String(), func(t *testing.T) {
			srv := newServer(t)
			c := newClient(srv, how, 3)
			srv.Enqueue(fake.Response{Steps: []fake.Step{fake.Chunk([]byte("first")), chunk, fake.Chunk([]byte("last"))}})
			res := invokeStream.run(context.Background(), c)
			if res.callErr != nil || res.streamErr != nil || !equalStrings(res.events, []string{"chunk:first", "chunk:hi", "chunk:last"}) {
				t.Fatalf("events %q, call error %v, stream error %v; want chunk:first, chunk:hi, chunk:last as the bare SDK decodes them", res.events, res.callErr, res.streamErr)
			}
		})
	}
	t.Run("bare SDK", func(t *testing.T) {
		srv := newServer(t)
		c := newClient(srv, bare, 3)
		srv.Enqueue(fake.Response{Steps: []fake.Step{fake.Chunk([]byte("first")), chunk, fake.Chunk([]byte("last"))}})
		if res := invokeStream.run(context.Background(), c); !equalStrings(res.events, []string{"chunk:first", "chunk:hi", "chunk:last"}) {
			t.Fatalf("bare SDK: events %q, stream error %v", res.events, res.streamErr)
		}
	})
}
