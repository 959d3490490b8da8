package streamerr_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/internal/framing"
	"github.com/streamstatus/streamstatus/internal/streamerr"
)

// headOf returns the chunk frame with payload read by NextHead with a
// payload prefix of n bytes (a whole frame when n covers the payload).
func headOf(t testing.TB, payload string, n int) *framing.Frame {
	t.Helper()
	f, err := framing.NewScanner(bytes.NewReader(chunkBytesOf(t, payload))).NextHead(0, n)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// envelopePayloads are chunk payloads, envelopes and not, in the layouts
// the detector's tests use, plus escapes inside the base64.
func envelopePayloads() []string {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	env := `{"type":"error","error":{"type":"overloaded_error","message":"m"}}`
	return []string{
		chunkOf(env),
		chunkOf(`{"error":{"type":"overloaded_error","message":"m"},"type":"error"}`),
		chunkOf(`{"pad":"` + strings.Repeat("z", 300) + `","type":"error"}`),
		chunkOf("{\n  \"type\": \"error\"\n}"),
		`{ "bytes" : "` + b64(env) + `"}`,
		`{"p":"abc","bytes":"` + b64(env) + `"}`,
		`{"bytes":"` + strings.ReplaceAll(b64(env), "/", `\/`) + `"}`,
		`{"bytes":"` + b64(env)[:8] + `\/` + b64(env)[8:] + `"}`,
		chunkOf(`{"type":"content_block_delta","delta":{"type":"error","text":"x"}}`),
		chunkOf(`{"delta":{"type":"error"},"type":"content_block_delta"}`),
		chunkOf(`{"type":"errors"}`),
		chunkOf(`{"type":"error"`),
		chunkOf(strings.Repeat("x", 5000)),
		`{"bytes":"` + b64(`{"type":"content_block_delta"}`) + strings.Repeat(`\/`, 10) + `"}`,
		`{"other":1}`,
		`{"bytes":"eyJ0eXBlIjoiZXJyb3Ii!!!"}`,
	}
}

// The check on a payload prefix (MayCarryEnvelope on a partial frame, the
// pass-through's test) never rules out a chunk the detector would take for
// an envelope, at any prefix length; on a whole frame it answers as the
// detector's pre-scan.
func TestMayCarryEnvelopePrefixNeverMissesOne(t *testing.T) {
	for _, p := range envelopePayloads() {
		checkPrefixes(t, p)
	}
}

func checkPrefixes(t *testing.T, payload string) {
	detect := streamerr.New(classify.New(classify.DefaultTables()...)).EnvelopeDetector("Bedrock Runtime", "InvokeModelWithResponseStream")
	s := streamerr.Stream{Service: "Bedrock Runtime", Operation: "InvokeModelWithResponseStream"}
	envelope := detect(s, chunk(t, payload)) != nil
	for n := 0; n <= len(payload)+1; n++ {
		f := headOf(t, payload, n)
		may := streamerr.MayCarryEnvelope(f)
		if envelope && !may {
			t.Fatalf("payload %.80q: a %d-byte prefix rules out an envelope the detector finds", payload, n)
		}
		if !f.Partial() && may && !envelope && !strings.Contains(payload, `\`) {
			// A whole frame answers as the pre-scan, whose yes the detector
			// confirms; a yes it does not confirm comes only from the
			// pre-scan's deliberate maybes (escapes, invalid JSON).
			if detect(s, f) != nil {
				t.Fatalf("payload %.80q: inconsistent", payload)
			}
		}
	}
}

// FuzzMayCarryEnvelope: for any content a chunk's base64 can carry (and
// any raw payload), no payload prefix rules out an envelope the detector
// finds.
//
//	go test -run '^$' -fuzz '^FuzzMayCarryEnvelope$' -fuzztime 2m ./internal/streamerr/
func FuzzMayCarryEnvelope(f *testing.F) {
	for _, p := range envelopePayloads() {
		f.Add(p, false)
	}
	f.Add(`{"type":"error","error":{"type":"overloaded_error","message":"m"}}`, true)
	f.Add(`{"type" : "error"}`, true)
	f.Fuzz(func(t *testing.T, s string, wrap bool) {
		if wrap {
			s = chunkOf(s)
		}
		if len(s) > 4096 {
			return
		}
		checkPrefixes(t, s)
	})
}
