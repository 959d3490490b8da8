package middleware

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	smithymiddleware "github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// readFrame reads one whole event-stream frame from r, the way the SDK's
// decoder does (prelude first, then the rest).
func readFrame(r io.Reader) ([]byte, error) {
	prelude := make([]byte, 12)
	if _, err := io.ReadFull(r, prelude); err != nil {
		return nil, err
	}
	total := binary.BigEndian.Uint32(prelude)
	rest := make([]byte, int(total)-12)
	if _, err := io.ReadFull(r, rest); err != nil {
		return nil, err
	}
	return append(prelude, rest...), nil
}

// Review 21b, defect 1 (fixed: awaitAhead runs the read-ahead on the
// caller only if the body is free, TryLock, else waits for it). On a busy installation (callerReads) the caller
// takes the body's mutex in awaitAhead. The SDK's reader goroutine may have
// got to the body first (it is started before the SDK's deserializer
// returns): then it runs the read-ahead, decodes the first event, hands it
// on (the schema-serde generation's EventStreamReader hands each event to
// a pipe goroutine at once, over an unbuffered channel that goroutine
// drains before the consumer ever has the output), and goes on to read the
// *second* frame — holding b.mu while it waits on the connection. The
// caller's b.mu.Lock() then waits for the stream's second frame (or its
// end), not for the read-ahead: the operation call returns only when the
// next event arrives. Not busy, the caller waits on the WaitGroup, which
// is done as soon as the read-ahead ran, and the call returns at once.
//
// This test plays the SDK: the deserializer starts the reader goroutine,
// which reads the first frame, hands it to a pipe goroutine and reads on;
// the deserializer returns once the reader is inside its second read. The
// connection sends the first content frame at once and the second 3 s
// later.
func TestReview21b_BusyCallerWaitsForTheSecondFrame(t *testing.T) {
	for _, busy := range []bool{false, true} {
		t.Run(fmt.Sprintf("busy=%v", busy), func(t *testing.T) {
			elapsed := busyAttemptReturnTime(t, busy)
			if elapsed > time.Second {
				t.Fatalf("the attempt returned %v after its first content frame arrived, "+
					"only once the second frame came (3 s later): the caller waited on b.mu, "+
					"which the SDK's reader held while it waited for the next frame; want it to return "+
					"as soon as the read-ahead decided, as it does when the installation is not busy", elapsed.Round(time.Millisecond))
			}
		})
	}
}

func busyAttemptReturnTime(t *testing.T, busy bool) time.Duration {
	r := resolve(nil)
	if busy { // as if GOMAXPROCS other attempts waited for their responses
		r.waiting.Add(int64(runtime.GOMAXPROCS(0)))
	}
	first := event(t, "chunk")
	second := event(t, "chunk")
	pr, pw := io.Pipe()
	sendSecond := make(chan struct{})
	go func() {
		_, _ = pw.Write(first)
		select {
		case <-sendSecond:
		case <-time.After(3 * time.Second):
		}
		_, _ = pw.Write(second)
		_ = pw.Close()
	}()
	defer close(sendSecond)

	inSecondRead := make(chan struct{})
	readerDone := make(chan error, 1)
	transport := smithymiddleware.DeserializeHandlerFunc(func(context.Context, smithymiddleware.DeserializeInput) (smithymiddleware.DeserializeOutput, smithymiddleware.Metadata, error) {
		resp := &smithyhttp.Response{Response: &http.Response{StatusCode: 200, Header: http.Header{}, Body: pr}}
		return smithymiddleware.DeserializeOutput{RawResponse: resp}, smithymiddleware.Metadata{}, nil
	})
	sdkDeserializer := smithymiddleware.DeserializeHandlerFunc(func(ctx context.Context, in smithymiddleware.DeserializeInput) (smithymiddleware.DeserializeOutput, smithymiddleware.Metadata, error) {
		out, md, err := r.deserialize.HandleDeserialize(ctx, in, transport)
		if err != nil {
			return out, md, err
		}
		body := out.RawResponse.(*smithyhttp.Response).Body
		pipe := make(chan []byte) // the SDK's EventStreamReader.stream: unbuffered
		handed := make(chan []byte, 16)
		go func() { // the SDK's pipe goroutine: takes each event at once, then waits for the consumer
			for ev := range pipe {
				handed <- ev
			}
			close(handed)
		}()
		go func() { // the SDK's reader goroutine
			defer close(pipe)
			f, err := readFrame(body)
			if err != nil {
				readerDone <- err
				return
			}
			pipe <- f
			close(inSecondRead)
			_, err = readFrame(body) // the second frame: blocks on the connection
			readerDone <- err
		}()
		<-inSecondRead
		time.Sleep(20 * time.Millisecond) // the reader is now inside Read, holding b.mu
		return out, md, err
	})
	start := time.Now()
	_, _, err := awaitReadAhead.HandleDeserialize(context.Background(), smithymiddleware.DeserializeInput{Request: smithyhttp.NewStackRequest()}, sdkDeserializer)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("attempt error %v on a healthy stream", err)
	}
	return elapsed
}

// Review 21b, defect 2 (fixed: deserializeMiddleware.send uncounts in a
// defer). deserializeMiddleware counted the attempt as
// waiting (waiting.Add(1)) before next and uncounts it after next returns,
// not in a defer: an attempt whose inner handler panics (a custom
// aws.HTTPClient or RoundTripper, a user's deserialize middleware inside
// ours, a decoder bug) leaves the count raised for ever when the panic is
// recovered further out (net/http's server recovers every handler's panic,
// and so do most RPC frameworks and job runners). procs such panics make the
// installation permanently "busy": every later response, even the only one
// in flight, has its read-ahead run by the caller (callerReads), with the
// consequences of defect 1. Correct: the count goes back down on every way
// out of next, panics included.
func TestReview21b_PanicLeavesTheWaitingCountRaised(t *testing.T) {
	r := resolve(nil)
	panicking := smithymiddleware.DeserializeHandlerFunc(func(context.Context, smithymiddleware.DeserializeInput) (smithymiddleware.DeserializeOutput, smithymiddleware.Metadata, error) {
		panic("a custom transport's bug")
	})
	procs := runtime.GOMAXPROCS(0)
	for range procs {
		func() {
			defer func() { _ = recover() }() // as net/http's server does for a handler
			_, _, _ = r.deserialize.HandleDeserialize(context.Background(), smithymiddleware.DeserializeInput{Request: smithyhttp.NewStackRequest()}, panicking)
		}()
	}
	if n := r.waiting.Load(); n != 0 {
		t.Errorf("%d attempts still counted as waiting for their response after %d panicked attempts were recovered; want 0", n, procs)
	}
	out, _, err := r.deserialize.HandleDeserialize(context.Background(), smithymiddleware.DeserializeInput{Request: smithyhttp.NewStackRequest()},
		answering(io.NopCloser(bytes.NewReader(event(t, "chunk")))))
	if err != nil {
		t.Fatal(err)
	}
	b := out.RawResponse.(*smithyhttp.Response).Body.(*streamBody)
	defer b.Close()
	if b.callerReads {
		t.Errorf("the only attempt in flight took the busy path (callerReads): the installation stays busy for ever after %d recovered panics", procs)
	}
}

// Review 21b, defect 3 (fixed: send reads GOMAXPROCS as each response
// arrives). doc.go: "When at least as many of the
// installation's attempts wait for their responses as there are processors
// (GOMAXPROCS), the operation's caller runs it". procs is GOMAXPROCS read
// once, when the options resolve (WithBedrock(), APIOption(), ... at
// client construction, often at program start), and never again; since Go
// 1.25 the runtime itself changes GOMAXPROCS while the program runs (it
// follows the container's CPU limit), and programs set it after
// start-up (runtime.GOMAXPROCS, automaxprocs). An installation resolved at
// 2 processors then counts itself busy with 2 attempts waiting on a
// machine that now has 8 (or never busy with 8 waiting after going down
// to 2). Correct: compare with the processors there are when the response
// arrives (runtime.GOMAXPROCS(0) is cheap), as the docs say.
func TestReview21b_ProcsReadOnceAtResolve(t *testing.T) {
	old := runtime.GOMAXPROCS(2)
	defer runtime.GOMAXPROCS(old)
	r := resolve(nil) // the client is built
	runtime.GOMAXPROCS(8)
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 { // two other attempts wait for their responses
		entered := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, _ = r.deserialize.HandleDeserialize(context.Background(), smithymiddleware.DeserializeInput{Request: smithyhttp.NewStackRequest()},
				smithymiddleware.DeserializeHandlerFunc(func(context.Context, smithymiddleware.DeserializeInput) (smithymiddleware.DeserializeOutput, smithymiddleware.Metadata, error) {
					close(entered)
					<-release
					return smithymiddleware.DeserializeOutput{}, smithymiddleware.Metadata{}, errors.New("no answer")
				}))
		}()
		<-entered
	}
	out, _, err := r.deserialize.HandleDeserialize(context.Background(), smithymiddleware.DeserializeInput{Request: smithyhttp.NewStackRequest()},
		answering(io.NopCloser(bytes.NewReader(event(t, "chunk")))))
	close(release)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	b := out.RawResponse.(*smithyhttp.Response).Body.(*streamBody)
	defer b.Close()
	if b.callerReads {
		t.Errorf("with 2 other attempts waiting and GOMAXPROCS %d, the response took the busy path (callerReads): "+
			"GOMAXPROCS as it was when the options resolved still counts", runtime.GOMAXPROCS(0))
	}
}
