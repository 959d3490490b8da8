package middleware

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	smithymiddleware "github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/streamstatus/streamstatus/classify"
)

// pipeBody is a connection: Read blocks until data is written; Close ends
// a blocked Read (as net/http's body does) and is recorded.
type pipeBody struct {
	*io.PipeReader
	mu     sync.Mutex
	closed bool
}

func (p *pipeBody) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return p.PipeReader.Close()
}

func (p *pipeBody) isClosed() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.closed }

// Review 21c, defect 1 (fixed: streamBody.aheadHere closes the body and
// unlocks on the way out of a panic). On a busy installation the caller
// ran the read-ahead with b.mu held (TryLock) and no defer: code the user supplies
// that runs inside the read-ahead (a classify.Rule's Decode or Refine, a
// meter) panicking leaves b.mu locked for ever when the panic is
// recovered further out (net/http's server recovers every handler's
// panic). The SDK's reader goroutine, blocked on b.mu in its first Read,
// then never ends, and the response body (the connection) is never closed:
// invariant 2. Not busy, the same panic is on the SDK's reader goroutine.
// Correct: the caller's read-ahead leaves the body usable (mu unlocked,
// the body closed) on every way out, so the reader ends.
func TestReview21c_PanicInBusyReadAheadLeaksReaderAndConnection(t *testing.T) {
	c := classify.New(append(classify.DefaultTables(), classify.Table{Rules: []classify.Rule{{
		Type:    "throttlingException",
		Outcome: classify.Outcome{Code: "ThrottlingException", Status: 429, Retryable: true, Throttle: true},
		Refine:  func(error, *classify.Outcome) { panic("a user's Refine bug") },
	}}})...)
	r := resolve([]Option{WithClassifier(c)})
	r.waiting.Add(int64(runtime.GOMAXPROCS(0))) // busy

	pr, pw := io.Pipe()
	src := &pipeBody{PipeReader: pr}
	defer pw.Close()
	readerEnded := make(chan error, 1)
	readerStarted := make(chan struct{})
	transport := smithymiddleware.DeserializeHandlerFunc(func(context.Context, smithymiddleware.DeserializeInput) (smithymiddleware.DeserializeOutput, smithymiddleware.Metadata, error) {
		resp := &smithyhttp.Response{Response: &http.Response{StatusCode: 200, Header: http.Header{}, Body: src}}
		return smithymiddleware.DeserializeOutput{RawResponse: resp}, smithymiddleware.Metadata{}, nil
	})
	sdkDeserializer := smithymiddleware.DeserializeHandlerFunc(func(ctx context.Context, in smithymiddleware.DeserializeInput) (smithymiddleware.DeserializeOutput, smithymiddleware.Metadata, error) {
		out, md, err := r.deserialize.HandleDeserialize(ctx, in, transport)
		if err == nil {
			body := out.RawResponse.(*smithyhttp.Response).Body
			go func() { // the SDK's reader: starts reading a little after the caller got the body
				<-readerStarted
				_, err := io.ReadAll(body)
				readerEnded <- err
			}()
		}
		return out, md, err
	})
	go func() { // the exception arrives once the caller is inside the read-ahead
		time.Sleep(20 * time.Millisecond)
		close(readerStarted)
		time.Sleep(20 * time.Millisecond)
		_, _ = pw.Write(frame(t, "exception", ":exception-type", "throttlingException", `{"message":"slow down"}`))
	}()
	func() {
		defer func() { _ = recover() }() // as net/http's server does for a handler
		_, _, _ = awaitReadAhead.HandleDeserialize(context.Background(), smithymiddleware.DeserializeInput{Request: smithyhttp.NewStackRequest()}, sdkDeserializer)
	}()
	select {
	case <-readerEnded:
	case <-time.After(2 * time.Second):
		pw.CloseWithError(io.ErrUnexpectedEOF) // lets the test itself go on (the reader stays stuck on b.mu)
		t.Errorf("the SDK's reader goroutine is still blocked 2 s after the caller's read-ahead panicked and the panic was recovered "+
			"(b.mu left locked by awaitAhead); response body closed: %v. Want the reader to end and the body to be closed", src.isClosed())
	}
}

// Review 21c, stress: busy attempts with the SDK's reader starting at a
// random moment (before, during or after the caller's TryLock), streams of
// 0-3 events ending in EOF or an exception, the reader reading in small
// random pieces, and random Closes: every healthy stream's bytes exact,
// every failure the attempt's error. Run under -race; goleak (TestMain)
// checks that no goroutine outlives its stream.
func TestReview21c_BusyInterleavingsStress(t *testing.T) {
	for i := 0; i < 400; i++ {
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		nEvents := rng.IntN(4)
		var stream [][]byte
		for range nEvents {
			stream = append(stream, event(t, "contentBlockDelta"))
		}
		failFirst := nEvents == 0 && rng.IntN(2) == 0
		if failFirst {
			stream = append(stream, frame(t, "exception", ":exception-type", "throttlingException", `{"message":"slow"}`))
		}
		want := bytes.Join(stream, nil)
		delay := time.Duration(rng.IntN(300)) * time.Microsecond
		piece := 1 + rng.IntN(40)
		got := make(chan []byte, 1)
		err, _ := attempt(t, true, io.NopCloser(bytes.NewReader(want)), nil, func(body io.ReadCloser) {
			time.Sleep(delay)
			var out []byte
			buf := make([]byte, piece)
			for {
				n, err := body.Read(buf)
				out = append(out, buf[:n]...)
				if err != nil {
					break
				}
			}
			_ = body.Close()
			got <- out
		})
		b := <-got
		if failFirst {
			if err == nil {
				t.Fatalf("#%d: exception before content, attempt succeeded", i)
			}
			continue
		}
		if err != nil {
			t.Fatalf("#%d: healthy stream of %d events: attempt error %v", i, nEvents, err)
		}
		if !bytes.Equal(b, want) {
			t.Fatalf("#%d: reader got %d bytes, want %d", i, len(b), len(want))
		}
	}
}
