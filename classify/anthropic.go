package classify

import (
	"bytes"
	"encoding/base64"
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
// The detector returns a StatusError for an envelope (a JSON object whose
// top-level "type" is "error", in any layout) and nil for anything else. On
// ordinary content it allocates nothing and usually stops at the chunk's
// first key.
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

var bytesKey = []byte(`"bytes"`)

// mayBeEnvelope reports whether a chunk payload ({"bytes":"<base64>"}) may
// carry an error envelope: whether its bytes decode to a JSON object whose
// top-level "type" is the string "error", whatever the whitespace and key
// order. It decodes the base64 a block at a time into a buffer on the stack
// and stops as soon as the answer is known, usually at the first key of an
// ordinary chunk ({"type":"content_block_delta",...}); it allocates
// nothing. A yes is confirmed by decoding the JSON (chunkEnvelope); a no is
// final.
func mayBeEnvelope(payload []byte) bool {
	b64, ok := chunkBase64(payload)
	if !ok {
		return false
	}
	if bytes.IndexByte(b64, '\\') >= 0 {
		return true // a JSON escape inside the base64 (\/): let encoding/json decide
	}
	var (
		sc  topLevelType
		buf [96]byte // 128 base64 characters
	)
	// A small first block: ordinary chunks start with their "type".
	for block := 32; len(b64) > 0; block = len(buf) / 3 * 4 {
		n := min(len(b64), block)
		m, err := base64.StdEncoding.Decode(buf[:], b64[:n])
		if err != nil {
			return false // not base64: encoding/json would reject it too
		}
		switch sc.feed(buf[:m]) {
		case answerYes:
			return true
		case answerNo:
			return false
		}
		b64 = b64[n:]
	}
	return false
}

// chunkBase64 returns the base64 text of the "bytes" member of a chunk
// payload. Base64 has no quote, so the value ends at the next one.
func chunkBase64(payload []byte) ([]byte, bool) {
	i := bytes.Index(payload, bytesKey)
	if i < 0 {
		return nil, false
	}
	v := skipSpace(payload[i+len(bytesKey):])
	if len(v) == 0 || v[0] != ':' {
		return nil, false
	}
	v = skipSpace(v[1:])
	if len(v) == 0 || v[0] != '"' {
		return nil, false
	}
	v = v[1:]
	end := bytes.IndexByte(v, '"')
	if end < 0 {
		return nil, false
	}
	return v[:end], true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	return b
}

type answer uint8

const (
	answerMaybe answer = iota // more input needed
	answerYes
	answerNo
)

// topLevelType is a byte-at-a-time scanner that finds the first top-level
// "type" member of a JSON object and reports whether its value is the
// string "error". It skips other members' values (strings with escapes,
// nested objects and arrays, scalars) without decoding them, so "type"
// inside a nested value or a string never counts. It checks only the
// structure it needs: invalid JSON may get a yes, which the decode that
// follows rejects.
type topLevelType struct {
	state    scanState
	n        int  // bytes of the current key or type value seen
	match    bool // the key (or value) so far matches "type" (or "error")
	isType   bool // the current member's key is "type"
	depth    int  // nesting inside a skipped value
	inString bool // inside a string of a skipped nested value
	escaped  bool // the previous byte of a string was a backslash
}

type scanState uint8

const (
	stObject    scanState = iota // before the opening brace
	stFirstKey                   // after '{': a key or '}'
	stKeyStart                   // after ',': a key
	stKey                        // inside a key
	stColon                      // after a key
	stValue                      // after ':'
	stTypeValue                  // inside the string value of "type"
	stString                     // inside a skipped string value
	stNested                     // inside a skipped object or array
	stScalar                     // inside a skipped number or literal
	stAfter                      // after a value: ',' or '}'
)

func (s *topLevelType) feed(p []byte) answer {
	for _, c := range p {
		switch s.state {
		case stObject:
			switch {
			case isSpace(c):
			case c == '{':
				s.state = stFirstKey
			default:
				return answerNo
			}
		case stFirstKey, stKeyStart:
			switch {
			case isSpace(c):
			case c == '"':
				s.state, s.n, s.match = stKey, 0, true
			default:
				return answerNo // '}' (no "type") or not JSON
			}
		case stKey:
			switch {
			case s.escaped:
				s.escaped = false
			case c == '\\':
				s.escaped, s.match = true, false // an escaped key: not a plain "type"
			case c == '"':
				s.isType = s.match && s.n == len("type")
				s.state = stColon
			default:
				s.match = s.match && s.n < len("type") && c == "type"[s.n]
				s.n++
			}
		case stColon:
			switch {
			case isSpace(c):
			case c == ':':
				s.state = stValue
			default:
				return answerNo
			}
		case stValue:
			switch {
			case isSpace(c):
			case s.isType:
				if c != '"' {
					return answerNo // "type" is not a string
				}
				s.state, s.n, s.match = stTypeValue, 0, true
			case c == '"':
				s.state = stString
			case c == '{' || c == '[':
				s.state, s.depth, s.inString = stNested, 1, false
			default:
				s.state = stScalar
			}
		case stTypeValue:
			switch {
			case c == '\\':
				return answerYes // an escaped value: let encoding/json decide
			case c == '"':
				if s.match && s.n == len("error") {
					return answerYes
				}
				return answerNo
			default:
				s.match = s.match && s.n < len("error") && c == "error"[s.n]
				s.n++
			}
		case stString:
			switch {
			case s.escaped:
				s.escaped = false
			case c == '\\':
				s.escaped = true
			case c == '"':
				s.state = stAfter
			}
		case stNested:
			switch {
			case s.inString:
				switch {
				case s.escaped:
					s.escaped = false
				case c == '\\':
					s.escaped = true
				case c == '"':
					s.inString = false
				}
			case c == '"':
				s.inString = true
			case c == '{' || c == '[':
				s.depth++
			case c == '}' || c == ']':
				s.depth--
				if s.depth == 0 {
					s.state = stAfter
				}
			}
		case stScalar:
			switch {
			case c == ',':
				s.state = stKeyStart
			case c == '}':
				return answerNo
			case isSpace(c):
				s.state = stAfter
			}
		case stAfter:
			switch {
			case isSpace(c):
			case c == ',':
				s.state = stKeyStart
			default:
				return answerNo // '}': no top-level "type"
			}
		}
	}
	return answerMaybe
}
