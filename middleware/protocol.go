package middleware

import (
	"io"
	"reflect"
	"sync"

	smithy "github.com/aws/smithy-go"
	"github.com/aws/smithy-go/eventstream"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/aws/smithy-go/transport/http/protocol/restjson1"
)

// One event-stream codec per stream.
//
// smithy-go v1.28.9's restJson1 protocol (the schema-serde generation,
// bedrockruntime v1.63+) holds one event-stream codec, and a client holds
// one protocol, so every response stream of a client decodes through the
// same codec from its own reader goroutine. The codec is not safe for that:
// internal/eventstream/codec.go writes its payloadBuf and lazily builds its
// decoder on every message, and re-encodes events the SDK's model does not
// know (AWS adds event types before SDKs catch up) through one shared
// eventstream.Encoder whose buffers it resets per call. Two streams decoding
// at once race; with an unknown event type they receive each other's bytes,
// or the encoder panics in an SDK goroutine, which nobody can recover.
// EventStreamReader.Close does not wait for its goroutine, so "read a few
// events, Close, start the next stream" races too. Upstream: smithy-go issue
// #714, fix PR #716.
//
// One codec per stream is exactly what a client used by one goroutine gets.
// So WithBedrock replaces the client's protocol with isolatedProtocol:
// everything is the client's own protocol except the four event-stream
// methods, which never touch the client's codec.
//
// DeserializeEventMessage is called by the SDK's EventStreamReader from the
// stream's reader goroutine with the response body as reader. With our
// deserialize middleware that body is a *streamBody, and it carries the
// stream's codec from its first message to its end: the first error
// DeserializeEventMessage returns (io.EOF included; the reader goroutine
// stops there), or the body's release (streamBody.release: Close, a
// failure, the stall guard), whichever comes first. The codec then goes
// back to a pool, for a later stream: a codec is 5 allocations
// (restjson1.New's 3 and 2 more when it first decodes: its decoder), too
// many to pay per stream. That is safe because nothing a codec returns
// points into it: payloads are decoded into fresh memory, unknown events
// re-encoded into a fresh buffer (TestPooledCodecKeepsNothing pins it).
// But the re-encoding goes through the codec's eventstream.Encoder, which
// keeps a buffer as large as the largest message it encoded; so a codec
// that re-encoded an unknown event is left to the garbage collector, not
// pooled, or a later stream of tiny events would hold that buffer for its
// whole life. A reader that is not ours
// (an operation our middleware does not wrap, such as the bidirectional
// stream's output, or a body another middleware wrapped around ours)
// borrows a codec for one message at a time.
//
// SerializeEventMessage (input event streams: the bidirectional stream's
// Send, from the SDK's EventStreamWriter goroutine) borrows a codec for one
// message, from a pool of its own (an encoder keeps its largest message's
// buffer; a response stream must not hold one for its life): the shared
// codec's encoder resets its buffers on every message,
// so two streams sending at once would interleave each other's frames. The
// codec writes the whole frame to w before it returns and keeps neither w
// nor anything it serialized (the payload comes from a fresh shape
// serializer per message; the frame is its encoder's buffer, handed to
// w.Write, which by io.Writer's contract does not retain it; the SDK's w,
// an eventstream.SigningWriter or an io.PipeWriter, copies it before
// returning). SerializeInitialRequest and DeserializeInitialResponse borrow
// the same way; restJson1 never calls them (HasInitialEventMessage is
// false), they are routed so that no event-stream method reaches the
// client's codec.
//
// The pool belongs to one WithBedrock option value, not to a client: a
// client built with it keeps one isolatedProtocol, and the same option
// passed per call (to a client built without it) wraps that call's protocol
// with a fresh isolatedProtocol on the same pool, so a per-call option built
// once and reused costs one allocation per call. Codecs are interchangeable
// (restjson1.New ignores its arguments), so clients sharing an option share
// spare codecs safely.
//
// APIOption and AppendMiddlewares cannot do this: an API option receives
// the operation's stack, never the client's Options, and the SDK's
// event-stream deserializer keeps the protocol in an unexported field.
// Reaching that field would take reflection into unexported SDK state; we
// do not. (WithBedrock does use reflection, in isolateClientProtocol, but
// only to read and set the exported Options.Protocol field of the options
// struct the SDK hands to every client option.)
//
// Dropping this file: a smithy-go release containing PR #716 ("Fix shared
// event stream codec races", its CHANGELOG cites #714) no longer keeps
// encoder, decoder or payloadBuf in internal/eventstream.Codec.
// TestUpstreamCodecStillShared (protocol_test.go) fails on the first such
// release pulled into go.mod and says so. Then delete this file, the codec
// field of streamBody and the Protocol line of WithBedrock, and run
// TestConcurrentStreams* in integration/ under -race: they must still pass.
// (streamBody's sdkChecksCRC, decode and crcFailed go too: without this
// protocol the body checks every passed-through frame's CRC itself and
// locks per read, as on the other install paths; or keep a protocol
// wrapper for those alone.)
//
// The same wrapper lets a passed-through frame's CRC be checked once: the
// body leaves it to the SDK's decoder (deserialize.go, sdkChecksCRC), and
// the body's decode, which DeserializeEventMessage calls, turns the
// decoder's eventstream.ChecksumError into the body's StatusError
// (crcFailed). decode also holds the body's lock once per message instead
// of once per read (the decoder reads a frame in ~15 small reads).
// TestDamagedLargeEventTypedOnEveryDecodePath fails should a smithy-go
// release stop checking the CRC.

// isolatedProtocol is a client's restJson1 protocol with one event-stream
// codec per response stream.
type isolatedProtocol struct {
	smithyhttp.ClientProtocol             // the client's own, for everything but event streams
	codecs                    *codecPools // newCodecPool
}

// codecPools are the spare event-stream codecs (*restjson1.Protocol) of one
// WithBedrock option value: those that decode, which a response stream
// holds from its first message to its end, and those borrowed to encode
// one message, apart, since an encoder keeps the buffer of the largest
// message it encoded.
type codecPools struct {
	decode, encode sync.Pool
}

// putDecoder gives back a codec that decoded ev last, unless it
// re-encoded an unknown event (dirty): its encoder then keeps a buffer as
// large as that event, which a later stream would hold for its life.
func (p *codecPools) putDecoder(codec *restjson1.Protocol, dirty bool) {
	if !dirty {
		p.decode.Put(codec)
	}
}

// reencoded reports whether the codec that decoded ev re-encoded it: an
// event of a type the SDK's model does not know.
func reencoded(ev smithy.Deserializable) bool {
	_, ok := ev.(*eventstream.UnknownUnionMember)
	return ok
}

// Unwrap returns the protocol isolatedProtocol wraps, which serves
// everything but event-stream messages.
func (p *isolatedProtocol) Unwrap() smithyhttp.ClientProtocol { return p.ClientProtocol }

// newCodecPool returns empty pools of event-stream codecs.
func newCodecPool() *codecPools {
	p := &codecPools{}
	p.decode.New, p.encode.New = newEventCodec, newEventCodec
	return p
}

// isolateEventStreams returns p with its event streams isolated per stream,
// codecs taken from codecs, if p is a restJson1 protocol: the one
// bedrockruntime.New sets, or one the user set, which cannot be told apart
// (wrapping it is harmless: everything but event-stream messages still goes
// through it, and restjson1.New ignores its arguments, so our codecs encode
// and decode exactly as its own). Any other protocol, p already isolated
// included, is returned as it is.
func isolateEventStreams(p smithyhttp.ClientProtocol, codecs *codecPools) smithyhttp.ClientProtocol {
	if _, ok := p.(*restjson1.Protocol); !ok {
		return p
	}
	return &isolatedProtocol{ClientProtocol: p, codecs: codecs}
}

// newEventCodec returns a codec of its own for one stream: a restJson1
// protocol as bedrockruntime.New makes the client's. (restjson1.New ignores
// its service schema in smithy-go v1.28.9; passing nil keeps this file free
// of bedrockruntime/schemas, which exists only from bedrockruntime v1.63.0,
// so the library still builds on the per-operation generation.)
func newEventCodec() any {
	return restjson1.New(nil)
}

// clientProtocolType is the type of the Protocol field of a schema-serde
// client's options.
var clientProtocolType = reflect.TypeFor[smithyhttp.ClientProtocol]()

// isolateClientProtocol isolates the event streams of the client whose
// options opts points to (a *bedrockruntime.Options), when that client has a
// Protocol option. Options.Protocol exists from bedrockruntime v1.63.0 (the
// schema-serde generation); the per-operation generation before it builds a
// decoder per stream and shares nothing, so there is nothing to do. The
// field is reached by name because naming it in code would make v1.63.0
// the library's floor for every user (see README "Compatibility"); it is
// this package's own option struct argument, read and set once per
// WithBedrock application, never an SDK internal.
func isolateClientProtocol(opts any, codecs *codecPools) {
	v := reflect.ValueOf(opts)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return
	}
	f := v.Elem().FieldByName("Protocol")
	if !f.IsValid() || !f.CanSet() || f.Type() != clientProtocolType || f.IsNil() {
		return
	}
	f.Set(reflect.ValueOf(isolateEventStreams(f.Interface().(smithyhttp.ClientProtocol), codecs)))
}

// DeserializeEventMessage decodes the next message of r with r's own codec
// (streamBody.decode), or, for a reader that is not ours, with a codec
// borrowed for this message.
func (p *isolatedProtocol) DeserializeEventMessage(schema *smithy.Schema, types *smithy.TypeRegistry, r io.Reader) (smithy.Deserializable, error) {
	b, ok := r.(*streamBody)
	if !ok {
		codec := p.codecs.decode.Get().(*restjson1.Protocol)
		ev, err := codec.DeserializeEventMessage(schema, types, r)
		p.codecs.putDecoder(codec, reencoded(ev))
		return ev, err
	}
	return b.decode(p.codecs, schema, types)
}

// SerializeEventMessage encodes one input event with a codec borrowed for
// this message only.
func (p *isolatedProtocol) SerializeEventMessage(schema, variant *smithy.Schema, v smithy.Serializable, w io.Writer) error {
	codec := p.codecs.encode.Get().(*restjson1.Protocol)
	defer p.codecs.encode.Put(codec)
	return codec.SerializeEventMessage(schema, variant, v, w)
}

// SerializeInitialRequest encodes the initial-request message with a
// borrowed codec.
func (p *isolatedProtocol) SerializeInitialRequest(schema *smithy.Schema, v smithy.Serializable, w io.Writer) error {
	codec := p.codecs.encode.Get().(*restjson1.Protocol)
	defer p.codecs.encode.Put(codec)
	return codec.SerializeInitialRequest(schema, v, w)
}

// DeserializeInitialResponse decodes the initial-response message with a
// borrowed codec.
func (p *isolatedProtocol) DeserializeInitialResponse(schema *smithy.Schema, r io.Reader, out smithy.Deserializable) error {
	codec := p.codecs.encode.Get().(*restjson1.Protocol)
	defer p.codecs.encode.Put(codec)
	return codec.DeserializeInitialResponse(schema, r, out)
}
