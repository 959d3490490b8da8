package classify

import (
	"bytes"
	"encoding/json"

	smithy "github.com/aws/smithy-go"

	"github.com/streamstatus/streamstatus/smithyext"
)

// AnthropicServiceID is the ServiceID of the table of Anthropic error types,
// the ones found in error envelopes inside Bedrock chunk events. Override
// its rows like any table's (see New).
const AnthropicServiceID = "Anthropic"

// AnthropicSource names where the Anthropic rows come from.
const AnthropicSource = "Anthropic API documentation, \"Errors\" (https://docs.anthropic.com/en/api/errors): " +
	"the HTTP status published for each error type; 429 and 529 are the rate-limit and overload answers " +
	"clients are told to retry with backoff, 500 api_error is an unexpected internal error"

// AnthropicTable returns the Anthropic error types with a published status.
// Types without one (for example timeout_error, billing_error) are not
// listed and are classified like unknown exceptions.
//
//	error.type             HTTP  retry  throttle
//	invalid_request_error   400  no     no
//	authentication_error    401  no     no
//	permission_error        403  no     no
//	not_found_error         404  no     no
//	request_too_large       413  no     no
//	rate_limit_error        429  yes    yes
//	api_error               500  yes    no
//	overloaded_error        529  yes    yes
func AnthropicTable() Table {
	client := func(t string, status int) Rule {
		return Rule{Type: t, Outcome: Outcome{Code: t, Status: status, Fault: smithy.FaultClient}}
	}
	return Table{
		ServiceID: AnthropicServiceID,
		Source:    AnthropicSource,
		Rules: []Rule{
			client("invalid_request_error", 400),
			client("authentication_error", 401),
			client("permission_error", 403),
			client("not_found_error", 404),
			client("request_too_large", 413),
			{Type: "rate_limit_error", Outcome: Outcome{Code: "rate_limit_error", Status: 429, Retryable: true, Throttle: true, Fault: smithy.FaultClient}},
			{Type: "api_error", Outcome: Outcome{Code: "api_error", Status: 500, Retryable: true, Fault: smithy.FaultServer}},
			{Type: "overloaded_error", Outcome: Outcome{Code: "overloaded_error", Status: 529, Retryable: true, Throttle: true, Fault: smithy.FaultServer}},
		},
	}
}

// EnvelopeError is the Unwrap of a StatusError made from an error envelope:
// the envelope's own type and message.
type EnvelopeError struct {
	Type    string // error.type, e.g. "overloaded_error"
	Message string // error.message
}

// Error returns "type: message".
func (e *EnvelopeError) Error() string { return e.Type + ": " + e.Message }

// ErrorCode returns the envelope's error type.
func (e *EnvelopeError) ErrorCode() string { return e.Type }

// ErrorMessage returns the envelope's message.
func (e *EnvelopeError) ErrorMessage() string { return e.Message }

// ErrorFault is unknown for envelopes.
func (e *EnvelopeError) ErrorFault() smithy.ErrorFault { return smithy.FaultUnknown }

// EnvelopeDetector returns the detector of in-band error envelopes for one
// service's operation, or nil when none applies. Today that is Bedrock
// Runtime's InvokeModelWithResponseStream, whose chunk events carry the
// model provider's bytes: with Anthropic models Bedrock can send an ordinary
// chunk whose bytes are {"type":"error","error":{...}}.
//
// The detector returns a StatusError for an envelope and nil for anything
// else. It decides from the first bytes of the chunk's base64 text, without
// decoding or allocating for ordinary content.
func (c *Classifier) EnvelopeDetector(service, operation string) func(Stream, *smithyext.Frame) *smithyext.StatusError {
	if service != "Bedrock Runtime" || operation != "InvokeModelWithResponseStream" {
		return nil
	}
	return c.envelope
}

func (c *Classifier) chunkEnvelope(s Stream, f *smithyext.Frame) *smithyext.StatusError {
	if f.MessageType() != smithyext.MessageTypeEvent || string(f.EventType()) != "chunk" || !mayBeEnvelope(f.Payload()) {
		return nil
	}
	var chunk struct {
		Bytes []byte `json:"bytes"` // base64 in the JSON, decoded by encoding/json
	}
	if json.Unmarshal(f.Payload(), &chunk) != nil {
		return nil
	}
	var env struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(chunk.Bytes, &env) != nil || env.Type != "error" {
		return nil
	}
	code := env.Error.Type
	if code == "" {
		code = "error"
	}
	o := c.outcome(AnthropicServiceID, code)
	return s.statusError(smithyext.KindEnvelope, o, env.Error.Message, &EnvelopeError{Type: code, Message: env.Error.Message})
}

// The base64 text of an envelope starts with the encoding of its first 15
// bytes, a multiple of 3: `{"type":"error"` or `{"type": "error`.
var (
	bytesKey        = []byte(`"bytes"`)
	envelopePrefix  = []byte("eyJ0eXBlIjoiZXJyb3Ii") // {"type":"error"
	envelopeSpaced  = []byte("eyJ0eXBlIjogImVycm9y") // {"type": "error
	maxKeySearchLen = 64
)

// mayBeEnvelope looks at the start of a chunk payload ({"bytes":"<base64>"})
// and reports whether the base64 text starts like an error envelope.
func mayBeEnvelope(payload []byte) bool {
	head := payload[:min(len(payload), maxKeySearchLen)]
	i := bytes.Index(head, bytesKey)
	if i < 0 {
		return false
	}
	v := payload[i+len(bytesKey):]
	for len(v) > 0 && (v[0] == ' ' || v[0] == ':') {
		v = v[1:]
	}
	if len(v) == 0 || v[0] != '"' {
		return false
	}
	v = v[1:]
	return bytes.HasPrefix(v, envelopePrefix) || bytes.HasPrefix(v, envelopeSpaced)
}
