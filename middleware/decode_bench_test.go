package middleware

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"testing"

	"github.com/aws/smithy-go/eventstream"
	"github.com/aws/smithy-go/transport/http/protocol/restjson1"

	"github.com/streamstatus/streamstatus/internal/streamerr"
)

// BenchmarkSDKDecode: the SDK's whole work per event (its event-stream
// decoder, then the JSON and base64 of InvokeModelWithResponseStream's
// chunks, through restJson1's DeserializeEventMessage) reading a stream
// straight from memory (side=bare) and through the plugin's stream body
// (read-ahead, scanner, envelope check, pass-through), side by side:
// side=withbedrock decodes through WithBedrock's protocol (which leaves the
// CRC of passed-through frames to the SDK), side=apioption through the
// client's own codec (the body checks those CRCs as they pass). No network,
// no server: the ratio is the plugin's CPU cost against the SDK's own, the
// strictest form of the throughput targets (on a real connection the same
// cost is diluted by the transport's).
//
//	go test -run '^$' -bench SDKDecode -count 10 ./middleware/ > sdk.txt; benchstat -col /side sdk.txt
func BenchmarkSDKDecode(b *testing.B) {
	schema, registry := responseStreamSchema(b)
	codec := restjson1.New(nil)
	info := streamerr.Stream{Service: "Bedrock Runtime", Operation: "InvokeModelWithResponseStream"}
	for _, events := range []int{1, 100} {
		for _, size := range []int{100, 4 << 10, 64 << 10} {
			stream := bytes.Repeat(chunkFrameOfSize(b, size), events)
			for _, side := range []string{"bare", "withbedrock", "apioption"} {
				var protocol eventDecoder = codec
				if side == "withbedrock" {
					protocol = isolateEventStreams(restjson1.New(nil), newCodecPool()).(*isolatedProtocol)
				}
				b.Run(fmt.Sprintf("events=%d/payload=%d/side=%s", events, size, side), func(b *testing.B) {
					b.ReportAllocs()
					b.SetBytes(int64(events * size))
					src := &closeRecorder{}
					for b.Loop() {
						src.Reader = bytes.NewReader(stream)
						var body io.Reader = src
						if side != "bare" {
							sb := newStreamBody(context.Background(), src, info, benchOpts)
							if err := sb.readAhead(); err != nil {
								b.Fatal(err)
							}
							body = sb
						}
						decodeAll(b, protocol, schema, registry, body, events)
					}
				})
			}
		}
	}
}

// chunkFrameOfSize is a chunk frame carrying size bytes of content, as
// integration's benchmarks send them.
func chunkFrameOfSize(tb testing.TB, size int) []byte {
	var m eventstream.Message
	m.Headers.Set(eventstream.EventTypeHeader, eventstream.StringValue("chunk"))
	m.Headers.Set(eventstream.ContentTypeHeader, eventstream.StringValue("application/json"))
	m.Headers.Set(eventstream.MessageTypeHeader, eventstream.StringValue(eventstream.EventMessageType))
	m.Payload, _ = json.Marshal(map[string]string{"bytes": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("x"), size))})
	var buf bytes.Buffer
	if err := eventstream.NewEncoder().Encode(&buf, m); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}
