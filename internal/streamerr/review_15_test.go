package streamerr_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/internal/streamerr"
)

// Review of issue 15, point 5: "Envelope detection accepts any JSON
// whitespace and key order for a top-level "type":"error"" and the doc of
// EnvelopeDetector: "a JSON object whose top-level "type" is "error", in any
// layout". A key written with a JSON escape is the same key ("\u0074ype" is
// "type" for every JSON decoder, encoding/json included, which the
// detector's own confirmation step uses), but the pre-scan answers a final
// "no" for any escaped key: the envelope is delivered as content.
func TestDefect_EnvelopeEscapedKeyMissed(t *testing.T) {
	detect := streamerr.New(classify.New(classify.DefaultTables()...)).EnvelopeDetector("Bedrock Runtime", "InvokeModelWithResponseStream")
	s := streamerr.Stream{Service: "Bedrock Runtime", Operation: "InvokeModelWithResponseStream"}
	env := `{"\u0074ype":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`
	if se := detect(s, chunk(t, chunkOf(env))); se == nil || se.Code != "overloaded_error" {
		t.Fatalf("envelope %s (top-level type is \"error\" once decoded): detector returned %v; want overloaded_error", env, se)
	}
}

// Review of issue 15, point 5: "keeps its no-false-positive tests". The
// confirmation decode (encoding/json into a struct tagged `json:"type"`)
// matches keys case-insensitively and keeps the last duplicate, so a chunk
// whose top-level "type" is NOT "error" is reported as an envelope as soon
// as the pre-scan defers to it (any JSON escape in the type value, or a
// "\/" in the base64, which encoders that escape slashes produce).
func TestDefect_EnvelopeCaseFoldFalsePositive(t *testing.T) {
	detect := streamerr.New(classify.New(classify.DefaultTables()...)).EnvelopeDetector("Bedrock Runtime", "InvokeModelWithResponseStream")
	s := streamerr.Stream{Service: "Bedrock Runtime", Operation: "InvokeModelWithResponseStream"}
	contents := []string{
		// top-level "type" is "content_block_delta" (escaped); "TYPE" is another key
		`{"type":"\u0063ontent_block_delta","TYPE":"error","delta":{"text":"hi"}}`,
	}
	// No top-level "type" at all; a base64 with "\/" escapes (PHP's and
	// others' default) defers the decision to encoding/json.
	for i := 0; i < 64; i++ {
		c := `{"Type":"error","text":"` + strings.Repeat("?", i) + `"}`
		b64 := base64.StdEncoding.EncodeToString([]byte(c))
		if strings.Contains(b64, "/") {
			contents = append(contents, "raw:"+`{"bytes":"`+strings.ReplaceAll(b64, "/", `\/`)+`"}`)
			break
		}
	}
	for _, c := range contents {
		payload := chunkOf(c)
		if raw, ok := strings.CutPrefix(c, "raw:"); ok {
			payload = raw
		}
		if se := detect(s, chunk(t, payload)); se != nil {
			t.Errorf("content %s taken for an envelope: %v", c, se)
		}
	}
}
