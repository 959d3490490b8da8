package integration_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/aws/smithy-go/eventstream"

	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/internal/framing"
	"github.com/streamstatus/streamstatus/smithyext"
)

// chunkFrame is one InvokeModelWithResponseStream chunk frame.
func chunkFrame(text string) []byte {
	var m eventstream.Message
	m.Headers.Set(eventstream.EventTypeHeader, eventstream.StringValue("chunk"))
	m.Headers.Set(eventstream.ContentTypeHeader, eventstream.StringValue("application/json"))
	m.Headers.Set(eventstream.MessageTypeHeader, eventstream.StringValue("event"))
	m.Payload = []byte(`{"bytes":"` + base64.StdEncoding.EncodeToString([]byte(text)) + `"}`)
	return fake.Frame(m)
}

// corrupt returns a chunk frame with one byte flipped at the given offset
// (negative counts from the end).
func corrupt(off int) []byte {
	f := chunkFrame("corrupt")
	if off < 0 {
		off += len(f)
	}
	f[off] ^= 0x5a
	return f
}

type faultCase struct {
	name string
	// fault is sent after the content events (if any).
	fault []fake.Step
	// retryable: before content the SDK retries it; after content the
	// typed error says so.
	retryable bool
	kind      smithyext.Kind
	is        []error // errors.Is targets that must hold
	isAny     []error // at least one must hold (platform-dependent transport errors)
}

var faultCases = []faultCase{
	{name: "connection reset", fault: []fake.Step{fake.Reset()}, retryable: true, kind: smithyext.KindTransport,
		isAny: []error{syscall.ECONNRESET, net.ErrClosed, io.ErrUnexpectedEOF}},
	{name: "connection closed mid-stream", fault: []fake.Step{fake.Cut()}, retryable: true, kind: smithyext.KindTransport,
		is: []error{io.ErrUnexpectedEOF}},
	{name: "truncated frame", fault: []fake.Step{fake.Raw(chunkFrame("half a frame")[:20]), fake.Cut()}, retryable: true, kind: smithyext.KindTransport,
		is: []error{framing.ErrTruncated, io.ErrUnexpectedEOF}},
	{name: "bad message CRC", fault: []fake.Step{fake.Raw(corrupt(-1))}, retryable: false, kind: smithyext.KindCorrupt,
		is: []error{framing.ErrMessageCRC}},
	{name: "bad prelude CRC", fault: []fake.Step{fake.Raw(corrupt(9))}, retryable: false, kind: smithyext.KindCorrupt,
		is: []error{framing.ErrPreludeCRC}},
	{name: "oversized prelude", fault: []fake.Step{fake.Raw(oversizedPrelude())}, retryable: false, kind: smithyext.KindCorrupt,
		is: []error{framing.ErrPreludeLength}},
}

// oversizedPrelude claims a 64 MiB frame with a valid prelude CRC.
func oversizedPrelude() []byte {
	f := chunkFrame("x")
	binary.BigEndian.PutUint32(f[0:4], 64<<20)
	crc := crc32IEEE(f[:8])
	binary.BigEndian.PutUint32(f[8:12], crc)
	return f
}

func checkFault(t *testing.T, err error, fc faultCase, events int) {
	t.Helper()
	var se *smithyext.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("want a *smithyext.StatusError, got %T: %v", err, err)
	}
	if se.Retryable != fc.retryable || se.Kind != fc.kind || se.Events != events {
		t.Fatalf("retryable=%v kind=%v events=%d, want %v %v %d: %v", se.Retryable, se.Kind, se.Events, fc.retryable, fc.kind, events, err)
	}
	if got, ok := statusOf(err); !ok || got == 200 {
		t.Fatalf("status %d (found %v): a broken stream must never look like a 200", got, ok)
	}
	for _, target := range fc.is {
		if !errors.Is(err, target) {
			t.Errorf("errors.Is(err, %v) = false: the original error must stay reachable; err: %v", target, err)
		}
	}
	if len(fc.isAny) > 0 {
		found := false
		for _, target := range fc.isAny {
			found = found || errors.Is(err, target)
		}
		if !found {
			t.Errorf("none of %v reachable from %v", fc.isAny, err)
		}
	}
	checkNoSecrets(t, err)
}

// TestTransportFaultsBeforeContent: a retryable fault before the first event
// is retried transparently (the consumer sees one clean stream); a corrupt
// frame fails the call at once.
func TestTransportFaultsBeforeContent(t *testing.T) {
	for _, fc := range faultCases {
		t.Run(fc.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t)
			c := newClient(srv, clientOption, 3)
			clean, want := invokeStream.healthy(3, "clean")
			srv.Enqueue(fake.Response{Steps: fc.fault}, fake.Response{Steps: clean})
			res := invokeStream.run(context.Background(), c)
			if fc.retryable {
				if res.callErr != nil || res.streamErr != nil || !equalStrings(res.events, want) || srv.CallCount() != 2 {
					t.Fatalf("want one transparent retry: call %v stream %v events %q calls %d", res.callErr, res.streamErr, res.events, srv.CallCount())
				}
				return
			}
			if srv.CallCount() != 1 {
				t.Fatalf("%d calls, want 1: a corrupt frame is not retried", srv.CallCount())
			}
			checkFault(t, res.callErr, fc, 0)
		})
	}
}

// TestTransportFaultsAfterContent: after N events the stream's Err() is a
// typed error that says whether it is retryable, counts the N events and
// keeps the original error reachable.
func TestTransportFaultsAfterContent(t *testing.T) {
	for _, fc := range faultCases {
		t.Run(fc.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t)
			c := newClient(srv, clientOption, 3)
			content, want := invokeStream.content(4, "part")
			srv.Enqueue(fake.Response{Steps: steps(content, fc.fault)})
			res := invokeStream.run(context.Background(), c)
			if res.callErr != nil || srv.CallCount() != 1 || !equalStrings(res.events, want) {
				t.Fatalf("call %v, calls %d, events %q; want one call delivering %q", res.callErr, srv.CallCount(), res.events, want)
			}
			checkFault(t, res.streamErr, fc, len(want))
		})
	}
}

// TestStallEndedByDeadline: a stream that stalls after content is ended by
// the call's context deadline with a non-retryable typed error that keeps
// context.DeadlineExceeded reachable.
func TestStallEndedByDeadline(t *testing.T) {
	srv := newServer(t)
	c := newClient(srv, clientOption, 3)
	content, want := invokeStream.content(2, "part")
	srv.Enqueue(fake.Response{Steps: steps(content, []fake.Step{fake.Hang()})})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := invokeStream.run(ctx, c)
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("stall not ended by the deadline: %v", elapsed)
	}
	if res.callErr != nil || !equalStrings(res.events, want) {
		t.Fatalf("call %v events %q", res.callErr, res.events)
	}
	if !errors.Is(res.streamErr, context.DeadlineExceeded) {
		t.Fatalf("want context.DeadlineExceeded reachable, got %v", res.streamErr)
	}
	var se *smithyext.StatusError
	if !errors.As(res.streamErr, &se) || se.Retryable || se.Code != classify.CodeRequestCanceled || se.Events != 2 {
		t.Fatalf("want a non-retryable RequestCanceled after 2 events, got %v", res.streamErr)
	}
	if r := classify.Classify(res.streamErr); r.Source != classify.SourceCanceled || r.Retryable {
		t.Fatalf("Classify: %+v", r)
	}
}

// TestRetryRewindsTheRequestBody: a first-frame exception on a request with a
// body is retried, and the server receives identical bodies on each attempt,
// each with a SigV4 signature whose signed payload hash is that body's hash.
func TestRetryRewindsTheRequestBody(t *testing.T) {
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			srv := newServer(t, fake.WithSigV4Check(testAccessKey, testSecretKey))
			c := newClient(srv, clientOption, 3)
			clean, want := op.healthy(2, "ok")
			first := fake.Response{Steps: steps(op.preamble, []fake.Step{fake.Exception("throttlingException", "slow")})}
			srv.Enqueue(first, first, fake.Response{Steps: clean})
			res := op.run(context.Background(), c)
			if res.callErr != nil || res.streamErr != nil || !equalStrings(res.events, want) {
				t.Fatalf("call %v stream %v events %q", res.callErr, res.streamErr, res.events)
			}
			calls := srv.Calls()
			if len(calls) != 3 {
				t.Fatalf("%d calls, want 3", len(calls))
			}
			for i, call := range calls {
				if len(call.Body) == 0 || !bytes.Equal(call.Body, calls[0].Body) || call.BodySHA256 != calls[0].BodySHA256 {
					t.Errorf("attempt %d body %q differs from attempt 1 %q", i+1, call.Body, calls[0].Body)
				}
				if !call.SignatureVerified {
					t.Errorf("attempt %d: signature not verified against the received body", i+1)
				}
				if got := call.Header.Get("Content-Length"); got == "" {
					t.Errorf("attempt %d: no Content-Length: the wire format changed", i+1)
				}
			}
		})
	}
}
