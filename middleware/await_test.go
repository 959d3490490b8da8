package middleware

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	smithymiddleware "github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/streamstatus/streamstatus/smithyext"
)

// attempt runs one attempt the way the SDK's stack does around the two
// middlewares: the finalize middleware, then the deserialize middleware
// over a 200 response with body src, then, as the SDK's
// OperationEventStreamDeserializer does, reader(resp.Body) on a goroutine
// of its own. It returns the finalize middleware's error and the body
// reader got.
func attempt(t *testing.T, src io.ReadCloser, reader func(io.ReadCloser)) (error, io.ReadCloser) {
	t.Helper()
	r := resolve(nil)
	var handed io.ReadCloser
	deserialize := smithymiddleware.DeserializeHandlerFunc(func(ctx context.Context, in smithymiddleware.DeserializeInput) (smithymiddleware.DeserializeOutput, smithymiddleware.Metadata, error) {
		transport := smithymiddleware.DeserializeHandlerFunc(func(context.Context, smithymiddleware.DeserializeInput) (smithymiddleware.DeserializeOutput, smithymiddleware.Metadata, error) {
			resp := &smithyhttp.Response{Response: &http.Response{StatusCode: 200, Header: http.Header{}, Body: src}}
			return smithymiddleware.DeserializeOutput{RawResponse: resp}, smithymiddleware.Metadata{}, nil
		})
		out, md, err := r.deserialize.HandleDeserialize(ctx, in, transport)
		if err == nil {
			handed = out.RawResponse.(*smithyhttp.Response).Body
			go reader(handed)
		}
		return out, md, err
	})
	finalize := smithymiddleware.FinalizeHandlerFunc(func(ctx context.Context, in smithymiddleware.FinalizeInput) (smithymiddleware.FinalizeOutput, smithymiddleware.Metadata, error) {
		out, md, err := deserialize.HandleDeserialize(ctx, smithymiddleware.DeserializeInput{Request: in.Request})
		return smithymiddleware.FinalizeOutput{Result: out.Result}, md, err
	})
	done := make(chan error, 1)
	go func() {
		_, _, err := r.finalize.HandleFinalize(context.Background(), smithymiddleware.FinalizeInput{Request: smithyhttp.NewStackRequest()}, finalize)
		done <- err
	}()
	select {
	case err := <-done:
		return err, handed
	case <-time.After(10 * time.Second):
		t.Fatal("the attempt did not return in 10 s: the finalize middleware still waits for the read-ahead")
		return nil, nil
	}
}

// The finalize middleware returns an attempt only once the read-ahead,
// which runs on the reader's goroutine at its first read, has decided: a
// failure before content is the attempt's error, and a healthy stream
// reaches the reader whole.
func TestFinalizeWaitsForTheReadAhead(t *testing.T) {
	t.Run("exception before content", func(t *testing.T) {
		src := &closeRecorder{Reader: bytes.NewReader(frame(t, "exception", ":exception-type", "throttlingException", `{"message":"slow down"}`))}
		stopped := make(chan error, 1)
		err, _ := attempt(t, src, func(body io.ReadCloser) {
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
		err, _ := attempt(t, io.NopCloser(bytes.NewReader(stream)), func(body io.ReadCloser) {
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
	never, w := io.Pipe() // a connection that sends nothing
	defer w.Close()
	err, body := attempt(t, never, func(body io.ReadCloser) { _ = body.Close() })
	if err == nil {
		t.Fatal("the attempt succeeded on a body closed before its first read")
	}
	if n, rerr := body.Read(make([]byte, 8)); n != 0 || rerr == nil {
		t.Fatalf("Read after Close: %d bytes, %v: want none and an error", n, rerr)
	}
}

// An attempt that fails after the deserialize middleware handed its body
// on (the SDK's deserializer rejecting the output, say) closes the body:
// nobody will read it.
func TestAttemptFailingAfterDeserializeClosesTheBody(t *testing.T) {
	src := &closeRecorder{Reader: bytes.NewReader(event(t, "contentBlockDelta"))}
	r := resolve(nil)
	rejected := errors.New("unexpected output result type")
	next := smithymiddleware.FinalizeHandlerFunc(func(ctx context.Context, in smithymiddleware.FinalizeInput) (smithymiddleware.FinalizeOutput, smithymiddleware.Metadata, error) {
		transport := smithymiddleware.DeserializeHandlerFunc(func(context.Context, smithymiddleware.DeserializeInput) (smithymiddleware.DeserializeOutput, smithymiddleware.Metadata, error) {
			resp := &smithyhttp.Response{Response: &http.Response{StatusCode: 200, Header: http.Header{}, Body: src}}
			return smithymiddleware.DeserializeOutput{RawResponse: resp}, smithymiddleware.Metadata{}, nil
		})
		_, md, _ := r.deserialize.HandleDeserialize(ctx, smithymiddleware.DeserializeInput{Request: in.Request}, transport)
		return smithymiddleware.FinalizeOutput{}, md, rejected
	})
	_, _, err := r.finalize.HandleFinalize(context.Background(), smithymiddleware.FinalizeInput{Request: smithyhttp.NewStackRequest()}, next)
	if !errors.Is(err, rejected) {
		t.Fatalf("attempt error %v: want the deserializer's", err)
	}
	if src.closed == 0 {
		t.Fatal("the body of an attempt that failed after the deserialize middleware was never closed")
	}
}
