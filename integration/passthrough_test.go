package integration_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/smithy-go/eventstream"

	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/internal/framing"
	"github.com/streamstatus/streamstatus/smithyext"
)

// Large events after content pass through the plugin in parts (issue 20:
// no second copy; under WithBedrock their CRC is left to the SDK's decoder,
// on the other install paths the body checks it as the bytes pass). These
// tests run real clients on every install path against frames far above
// the pass-through threshold (2 KiB): the consumer gets every event
// byte for byte, and every fault a large frame can carry ends the stream
// with the typed error the small-frame matrix expects.

// bigText is the text of large event i: ~64 KiB, unique per event.
func bigText(tag string, i int) string {
	return fmt.Sprintf("%s-%d:", tag, i) + strings.Repeat(string(rune('a'+i%26)), 64<<10)
}

// bigChunks returns n large chunk events and what the consumer renders.
func bigChunks(n int, tag string) ([]fake.Step, []string) {
	var s []fake.Step
	var want []string
	for i := range n {
		s = append(s, fake.Raw(chunkFrame(bigText(tag, i))))
		want = append(want, "chunk:"+bigText(tag, i))
	}
	return s, want
}

func TestLargeEventsDeliveredWhole(t *testing.T) {
	for _, how := range installs {
		t.Run(how.String(), func(t *testing.T) {
			t.Parallel()
			srv := newServer(t)
			c := newClient(srv, how, 3)
			content, want := bigChunks(12, "big")
			srv.Enqueue(fake.Response{Steps: content})
			res := invokeStream.run(context.Background(), c)
			if res.callErr != nil || res.streamErr != nil || !equalStrings(res.events, want) {
				t.Fatalf("call %v stream %v: %d events, want the %d sent byte for byte", res.callErr, res.streamErr, len(res.events), len(want))
			}
		})
	}
}

func TestLargeEventFaultsAfterContent(t *testing.T) {
	big := chunkFrame(bigText("fault", 0))
	flip := func(off int) []byte {
		f := append([]byte(nil), big...)
		if off < 0 {
			off += len(f)
		}
		f[off] ^= 0x5a
		return f
	}
	var exception eventstream.Message
	exception.Headers.Set(eventstream.MessageTypeHeader, eventstream.StringValue("exception"))
	exception.Headers.Set(eventstream.ExceptionTypeHeader, eventstream.StringValue("throttlingException"))
	exception.Payload = []byte(`{"message":"` + strings.Repeat("slow down ", 5000) + `"}`)
	cases := []faultCase{
		{name: "bad CRC in the payload", fault: []fake.Step{fake.Raw(flip(len(big) / 2))}, kind: smithyext.KindCorrupt,
			is: []error{framing.ErrMessageCRC}},
		{name: "bad CRC bytes", fault: []fake.Step{fake.Raw(flip(-2))}, kind: smithyext.KindCorrupt,
			is: []error{framing.ErrMessageCRC}},
		{name: "bad CRC in the head", fault: []fake.Step{fake.Raw(flip(40))}, kind: smithyext.KindCorrupt,
			is: []error{framing.ErrMessageCRC}},
		{name: "cut in the payload", fault: []fake.Step{fake.Raw(big[:len(big)/2]), fake.Cut()}, retryable: true, kind: smithyext.KindTransport,
			is: []error{framing.ErrTruncated}},
		{name: "cut in the CRC bytes", fault: []fake.Step{fake.Raw(big[:len(big)-2]), fake.Cut()}, retryable: true, kind: smithyext.KindTransport,
			is: []error{framing.ErrTruncated}},
		{name: "large exception", fault: []fake.Step{fake.Raw(fake.Frame(exception))}, retryable: true, kind: smithyext.KindException},
	}
	for _, how := range installs {
		for _, fc := range cases {
			t.Run(how.String()+"/"+fc.name, func(t *testing.T) {
				t.Parallel()
				srv := newServer(t)
				c := newClient(srv, how, 3)
				content, want := bigChunks(3, "part")
				srv.Enqueue(fake.Response{Steps: steps(content, fc.fault)})
				res := invokeStream.run(context.Background(), c)
				if res.callErr != nil || srv.CallCount() != 1 || !equalStrings(res.events, want) {
					t.Fatalf("call %v, calls %d, %d events; want one call delivering the %d sent", res.callErr, srv.CallCount(), len(res.events), len(want))
				}
				checkFault(t, res.streamErr, fc, len(want))
			})
		}
	}
}
