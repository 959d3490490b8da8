package streamerr

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"reflect"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"

	smithy "github.com/aws/smithy-go"

	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/internal/framing"
	"github.com/streamstatus/streamstatus/smithyext"
)

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
func (c *Classifier) EnvelopeDetector(service, operation string) func(Stream, *framing.Frame) *smithyext.StatusError {
	if service != "Bedrock Runtime" || operation != "InvokeModelWithResponseStream" {
		return nil
	}
	return c.envelope
}

func (c *Classifier) chunkEnvelope(s Stream, f *framing.Frame) *smithyext.StatusError {
	if f.MessageType() != framing.MessageTypeEvent || string(f.EventType()) != "chunk" || !mayBeEnvelope(f.Payload()) {
		return nil
	}
	env, ok := chunkBytes(f.Payload())
	if !ok || !json.Valid(env) {
		return nil
	}
	if typ, ok := stringMember(env, "type"); !ok || typ != "error" {
		return nil
	}
	var code, msg string
	if errObj, ok := member(env, "error"); ok {
		code, _ = stringMember(errObj, "type")
		msg, _ = stringMember(errObj, "message")
	}
	if code == "" {
		code = "error"
	}
	o := c.outcome(classify.AnthropicServiceID, code)
	return s.statusError(smithyext.KindEnvelope, o, msg, &smithy.GenericAPIError{Code: code, Message: msg, Fault: smithy.FaultUnknown})
}

// The confirmation decodes JSON with exact keys, as the pre-scan reads it:
// encoding/json's struct decoding would match keys case-insensitively
// ("TYPE" for "type") and keep the last of duplicate keys, so content
// could pass for an envelope. A key is compared once unescaped
// ("\u0074ype" is "type"), and the first member with the key counts, as
// in the pre-scan.

// chunkBytes returns the decoded base64 of the "bytes" member of a chunk
// payload ({"bytes":"<base64>"}), read as the SDK's decoder reads it: the
// payload's first JSON value only (what follows it is never read), and of
// a repeated "bytes" member the last (not null, on the SDK generation that
// skips null members: sdkSkipsNullMembers).
func chunkBytes(payload []byte) ([]byte, bool) {
	var obj json.RawMessage // the first JSON value, validated
	if json.NewDecoder(bytes.NewReader(payload)).Decode(&obj) != nil {
		return nil, false
	}
	raw, ok := lastMember(obj, "bytes", sdkSkipsNullMembers)
	if !ok {
		return nil, false
	}
	var b []byte // base64 in the JSON, decoded by encoding/json
	if json.Unmarshal(raw, &b) != nil {
		return nil, false
	}
	return b, true
}

// lastMember returns the value of the last member of the JSON object obj
// whose key, unescaped, is exactly key, skipping members whose value is
// null when skipNull is set. obj is valid JSON.
func lastMember(obj []byte, key string, skipNull bool) (json.RawMessage, bool) {
	var last json.RawMessage
	eachMember(obj, func(k string, v json.RawMessage) bool {
		if k == key && !(skipNull && string(v) == "null") {
			last = v
		}
		return true
	})
	return last, last != nil
}

// sdkSkipsNullMembers says how the linked bedrockruntime decodes a chunk
// whose "bytes" member repeats with a null: the schema-serde generation
// (v1.63.0 on, the one with a Protocol option) skips a null member, so an
// earlier "bytes" stands; the per-operation generation before it decodes
// the chunk into a map, where the last member wins even when null, and
// leaves the chunk's bytes empty. Fixed when the program is built.
var sdkSkipsNullMembers = func() bool {
	_, ok := reflect.TypeFor[bedrockruntime.Options]().FieldByName("Protocol")
	return ok
}()

// member returns the value of the first member of the JSON object obj
// whose key, unescaped, is exactly key. obj is valid JSON.
func member(obj []byte, key string) (json.RawMessage, bool) {
	var found json.RawMessage
	eachMember(obj, func(k string, v json.RawMessage) bool {
		if k == key {
			found = v
			return false
		}
		return true
	})
	return found, found != nil
}

// eachMember calls fn with each member of the JSON object obj, key
// unescaped, in order, until fn returns false. obj is valid JSON.
func eachMember(obj []byte, fn func(key string, value json.RawMessage) bool) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return
		}
		var v json.RawMessage
		if dec.Decode(&v) != nil {
			return
		}
		if k, _ := t.(string); !fn(k, v) {
			return
		}
	}
}

// stringMember returns the member key of the JSON object obj when it is a
// string.
func stringMember(obj []byte, key string) (string, bool) {
	raw, ok := member(obj, key)
	if !ok || len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var v string
	if json.Unmarshal(raw, &v) != nil {
		return "", false
	}
	return v, true
}

var bytesKey = []byte(`"bytes"`)

// mayBeEnvelope reports whether a chunk payload ({"bytes":"<base64>"}) may
// carry an error envelope: whether its bytes decode to a JSON object whose
// top-level "type" is the string "error", whatever the whitespace and key
// order. A yes is confirmed by decoding the JSON (chunkEnvelope); a no is
// final. See envelopeAnswer.
func mayBeEnvelope(payload []byte) bool {
	return envelopeAnswer(payload, true) == answerYes
}

// MayCarryEnvelope reports whether a chunk event may carry an error
// envelope, from as much of its payload as f holds: for a partial frame
// (framing.Scanner.NextHead), a payload prefix. A false is final for the
// whole frame; on true, read the frame whole and ask the detector. On a
// prefix a false rests on the first "bytes" member alone: a later one,
// which the SDK would keep instead, is not seen (README: Bedrock never
// repeats it).
func MayCarryEnvelope(f *framing.Frame) bool {
	if f.MessageType() != framing.MessageTypeEvent || string(f.EventType()) != "chunk" {
		return false
	}
	return envelopeAnswer(f.Payload(), !f.Partial()) != answerNo
}

// envelopeAnswer answers mayBeEnvelope for payload, the whole chunk
// payload or (whole false) a prefix of it; for a prefix it answers
// answerMaybe when the prefix does not decide. It reads no more than it
// needs: the base64 is decoded a block at a time into a buffer on the
// stack, up to the block that decides, usually the first (ordinary chunks
// start with their "type": {"type":"content_block_delta",...}); the end of
// the base64 (its closing quote) and any JSON escape in it are looked for
// block by block, not across the whole payload. It allocates nothing.
// The fast path reads only Bedrock's layout, a chunk whose first member
// is a plain "bytes" key; any other (another member first, an escaped key,
// a "bytes" key only inside a nested value) gets a yes, and the exact
// decode (chunkEnvelope) decides, as the SDK's decoder would.
//
// Reading only up to the deciding block answers as reading the whole
// value would: the blocks before it decode the same bytes either way, and
// the top-level scanner's no depends only on the bytes it has seen.
func envelopeAnswer(payload []byte, whole bool) answer {
	more := answerNo // what running out of input means
	if !whole {
		more = answerMaybe
	}
	v := skipSpace(payload)
	if len(v) == 0 {
		return more
	}
	if v[0] != '{' {
		return answerNo // not a JSON object: no chunk at all
	}
	v = skipSpace(v[1:])
	if len(v) < len(bytesKey) && bytes.HasPrefix(bytesKey, v) {
		return more
	}
	if !bytes.HasPrefix(v, bytesKey) {
		// The first key is not a plain "bytes" (another member first, or
		// an escaped key: "\u0062ytes" is "bytes"): let the exact decode
		// decide. Bedrock's chunks start with "bytes".
		return answerYes
	}
	rest := v[len(bytesKey):]
	a := bytesValueAnswer(rest, more)
	if a == answerNo && whole && (bytes.Contains(rest, bytesKey) || bytes.IndexByte(rest, '\\') >= 0) {
		// The SDK keeps the last non-null "bytes" member: a later one (or
		// an escaped key) may be it. The exact decode decides.
		return answerYes
	}
	return a
}

// bytesValueAnswer answers envelopeAnswer from what follows the chunk's
// first "bytes" key: its value. more is what running out of input means.
func bytesValueAnswer(v []byte, more answer) answer {
	whole := more == answerNo
	v = skipSpace(v)
	if len(v) == 0 {
		return more
	}
	if v[0] != ':' {
		return answerNo
	}
	v = skipSpace(v[1:])
	if len(v) == 0 {
		return more
	}
	if v[0] != '"' {
		return answerNo
	}
	v = v[1:]
	var (
		sc  topLevelType
		buf [96]byte // 128 base64 characters
	)
	// A small first block: ordinary chunks start with their "type".
	for block := 32; ; block = len(buf) / 3 * 4 {
		n := min(len(v), block)
		b64, last := v[:n], false
		if end := bytes.IndexByte(b64, '"'); end >= 0 {
			b64, last = b64[:end], true // the base64 ends here (base64 has no quote)
		}
		if bytes.IndexByte(b64, '\\') >= 0 {
			return answerYes // a JSON escape inside the base64 (\/): let the decode decide
		}
		if !last && n < block {
			// The input ends inside the value: a prefix, or a payload
			// that is not JSON. Decode the whole groups there are.
			if whole {
				return answerNo // encoding/json rejects an unterminated string
			}
			b64 = b64[:len(b64)/4*4]
		}
		m, err := base64.StdEncoding.Decode(buf[:], b64)
		if err != nil {
			return answerNo // not base64: encoding/json would reject it too
		}
		if a := sc.feed(buf[:m]); a != answerMaybe {
			return a
		}
		if last {
			return answerNo // the whole value decoded without a top-level "type":"error"
		}
		if n < block {
			return more
		}
		v = v[n:]
	}
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
// follows rejects. A JSON escape in a key before the first plain "type", or
// in the type's value, also gets a yes: the exact decode unescapes it.
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
			case c == '\\':
				return answerYes // an escaped key ("\u0074ype" is "type"): let the exact decode decide
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
				return answerYes // an escaped value: let the exact decode decide
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
