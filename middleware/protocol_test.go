package middleware

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	smithy "github.com/aws/smithy-go"
	"github.com/aws/smithy-go/eventstream"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/aws/smithy-go/transport/http/protocol/restjson1"

	"github.com/streamstatus/streamstatus/internal/streamerr"
)

// TestUpstreamCodecStillShared is the tripwire of protocol.go: it fails on
// the first smithy-go release whose restJson1 codec no longer keeps
// per-call scratch state (PR #716, fixing issue #714), so the isolation is
// dropped then rather than carried forever. It reads field names of the
// codec's type, never values.
func TestUpstreamCodecStillShared(t *testing.T) {
	field, ok := reflect.TypeOf(restjson1.Protocol{}).FieldByName("eventstream")
	if !ok || field.Type.Kind() != reflect.Pointer || field.Type.Elem().Kind() != reflect.Struct {
		t.Fatalf("smithy-go's restjson1.Protocol no longer holds an event-stream codec (field eventstream: %v): "+
			"check whether smithy-go #714 is fixed, and drop middleware/protocol.go if so (see its comment)", field.Type)
	}
	codec := field.Type.Elem()
	var shared []string
	for _, name := range []string{"payloadBuf", "encoder", "decoder"} {
		if _, ok := codec.FieldByName(name); ok {
			shared = append(shared, name)
		}
	}
	if len(shared) == 0 {
		t.Fatalf("smithy-go's %s keeps no payloadBuf, encoder or decoder: PR #716 (fix for #714) is released; "+
			"drop middleware/protocol.go as its comment says", codec)
	}
	t.Logf("%s still keeps %v per protocol: the isolation is needed", codec, shared)
}

// TestIsolateEventStreams pins which protocols WithBedrock replaces.
func TestIsolateEventStreams(t *testing.T) {
	sdk := restjson1.New(nil)
	isolated := isolateEventStreams(sdk, newCodecPool())
	if _, ok := isolated.(*isolatedProtocol); !ok {
		t.Fatalf("the SDK's restJson1 protocol became %T, want *isolatedProtocol", isolated)
	}
	if again := isolateEventStreams(isolated, newCodecPool()); again != isolated {
		t.Errorf("isolating twice wrapped again (%T): WithBedrock at construction and per call must share one wrapper", again)
	}
	custom := customProtocol{sdk}
	if got := isolateEventStreams(custom, newCodecPool()); got != smithyhttp.ClientProtocol(custom) {
		t.Errorf("a protocol the user set was replaced by %T; it must be left as it is", got)
	}
}

type customProtocol struct{ smithyhttp.ClientProtocol }

// TestIsolatedProtocolOneCodecPerStream: two streams decoded in turn, one
// message at a time, never share a codec, and each stream keeps its own
// across its messages.
func TestIsolatedProtocolOneCodecPerStream(t *testing.T) {
	schema, registry := responseStreamSchema(t)
	p := isolateEventStreams(restjson1.New(nil), newCodecPool())
	a, b := benchBody(chunkFrames(3)), benchBody(chunkFrames(3))
	var first smithyhttp.ClientProtocol
	for i := range 3 {
		for _, body := range []*streamBody{a, b} {
			ev, err := p.DeserializeEventMessage(schema, registry, body)
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if part, ok := any(ev).(*types.PayloadPart); !ok || string(part.Bytes) != fmt.Sprint(i) {
				t.Fatalf("message %d: got %#v", i, ev)
			}
		}
		if i == 0 {
			first = a.codec
		}
		if a.codec == nil || a.codec == b.codec || a.codec != first {
			t.Fatalf("message %d: codecs %p and %p (first %p): want one per stream, kept", i, a.codec, b.codec, first)
		}
	}
}

// chunkFrames returns n InvokeModelWithResponseStream chunk frames whose
// bytes are "0", "1", ...
func chunkFrames(n int) []byte {
	var out bytes.Buffer
	enc := eventstream.NewEncoder()
	for i := range n {
		var m eventstream.Message
		m.Headers.Set(eventstream.EventTypeHeader, eventstream.StringValue("chunk"))
		m.Headers.Set(eventstream.ContentTypeHeader, eventstream.StringValue("application/json"))
		m.Headers.Set(eventstream.MessageTypeHeader, eventstream.StringValue(eventstream.EventMessageType))
		m.Payload, _ = json.Marshal(map[string][]byte{"bytes": []byte(fmt.Sprint(i))})
		_ = enc.Encode(&out, m)
	}
	return out.Bytes()
}

var benchOpts = resolve(nil)

func benchBody(stream []byte) *streamBody {
	return newStreamBody(context.Background(), io.NopCloser(bytes.NewReader(stream)), streamerr.Stream{Service: "Bedrock Runtime", Operation: "InvokeModelWithResponseStream"}, benchOpts)
}

// BenchmarkEventStreamIsolation decodes whole streams through our stream
// body with the client's shared restJson1 protocol (side=shared, the SDK's
// behaviour) and with the isolated one (side=isolated), side by side. The
// difference per stream is the isolation's cost; the slope between 1 and
// 100 events is its cost per event:
//
//	go test -run '^$' -bench EventStreamIsolation -count 6 ./middleware/
func BenchmarkEventStreamIsolation(b *testing.B) {
	schema, registry := responseStreamSchema(b)
	for _, events := range []int{0, 1, 100} {
		stream := chunkFrames(events)
		for _, side := range []struct {
			name     string
			protocol smithyhttp.ClientProtocol
		}{
			{"shared", restjson1.New(nil)},
			{"isolated", isolateEventStreams(restjson1.New(nil), newCodecPool())},
		} {
			b.Run(fmt.Sprintf("events=%d/side=%s", events, side.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					decodeAll(b, side.protocol, schema, registry, benchBody(stream), events)
				}
			})
		}
	}
}

// eventDecoder is what decodeAll needs of a protocol.
type eventDecoder interface {
	DeserializeEventMessage(*smithy.Schema, *smithy.TypeRegistry, io.Reader) (smithy.Deserializable, error)
}

// decodeAll decodes body's events to its end, as the SDK's reader does,
// and fails tb unless there are exactly events of them.
func decodeAll(tb testing.TB, p eventDecoder, schema *smithy.Schema, registry *smithy.TypeRegistry, body io.Reader, events int) {
	for n := 0; ; n++ {
		_, err := p.DeserializeEventMessage(schema, registry, body)
		if err == io.EOF {
			if n != events {
				tb.Fatalf("%d events decoded, want %d", n, events)
			}
			return
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// TestPooledCodecKeepsNothing pins what lets isolatedProtocol hand a codec
// to the next stream: nothing a codec returned for one stream (chunk bytes,
// text, an unknown event's bytes) changes when the codec decodes another.
// If a smithy-go release starts reusing its buffers for what it returns,
// this fails, and the pool must go (one codec per stream, never reused).
func TestPooledCodecKeepsNothing(t *testing.T) {
	frame := func(eventType string, payload any) []byte {
		var m eventstream.Message
		m.Headers.Set(eventstream.EventTypeHeader, eventstream.StringValue(eventType))
		m.Headers.Set(eventstream.ContentTypeHeader, eventstream.StringValue("application/json"))
		m.Headers.Set(eventstream.MessageTypeHeader, eventstream.StringValue(eventstream.EventMessageType))
		m.Payload, _ = json.Marshal(payload)
		var buf bytes.Buffer
		_ = eventstream.NewEncoder().Encode(&buf, m)
		return buf.Bytes()
	}
	stream := func(text string) []byte {
		return slices.Concat(
			frame("chunk", map[string][]byte{"bytes": []byte(text)}),
			frame("futureEvent", map[string]string{"text": text}),
		)
	}
	render := func(evs []smithy.Deserializable) string {
		var out []string
		for _, ev := range evs {
			switch v := any(ev).(type) { // any(): before v1.63 PayloadPart is no smithy.Deserializable
			case *types.PayloadPart:
				out = append(out, "chunk:"+string(v.Bytes))
			case *eventstream.UnknownUnionMember:
				out = append(out, v.Tag+":"+string(v.Value))
			default:
				out = append(out, fmt.Sprintf("%T", ev))
			}
		}
		return strings.Join(out, "|")
	}
	schema, registry := responseStreamSchema(t)
	codec := restjson1.New(nil)
	decodeAll := func(text string) []smithy.Deserializable {
		var evs []smithy.Deserializable
		r := bytes.NewReader(stream(text))
		for {
			ev, err := codec.DeserializeEventMessage(schema, registry, r)
			if err == io.EOF {
				return evs
			}
			if err != nil {
				t.Fatal(err)
			}
			evs = append(evs, ev)
		}
	}
	first := decodeAll("aaaaaaaaaaaaaaaa")
	before := render(first)
	decodeAll("bbbbbbbbbbbbbbbb")
	if after := render(first); after != before || !strings.Contains(before, "aaaa") {
		t.Fatalf("the first stream's events changed when the codec decoded another:\nbefore %q\nafter  %q", before, after)
	}
}

// TestWithBedrockIsolatesTheClientProtocol: WithBedrock, at construction,
// replaces a schema-serde client's protocol with the isolated one.
func TestWithBedrockIsolatesTheClientProtocol(t *testing.T) {
	client := bedrockruntime.New(bedrockruntime.Options{Region: "us-east-1"}, WithBedrock())
	opts := client.Options()
	p := reflect.ValueOf(&opts).Elem().FieldByName("Protocol")
	if !p.IsValid() {
		t.Skip("bedrockruntime before v1.63.0 has no Protocol option and no shared codec")
	}
	if _, ok := p.Interface().(*isolatedProtocol); !ok {
		t.Fatalf("client protocol after WithBedrock is %T, want *isolatedProtocol", p.Interface())
	}
}

// responseStreamSchema returns the schema and type registry the SDK decodes
// InvokeModelWithResponseStream's events with, recorded from one real call
// against a canned response. They are read from a call rather than named
// (bedrockruntime/schemas) because that package exists only from v1.63.0,
// and naming it would raise every user's bedrockruntime floor; before
// v1.63.0 there is no Protocol option and the test is skipped.
func responseStreamSchema(tb testing.TB) (*smithy.Schema, *smithy.TypeRegistry) {
	tb.Helper()
	rec := &recordingProtocol{}
	client := bedrockruntime.New(bedrockruntime.Options{
		Region: "us-east-1",
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "SECRET"}, nil
		}),
		HTTPClient: cannedStream(chunkFrames(1)),
	}, func(o *bedrockruntime.Options) {
		p := reflect.ValueOf(o).Elem().FieldByName("Protocol")
		if !p.IsValid() {
			return
		}
		rec.ClientProtocol = p.Interface().(smithyhttp.ClientProtocol)
		p.Set(reflect.ValueOf(smithyhttp.ClientProtocol(rec)))
	})
	if rec.ClientProtocol == nil {
		tb.Skip("bedrockruntime before v1.63.0 has no Protocol option and no shared codec")
	}
	out, err := client.InvokeModelWithResponseStream(context.Background(), &bedrockruntime.InvokeModelWithResponseStreamInput{
		ModelId: aws.String("m"), Body: []byte("{}"),
	})
	if err != nil {
		tb.Fatal(err)
	}
	stream := out.GetStream()
	for range stream.Events() {
	}
	_ = stream.Close()
	if rec.schema == nil || rec.types == nil {
		tb.Fatalf("no event decoded through the client's protocol (stream error %v)", stream.Err())
	}
	return rec.schema, rec.types
}

// recordingProtocol records the schema and registry of the first event
// decoded through it.
type recordingProtocol struct {
	smithyhttp.ClientProtocol
	once   sync.Once
	schema *smithy.Schema
	types  *smithy.TypeRegistry
}

func (p *recordingProtocol) DeserializeEventMessage(schema *smithy.Schema, types *smithy.TypeRegistry, r io.Reader) (smithy.Deserializable, error) {
	p.once.Do(func() { p.schema, p.types = schema, types })
	return p.ClientProtocol.DeserializeEventMessage(schema, types, r)
}

// cannedStream answers every request with a 200 event stream of body.
type cannedStream []byte

func (c cannedStream) Do(*http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: 200,
		Header:     http.Header{"Content-Type": {"application/vnd.amazon.eventstream"}},
		Body:       io.NopCloser(bytes.NewReader(c)),
	}, nil
}

// TestPooledCodecKeepsNothingWhenEncoding pins what lets isolatedProtocol
// lend a codec to one input event at a time (SerializeEventMessage): the
// codec writes the whole frame to the writer it is given before it returns
// and never writes to it again, and a frame already written stays intact
// when the codec encodes the next one. The frame it hands to w.Write is its
// encoder's own buffer, reused for the next message, so this holds only for
// writers that copy what they are given (io.Writer's contract); the second
// half checks that the SDK's writer for input events, eventstream's
// SigningWriter, does. If either half fails, borrow per stream instead of
// per message, or copy the frame before writing it.
func TestPooledCodecKeepsNothingWhenEncoding(t *testing.T) {
	blob := smithy.NewSchema(smithy.ShapeID{Namespace: "smithy.api", Name: "Blob"}, smithy.ShapeTypeBlob, 0)
	part := smithy.NewSchema(smithy.ShapeID{Namespace: "test", Name: "Part"}, smithy.ShapeTypeStructure, 1)
	bytesMember := part.AddMember("bytes", blob)
	union := smithy.NewSchema(smithy.ShapeID{Namespace: "test", Name: "Input"}, smithy.ShapeTypeUnion, 1)
	variant := union.AddMember("chunk", part)

	codec := restjson1.New(nil)
	encode := func(text string) *recordingWriter {
		w := &recordingWriter{}
		ev := serializableFunc(func(s smithy.ShapeSerializer) {
			s.WriteStruct(part)
			s.WriteBlob(bytesMember, []byte(text))
			s.CloseStruct()
		})
		if err := codec.SerializeEventMessage(union, variant, ev, w); err != nil {
			t.Fatal(err)
		}
		return w
	}
	decodeChunk := func(frame []byte) string {
		msg, err := eventstream.NewDecoder().Decode(bytes.NewReader(frame), nil)
		if err != nil {
			return fmt.Sprintf("undecodable: %v", err)
		}
		var chunk struct{ Bytes []byte }
		if err := json.Unmarshal(msg.Payload, &chunk); err != nil {
			return fmt.Sprintf("bad payload %q: %v", msg.Payload, err)
		}
		return string(chunk.Bytes)
	}

	a := encode("aaaaaaaaaaaaaaaa")
	writesA := a.writes
	b := encode("bbbbbbbbbbbbbbbbbbbbbbbb")
	if a.writes != writesA {
		t.Errorf("the codec wrote to the first message's writer while encoding the second (%d writes, then %d)", writesA, a.writes)
	}
	if got := decodeChunk(a.frame()); got != "aaaaaaaaaaaaaaaa" {
		t.Errorf("the first frame, once the codec encoded another, decodes to %q", got)
	}
	if got := decodeChunk(b.frame()); got != "bbbbbbbbbbbbbbbbbbbbbbbb" {
		t.Errorf("the second frame decodes to %q", got)
	}

	// The SDK signs input events with eventstream.SigningWriter: it must be
	// done with the frame it was given when Write returns.
	frame := encode("cccccccccccccccc").frame()
	var out recordingWriter
	sw := eventstream.NewSigningWriter(&out, fixedSigner{})
	if _, err := sw.Write(frame); err != nil {
		t.Fatal(err)
	}
	for i := range frame {
		frame[i] = 0 // what the codec's next message does to its buffer
	}
	outer, err := eventstream.NewDecoder().Decode(bytes.NewReader(out.frame()), nil)
	if err != nil {
		t.Fatalf("signed envelope: %v", err)
	}
	if got := decodeChunk(outer.Payload); got != "cccccccccccccccc" {
		t.Errorf("eventstream.SigningWriter kept the frame it was given: after the buffer was reused, the signed event decodes to %q", got)
	}
}

// recordingWriter copies every write, as io.Writer's contract asks.
type recordingWriter struct {
	writes int
	buf    []byte
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	w.writes++
	w.buf = append(w.buf, p...)
	return len(p), nil
}

func (w *recordingWriter) Close() error { return nil }

func (w *recordingWriter) frame() []byte { return w.buf }

type serializableFunc func(smithy.ShapeSerializer)

func (f serializableFunc) Serialize(s smithy.ShapeSerializer) { f(s) }

// fixedSigner signs every message with the same bytes.
type fixedSigner struct{}

func (fixedSigner) SignMessage(headers, payload []byte, date time.Time) ([]byte, error) {
	return []byte("signature"), nil
}

// TestCodecThatReencodedIsNotPooled: a stream's codec goes back to the pool
// at the stream's end, unless it re-encoded an event the SDK's model does
// not know (its encoder then keeps a buffer as large as that event, which
// a later stream would hold for its whole life): that codec is left to the
// garbage collector. With one processor and no -race (which drops pooled
// values at random), sync.Pool hands the last codec put back to the next
// Get, so both halves are exact.
func TestCodecThatReencodedIsNotPooled(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops values at random under -race")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	schema, registry := responseStreamSchema(t)
	unknown := func() []byte {
		var m eventstream.Message
		m.Headers.Set(eventstream.EventTypeHeader, eventstream.StringValue("futureEvent"))
		m.Headers.Set(eventstream.ContentTypeHeader, eventstream.StringValue("application/json"))
		m.Headers.Set(eventstream.MessageTypeHeader, eventstream.StringValue(eventstream.EventMessageType))
		m.Payload = []byte(`{"data":"` + strings.Repeat("x", 64<<10) + `"}`)
		var buf bytes.Buffer
		_ = eventstream.NewEncoder().Encode(&buf, m)
		return buf.Bytes()
	}()
	for _, tt := range []struct {
		name   string
		stream []byte
		pooled bool
	}{
		{"chunks only", chunkFrames(2), true},
		{"an unknown event", slices.Concat(chunkFrames(1), unknown), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := isolateEventStreams(restjson1.New(nil), newCodecPool()).(*isolatedProtocol)
			b := benchBody(tt.stream)
			var used *restjson1.Protocol
			for {
				_, err := p.DeserializeEventMessage(schema, registry, b)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				used = b.codec
			}
			if b.codec != nil {
				t.Fatal("the body still holds its codec after the stream's end")
			}
			if again := p.codecs.decode.Get().(*restjson1.Protocol) == used; again != tt.pooled {
				t.Fatalf("the stream's codec pooled again: %v; want %v", again, tt.pooled)
			}
		})
	}
}

// TestEncodingCodecsArePooledApart: a codec borrowed to encode an input
// event keeps, in its encoder, a buffer as large as that event; it goes
// back to a pool of its own, never to the one response streams take their
// codecs from (and hold for their whole life). With one processor and no
// -race, sync.Pool would hand the encoding codec to the next Get of the
// same pool; the garbage collector empties the pools, but not the codec a
// stream holds.
func TestEncodingCodecsArePooledApart(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops values at random under -race")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const size = 4 << 20
	blob := smithy.NewSchema(smithy.ShapeID{Namespace: "smithy.api", Name: "Blob"}, smithy.ShapeTypeBlob, 0)
	part := smithy.NewSchema(smithy.ShapeID{Namespace: "test", Name: "Part"}, smithy.ShapeTypeStructure, 1)
	bytesMember := part.AddMember("bytes", blob)
	union := smithy.NewSchema(smithy.ShapeID{Namespace: "test", Name: "Input"}, smithy.ShapeTypeUnion, 1)
	variant := union.AddMember("chunk", part)
	p := isolateEventStreams(restjson1.New(nil), newCodecPool()).(*isolatedProtocol)
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	ev := serializableFunc(func(s smithy.ShapeSerializer) {
		s.WriteStruct(part)
		s.WriteBlob(bytesMember, make([]byte, size))
		s.CloseStruct()
	})
	if err := p.SerializeEventMessage(union, variant, ev, io.Discard); err != nil {
		t.Fatal(err)
	}
	stream := p.codecs.decode.Get() // what a response stream takes next, and holds
	held := int64(heap()) - int64(before)
	runtime.KeepAlive(stream)
	if held > 1<<20 {
		t.Fatalf("a response stream's codec, after a %d KiB input event was encoded: %d KiB held; want under 1 MiB", size>>10, held>>10)
	}
}
