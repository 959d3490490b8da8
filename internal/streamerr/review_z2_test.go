package streamerr_test

// Review z2 (the re-fixes bf24ee4 and de6f362): each test below fails on
// the code at 1434854.

import (
	"errors"
	"testing"

	smithy "github.com/aws/smithy-go"

	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/internal/streamerr"
)

// TestDefect_EnvelopeTypeClassifiedByAWSGenericTable: an Anthropic
// envelope whose error.type is no row of Anthropic's table but spells, in
// any case, a row of the generic AWS table ("throttling", "slowdown",
// "internalfailure", "validationexception"). chunkEnvelope looks the type
// up with c.outcome(classify.AnthropicServiceID, code), and Classifier.Rule
// falls back to the generic AWS rows: the StatusError's ErrorCode() becomes
// the AWS code ("Throttling"), not the envelope's error.type, and the
// failure gets the AWS row's status and retry (a retryable 429 throttle
// for "throttling"). The README: envelopes get "the statuses of
// Anthropic's published error list (the classify.AnthropicServiceID
// rows)", ErrorCode() is "the envelope's error.type" ([error code]), the
// modeled *smithy.GenericAPIError has the error.type as code, and a type
// no Anthropic row knows is unknown (500, not retried: DESIGN §2); the
// recorded exception.type is then "Throttling", where streamcheck's
// [recorded failures] (report.go recordedCode) expects UnknownEnvelopeError.
func TestDefect_EnvelopeTypeClassifiedByAWSGenericTable(t *testing.T) {
	detect := streamerr.New(classify.New(classify.DefaultTables()...)).EnvelopeDetector("Bedrock Runtime", "InvokeModelWithResponseStream")
	s := streamerr.Stream{Service: "Bedrock Runtime", Operation: "InvokeModelWithResponseStream", Events: 3}
	for _, typ := range []string{"throttling", "slowdown", "internalfailure", "validationexception"} {
		se := detect(s, chunk(t, chunkOf(`{"type":"error","error":{"type":"`+typ+`","message":"m"}}`)))
		if se == nil {
			t.Fatalf("%s: no envelope detected", typ)
		}
		var ae *smithy.GenericAPIError
		if se.ErrorCode() != typ || !errors.As(se, &ae) || ae.Code != typ || se.Retryable || se.Throttle || se.Status != 500 {
			t.Errorf("envelope type %q: ErrorCode() %q, status %d, retryable %v, throttle %v; want the error.type %q, unknown (500, not retried): no Anthropic row has it",
				typ, se.ErrorCode(), se.Status, se.Retryable, se.Throttle, typ)
		}
	}
}
