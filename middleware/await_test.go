package middleware

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"

	smithymiddleware "github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/streamstatus/streamstatus/smithyext"
)

// answering is a transport that answers every request 200 with body src.
func answering(src io.ReadCloser) smithymiddleware.DeserializeHandler {
	return smithymiddleware.DeserializeHandlerFunc(func(context.Context, smithymiddleware.DeserializeInput) (smithymiddleware.DeserializeOutput, smithymiddleware.Metadata, error) {
		resp := &smithyhttp.Response{Response: &http.Response{StatusCode: 200, Header: http.Header{}, Body: src}}
		return smithymiddleware.DeserializeOutput{RawResponse: resp}, smithymiddleware.Metadata{}, nil
	})
}

// attempt runs one attempt the way the SDK's stack does around the stream
// middlewares: awaitReadAhead, then the SDK's
// OperationEventStreamDeserializer (here: a handler that runs the
// deserialize middleware over a 200 response with body src, then hands
// swap(resp.Body) to reader on a goroutine of its own, as the SDK starts
// its event reader). swap stands for middlewares between the two that
// replace the body; nil leaves it. busy has the installation count every
// attempt as one among more than there are processors, so the caller runs
// the read-ahead (callerReads). It returns the attempt's error and the
// stream body.
func attempt(t *testing.T, busy bool, src io.ReadCloser, swap func(io.ReadCloser) io.ReadCloser, reader func(io.ReadCloser)) (error, io.ReadCloser) {
	t.Helper()
	r := resolve(nil)
	if busy { // as if GOMAXPROCS other attempts waited for their responses
		r.waiting.Add(int64(runtime.GOMAXPROCS(0)))
	}
	var handed io.ReadCloser
	sdkDeserializer := smithymiddleware.DeserializeHandlerFunc(func(ctx context.Context, in smithymiddleware.DeserializeInput) (smithymiddleware.DeserializeOutput, smithymiddleware.Metadata, error) {
		out, md, err := r.deserialize.HandleDeserialize(ctx, in, answering(src))
		if err == nil {
			resp := out.RawResponse.(*smithyhttp.Response)
			handed = resp.Body
			if swap != nil {
				resp.Body = swap(resp.Body)
			}
			go reader(resp.Body)
		}
		return out, md, err
	})
	done := make(chan error, 1)
	go func() {
		_, _, err := awaitReadAhead.HandleDeserialize(context.Background(), smithymiddleware.DeserializeInput{Request: smithyhttp.NewStackRequest()}, sdkDeserializer)
		done <- err
	}()
	select {
	case err := <-done:
		return err, handed
	case <-time.After(10 * time.Second):
		t.Fatal("the attempt did not return in 10 s: it still waits for the read-ahead")
		return nil, nil
	}
}

// An attempt returns only once the read-ahead, which runs on the reader's
// goroutine at its first read (or, when the installation is busy, on the
// caller's), has decided: a failure before content is the attempt's error,
// and a healthy stream reaches the reader whole.
func TestAttemptWaitsForTheReadAhead(t *testing.T) {
	for _, busy := range []bool{false, true} {
		t.Run(fmt.Sprintf("busy=%v", busy), func(t *testing.T) { testAttemptWaitsForTheReadAhead(t, busy) })
	}
}

func testAttemptWaitsForTheReadAhead(t *testing.T, busy bool) {
	t.Run("exception before content", func(t *testing.T) {
		src := &closeRecorder{Reader: bytes.NewReader(frame(t, "exception", ":exception-type", "throttlingException", `{"message":"slow down"}`))}
		stopped := make(chan error, 1)
		err, _ := attempt(t, busy, src, nil, func(body io.ReadCloser) {
			_, err := io.ReadAll(body)
			stopped <- err
		})
		var se *smithyext.StatusError
		if !errors.As(err, &se) || !se.Throttle {
			t.Fatalf("attempt error %v: want the throttle's StatusError", err)
		}
		if readerErr := <-stopped; !errors.As(readerErr, new(*smithyext.StatusError)) {
			t.Fatalf("the reader ended with %v: want the attempt's StatusError", readerErr)
		}
		if src.closed == 0 {
			t.Fatal("the failed attempt's response body was never closed")
		}
	})
	t.Run("healthy stream", func(t *testing.T) {
		stream := bytes.Join([][]byte{event(t, "messageStart"), event(t, "contentBlockDelta"), event(t, "messageStop")}, nil)
		got := make(chan []byte, 1)
		err, _ := attempt(t, busy, io.NopCloser(bytes.NewReader(stream)), nil, func(body io.ReadCloser) {
			b, _ := io.ReadAll(body)
			got <- b
		})
		if err != nil {
			t.Fatalf("attempt error %v on a healthy stream", err)
		}
		if b := <-got; !bytes.Equal(b, stream) {
			t.Fatalf("the reader got %d bytes, want the stream's %d byte for byte", len(b), len(stream))
		}
	})
}

// A body closed before anyone read it (a middleware that drops the
// response, say) must not leave the attempt waiting for a read-ahead that
// never runs.
func TestCloseBeforeFirstReadEndsTheWait(t *testing.T) {
	for _, busy := range []bool{false, true} {
		t.Run(fmt.Sprintf("busy=%v", busy), func(t *testing.T) {
			never, w := io.Pipe() // a connection that sends nothing
			defer w.Close()
			err, body := attempt(t, busy, never, nil, func(body io.ReadCloser) { _ = body.Close() })
			if err == nil {
				t.Fatal("the attempt succeeded on a body closed before its first read")
			}
			if n, rerr := body.Read(make([]byte, 8)); n != 0 || rerr == nil {
				t.Fatalf("Read after Close: %d bytes, %v: want none and an error", n, rerr)
			}
		})
	}
}

// On a busy installation the caller runs the read-ahead itself: its
// attempt returns the failure before content even though the SDK's reader
// has not read the body yet (here: not until the attempt returned), and
// the reader then ends at that failure.
func TestBusyCallerReadsAhead(t *testing.T) {
	src := &closeRecorder{Reader: bytes.NewReader(frame(t, "exception", ":exception-type", "throttlingException", `{"message":"slow down"}`))}
	returned, stopped := make(chan struct{}), make(chan error, 1)
	err, _ := attempt(t, true, src, nil, func(body io.ReadCloser) {
		<-returned
		_, err := io.ReadAll(body)
		stopped <- err
	})
	close(returned)
	if !errors.As(err, new(*smithyext.StatusError)) {
		t.Fatalf("attempt error %v: want the throttle's StatusError", err)
	}
	if readerErr := <-stopped; !errors.As(readerErr, new(*smithyext.StatusError)) {
		t.Fatalf("the reader ended with %v: want the attempt's StatusError", readerErr)
	}
}

// An installation is busy for a response when, as it arrives, at least as
// many of the installation's other attempts wait for theirs as there are
// processors (GOMAXPROCS), and never with none waiting.
func TestBusyCountsAttemptsWaitingForTheirResponse(t *testing.T) {
	if runtime.GOMAXPROCS(0) > 64 {
		t.Skip("holds GOMAXPROCS+1 attempts in flight")
	}
	r := resolve(nil)
	type arrival struct {
		release chan struct{}
		body    chan *streamBody
	}
	start := func() arrival {
		a := arrival{release: make(chan struct{}), body: make(chan *streamBody, 1)}
		entered := make(chan struct{})
		transport := smithymiddleware.DeserializeHandlerFunc(func(ctx context.Context, in smithymiddleware.DeserializeInput) (smithymiddleware.DeserializeOutput, smithymiddleware.Metadata, error) {
			close(entered)
			<-a.release
			return answering(io.NopCloser(bytes.NewReader(nil))).HandleDeserialize(ctx, in)
		})
		go func() {
			out, _, _ := r.deserialize.HandleDeserialize(context.Background(), smithymiddleware.DeserializeInput{Request: smithyhttp.NewStackRequest()}, transport)
			a.body <- out.RawResponse.(*smithyhttp.Response).Body.(*streamBody)
		}()
		<-entered
		return a
	}
	procs := runtime.GOMAXPROCS(0)
	arrivals := make([]arrival, procs+1)
	for i := range arrivals {
		arrivals[i] = start()
	}
	for i, a := range arrivals { // released in turn: others still waiting = procs, procs-1, ..., 0
		others := procs - i
		close(a.release)
		if b := <-a.body; b.callerReads != (others == procs) {
			t.Fatalf("callerReads %v with %d other attempts waiting and GOMAXPROCS %d, want %v", b.callerReads, others, procs, others == procs)
		}
	}
	if n := r.waiting.Load(); n != 0 {
		t.Fatalf("%d attempts still counted as waiting after all returned", n)
	}
}

// A middleware between the SDK's deserializer and ours that takes the
// body's place: one that reads through it still has the failure before
// content fail the attempt, and one that never reads it (a substitute
// body) does not leave the attempt waiting for a read that never comes.
func TestBodyInAnotherMiddlewaresPlace(t *testing.T) {
	throttle := frame(t, "exception", ":exception-type", "throttlingException", `{"message":"slow down"}`)
	t.Run("read through", func(t *testing.T) {
		wrap := func(b io.ReadCloser) io.ReadCloser { return struct{ io.ReadCloser }{b} }
		err, _ := attempt(t, false, io.NopCloser(bytes.NewReader(throttle)), wrap, func(body io.ReadCloser) { _, _ = io.ReadAll(body) })
		if !errors.As(err, new(*smithyext.StatusError)) {
			t.Fatalf("attempt error %v: want the throttle's StatusError", err)
		}
	})
	t.Run("substituted", func(t *testing.T) {
		canned := bytes.Join([][]byte{event(t, "contentBlockDelta"), event(t, "messageStop")}, nil)
		substitute := func(io.ReadCloser) io.ReadCloser { return io.NopCloser(bytes.NewReader(canned)) }
		got := make(chan []byte, 1)
		err, _ := attempt(t, false, io.NopCloser(bytes.NewReader(throttle)), substitute, func(body io.ReadCloser) {
			b, _ := io.ReadAll(body)
			got <- b
		})
		if !errors.As(err, new(*smithyext.StatusError)) {
			t.Fatalf("attempt error %v: want the throttle's StatusError (the response's own first frame)", err)
		}
		if b := <-got; !bytes.Equal(b, canned) {
			t.Fatalf("the substitute's reader got %d bytes, want its %d", len(b), len(canned))
		}
	})
}

// An attempt that fails after the deserialize middleware handed its body
// on (the SDK's deserializer rejecting the output, say) closes the body:
// nobody will read it.
func TestAttemptFailingAfterDeserializeClosesTheBody(t *testing.T) {
	src := &closeRecorder{Reader: bytes.NewReader(event(t, "contentBlockDelta"))}
	r := resolve(nil)
	rejected := errors.New("unexpected output result type")
	sdkDeserializer := smithymiddleware.DeserializeHandlerFunc(func(ctx context.Context, in smithymiddleware.DeserializeInput) (smithymiddleware.DeserializeOutput, smithymiddleware.Metadata, error) {
		out, md, _ := r.deserialize.HandleDeserialize(ctx, in, answering(src))
		return out, md, rejected
	})
	_, _, err := awaitReadAhead.HandleDeserialize(context.Background(), smithymiddleware.DeserializeInput{Request: smithyhttp.NewStackRequest()}, sdkDeserializer)
	if !errors.Is(err, rejected) {
		t.Fatalf("attempt error %v: want the deserializer's", err)
	}
	if src.closed == 0 {
		t.Fatal("the body of an attempt that failed after the deserialize middleware was never closed")
	}
}

type fakeStream struct{ closed int }

func (s *fakeStream) Close() error { s.closed++; return nil }

type fakeOutput struct{ stream *fakeStream }

func (o *fakeOutput) GetStream() *fakeStream { return o.stream }

// closeOutput closes the stream of a generated-style output, and leaves
// alone (without a panic) whatever else an attempt may hand it: no output,
// a nil one, one without a stream, one whose stream is nil.
func TestCloseOutput(t *testing.T) {
	s := &fakeStream{}
	closeOutput(&fakeOutput{stream: s})
	if s.closed != 1 {
		t.Fatalf("the output's stream was closed %d times, want 1", s.closed)
	}
	for _, result := range []any{nil, (*fakeOutput)(nil), &fakeOutput{}, struct{}{}, "no stream"} {
		closeOutput(result) // must not panic
	}
}
