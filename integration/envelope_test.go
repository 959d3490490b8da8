package integration_test

import (
	"context"
	"errors"
	"testing"

	smithy "github.com/aws/smithy-go"

	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/internal/streamerr"
	"github.com/streamstatus/streamstatus/middleware"
	"github.com/streamstatus/streamstatus/smithyext"
)

// envelopeRows is the Anthropic error list (docs.anthropic.com/en/api/errors),
// written out here independently of package classify.
var envelopeRows = []struct {
	errType   string
	status    int
	retryable bool
	throttle  bool
}{
	{"invalid_request_error", 400, false, false},
	{"authentication_error", 401, false, false},
	{"permission_error", 403, false, false},
	{"not_found_error", 404, false, false},
	{"request_too_large", 413, false, false},
	{"rate_limit_error", 429, true, true},
	{"api_error", 500, true, false},
	{"overloaded_error", 529, true, true},
	{"timeout_error", 500, false, false}, // no published status: like an unknown exception
	{"billing_error", 500, false, false},
}

func TestAnthropicErrorEnvelopes(t *testing.T) {
	for _, r := range envelopeRows {
		t.Run(r.errType, func(t *testing.T) {
			t.Parallel()
			// Before content: retried transparently when retryable, else the
			// call fails; the envelope never reaches the consumer.
			srv := newServer(t)
			c := newClient(srv, clientOption, 3)
			clean, want := invokeStream.healthy(2, "clean")
			srv.Enqueue(fake.Response{Steps: []fake.Step{fake.AnthropicError(r.errType, "It failed")}}, fake.Response{Steps: clean})
			res := invokeStream.run(context.Background(), c)
			if r.retryable {
				if res.callErr != nil || res.streamErr != nil || !equalStrings(res.events, want) || srv.CallCount() != 2 {
					t.Fatalf("first-chunk envelope: call %v stream %v events %q calls %d; want a transparent retry",
						res.callErr, res.streamErr, res.events, srv.CallCount())
				}
			} else {
				checkEnvelope(t, res.callErr, r.errType, r.status, r.retryable, r.throttle, 0)
				if srv.CallCount() != 1 {
					t.Fatalf("%d calls for a non-retryable envelope, want 1", srv.CallCount())
				}
			}

			// After N chunks: the typed error with N delivered.
			srv2 := newServer(t)
			content, want2 := invokeStream.content(3, "part")
			srv2.Enqueue(fake.Response{Steps: steps(content, []fake.Step{fake.AnthropicError(r.errType, "It failed")})})
			res = invokeStream.run(context.Background(), newClient(srv2, configWide, 3))
			if res.callErr != nil || !equalStrings(res.events, want2) || srv2.CallCount() != 1 {
				t.Fatalf("call %v events %q calls %d; the envelope chunk must not be delivered", res.callErr, res.events, srv2.CallCount())
			}
			checkEnvelope(t, res.streamErr, r.errType, r.status, r.retryable, r.throttle, 3)
		})
	}
}

func checkEnvelope(t *testing.T, err error, errType string, status int, retryable, throttle bool, events int) {
	t.Helper()
	var se *smithyext.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("want a StatusError, got %T %v", err, err)
	}
	if se.Kind != smithyext.KindEnvelope || se.Code != errType || se.Status != status || se.Retryable != retryable ||
		se.Throttle != throttle || se.Events != events || se.Message != "It failed" {
		t.Fatalf("got %+v", se)
	}
	if got, _ := statusOf(err); got != status {
		t.Fatalf("errors.As status %d, want %d", got, status)
	}
	var env *smithy.GenericAPIError
	if !errors.As(err, &env) || env.Code != errType || env.Message != "It failed" {
		t.Fatalf("envelope detail not reachable: %v", err)
	}
}

// TestContentMentioningErrorIsDelivered: chunks whose content merely
// contains the word "error" (even a JSON "type" of another kind) are
// delivered untouched.
func TestContentMentioningErrorIsDelivered(t *testing.T) {
	srv := newServer(t)
	c := newClient(srv, clientOption, 3)
	texts := []string{
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"error"}}`,
		`{"type":"error_count","value":3}`,
		`{"type": "errors"}`,
		`error`,
		`{"type":"error"`, // not JSON: content, not an envelope
	}
	var script []fake.Step
	var want []string
	for _, text := range texts {
		script = append(script, fake.Chunk([]byte(text)))
		want = append(want, "chunk:"+text)
	}
	srv.Enqueue(fake.Response{Steps: script})
	res := invokeStream.run(context.Background(), c)
	if res.callErr != nil || res.streamErr != nil || !equalStrings(res.events, want) {
		t.Fatalf("call %v stream %v events %q", res.callErr, res.streamErr, res.events)
	}
}

// TestEnvelopesCanBeTurnedOff: with WithDisableErrorEnvelopes the envelope is
// content again, as with the bare SDK.
func TestEnvelopesCanBeTurnedOff(t *testing.T) {
	srv := newServer(t)
	c := newClient(srv, clientOption, 3, middleware.WithDisableErrorEnvelopes())
	srv.Enqueue(fake.Response{Steps: []fake.Step{fake.AnthropicError("overloaded_error", "Overloaded")}})
	res := invokeStream.run(context.Background(), c)
	if res.callErr != nil || res.streamErr != nil || len(res.events) != 1 || srv.CallCount() != 1 {
		t.Fatalf("call %v stream %v events %q", res.callErr, res.streamErr, res.events)
	}
}

// TestEnvelopesOnlyOnInvokeModelWithResponseStream: ConverseStream never
// carries provider bytes, so nothing is inspected there.
func TestEnvelopesOnlyOnInvokeModelWithResponseStream(t *testing.T) {
	c := streamerr.New(classify.New(classify.DefaultTables()...))
	if c.EnvelopeDetector("Bedrock Runtime", "ConverseStream") != nil || c.EnvelopeDetector("SageMaker Runtime", "InvokeEndpointWithResponseStream") != nil {
		t.Fatal("envelope detection applies beyond InvokeModelWithResponseStream")
	}
	if c.EnvelopeDetector("Bedrock Runtime", "InvokeModelWithResponseStream") == nil {
		t.Fatal("no detector for InvokeModelWithResponseStream")
	}
}
