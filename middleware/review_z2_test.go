package middleware_test

// Review z2 (the re-fixes bf24ee4 and de6f362): each test below fails on
// the code at 1434854.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/streamstatus/streamstatus/internal/canned"
	"github.com/streamstatus/streamstatus/middleware"
)

func z2invoke(t *testing.T, ep *canned.Endpoint, optFns ...func(*bedrockruntime.Options)) (events []string, streamErr error) {
	t.Helper()
	client := bedrockruntime.NewFromConfig(exampleConfig(ep), optFns...)
	out, err := client.InvokeModelWithResponseStream(context.Background(), &bedrockruntime.InvokeModelWithResponseStreamInput{
		ModelId: aws.String("anthropic.claude-3-haiku-20240307-v1:0"),
		Body:    []byte(`{}`),
	})
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	stream := out.GetStream()
	defer stream.Close()
	for ev := range stream.Events() {
		if c, ok := ev.(*types.ResponseStreamMemberChunk); ok {
			events = append(events, fmt.Sprintf("chunk:%q", c.Value.Bytes))
		}
	}
	return events, stream.Err()
}

// TestDefect_NullLastBytesTakenForEnvelopeOnPerOperationSDK: the README
// says the chunk's JSON "is read as the SDK reads it (... of a repeated
// "bytes" member the last that is not null)". That is the schema-serde
// generation only. The per-operation generation (this module's floor,
// bedrockruntime v1.17.0, and v1.62.0: awsRestjson1_deserializeDocumentPayloadPart)
// decodes the chunk into a map[string]interface{}, where the last "bytes"
// wins even when it is null, and then leaves Bytes nil. So the chunk
// {"bytes":"<envelope>","bytes":null} is an ordinary (empty) chunk for the
// bare SDK of this module, but the plugin (lastMember skips the null) ends
// the healthy stream with an overloaded_error StatusError: content turned
// into an error, the chunks after it lost.
func TestDefect_NullLastBytesTakenForEnvelopeOnPerOperationSDK(t *testing.T) {
	env := base64.StdEncoding.EncodeToString([]byte(`{"type":"error","error":{"type":"overloaded_error","message":"busy"}}`))
	stream := func() canned.Answer {
		return canned.Stream(
			canned.Event("chunk", map[string]string{"bytes": base64.StdEncoding.EncodeToString([]byte("first"))}),
			canned.Event("chunk", json.RawMessage(`{"bytes":"`+env+`","bytes":null}`)),
			canned.Event("chunk", map[string]string{"bytes": base64.StdEncoding.EncodeToString([]byte("last"))}),
		)
	}
	bare, bareErr := z2invoke(t, canned.NewEndpoint(stream()))
	got, gotErr := z2invoke(t, canned.NewEndpoint(stream(), stream()), middleware.WithBedrock())
	switch fmt.Sprint(bare, bareErr) {
	case `[chunk:"first" chunk:"" chunk:"last"] <nil>`: // per-operation generation: the null "bytes" kept
		if fmt.Sprint(got, gotErr) != fmt.Sprint(bare, bareErr) {
			t.Fatalf("with WithBedrock: events %v, stream error %v; the bare SDK (per-operation generation) delivers %v, %v", got, gotErr, bare, bareErr)
		}
	default: // schema-serde generation: the envelope is the chunk's Bytes
		if fmt.Sprint(got) != `[chunk:"first"]` || gotErr == nil {
			t.Fatalf("with WithBedrock: events %v, stream error %v; the bare SDK delivers %v, %v", got, gotErr, bare, bareErr)
		}
	}
}
