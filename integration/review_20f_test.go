package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/smithy-go/eventstream"
	smithymiddleware "github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"go.uber.org/goleak"

	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/middleware"
)

// substituteBody is a record/replay (or test-double) middleware between
// the SDK's event-stream deserializer and streamstatus's: it answers every
// 200 stream with a canned body. With
// closeReal it closes the response body it replaces, as a well-behaved
// replay middleware does; without, it keeps it in *kept (for the test to
// close later), unread.
func substituteBody(canned []byte, closeReal bool, kept ...*[]io.Closer) func(*bedrockruntime.Options) {
	mw := smithymiddleware.DeserializeMiddlewareFunc("review20f.Substitute", func(ctx context.Context, in smithymiddleware.DeserializeInput, next smithymiddleware.DeserializeHandler) (
		smithymiddleware.DeserializeOutput, smithymiddleware.Metadata, error) {
		out, md, err := next.HandleDeserialize(ctx, in)
		if resp, ok := out.RawResponse.(*smithyhttp.Response); ok && err == nil && resp.StatusCode == 200 {
			if closeReal {
				_ = resp.Body.Close()
			} else if len(kept) > 0 {
				*kept[0] = append(*kept[0], resp.Body)
			}
			resp.Body = io.NopCloser(bytes.NewReader(canned))
		}
		return out, md, err
	})
	return func(o *bedrockruntime.Options) {
		o.APIOptions = append(o.APIOptions, func(s *smithymiddleware.Stack) error {
			return s.Deserialize.Insert(mw, middleware.DeserializeID, smithymiddleware.Before)
		})
	}
}

// cannedStream is what substituteBody answers with: two chunk events,
// "canned-0" and "canned-1".
func cannedStream() []byte {
	var canned []byte
	for _, s := range []string{"canned-0", "canned-1"} {
		canned = append(canned, fake.Frame(cannedChunk(s))...)
	}
	return canned
}

// cannedChunk is an InvokeModelWithResponseStream chunk event carrying text.
func cannedChunk(text string) eventstream.Message {
	var m eventstream.Message
	m.Headers.Set(eventstream.EventTypeHeader, eventstream.StringValue("chunk"))
	m.Headers.Set(eventstream.ContentTypeHeader, eventstream.StringValue("application/json"))
	m.Headers.Set(eventstream.MessageTypeHeader, eventstream.StringValue(eventstream.EventMessageType))
	m.Payload, _ = json.Marshal(struct {
		Bytes []byte `json:"bytes"`
	}{[]byte(text)})
	return m
}

// TestReview20f_FailedAttemptLeaksSDKReaders: a throttle before content is
// retried transparently, and the attempt it failed leaves nothing running.
// The SDK builds a failed attempt's output and starts its reader, pipe and
// waitStreamClose goroutines before streamstatus.AwaitReadAhead fails the
// attempt; when the body they read is not the stream body (a replay
// middleware's), only closing that output ends them (closeOutput). Without
// it, three goroutines per throttled attempt blocked for ever.
func TestReview20f_FailedAttemptLeaksSDKReaders(t *testing.T) {
	baseline := goleak.IgnoreCurrent()
	srv := newServer(t)
	healthy, _ := invokeStream.healthy(2, "real")
	canned := cannedStream()
	const throttles = 4
	for i := 0; i < throttles; i++ {
		srv.Enqueue(fake.Response{Steps: []fake.Step{fake.Exception("throttlingException", "slow down")}})
	}
	srv.Enqueue(fake.Response{Steps: healthy})
	// WithBedrock: under APIOption or AppendMiddlewares the client's one
	// event-stream codec is shared by every reader (smithy-go #714), and the
	// failed attempts' readers, which decode the replay until their output
	// is closed, then race the next attempt's reader inside smithy-go.
	c := newClient(srv, clientOption, throttles+1)
	var kept []io.Closer
	res := invokeStream.run(context.Background(), c, substituteBody(canned, false, &kept))
	if res.callErr != nil || len(res.events) != 2 {
		t.Fatalf("call: %v %q", res.callErr, res.events)
	}
	for _, b := range kept { // every real response body, closed once the call is over
		_ = b.Close()
	}
	srv.Close()
	var leaked int
	deadline := time.Now().Add(3 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		leaked = strings.Count(stacks, "bedrockruntime.(*responseStreamReader).pipe") +
			strings.Count(stacks, "bedrockruntime.(*InvokeModelWithResponseStreamEventStream).waitStreamClose") +
			strings.Count(stacks, "smithy-go/transport/http.(*EventStreamReader).readEventStream")
		if leaked == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if leaked != 0 {
		t.Errorf("%d SDK event-stream goroutines still running 3 s after the call and its stream ended (%d throttled attempts)", leaked, throttles)
		goleak.VerifyNone(t, baseline)
	}
}

// TestReview20f_ClosingSubstituteFailsEveryCall: a replay middleware that
// closes the response body it replaces gets its canned stream, as when the
// read-ahead ran before it saw the body. The stream body's Close before any
// read ends the read-ahead unread, which is no failure of the response:
// reported as one ("read on a closed response body"), every attempt of
// every call failed.
func TestReview20f_ClosingSubstituteFailsEveryCall(t *testing.T) {
	srv := newServer(t)
	healthy, _ := invokeStream.healthy(2, "real")
	srv.SetDefault(fake.Response{Steps: healthy})
	canned := cannedStream()
	for _, how := range installs {
		t.Run(how.String(), func(t *testing.T) {
			before := srv.CallCount()
			res := invokeStream.run(context.Background(), newClient(srv, how, 3), substituteBody(canned, true))
			if res.callErr != nil || len(res.events) != 2 || res.streamErr != nil {
				t.Fatalf("call with a replay middleware that closes the real body: err %v, events %q, stream err %v after %d requests; want the 2 canned events",
					res.callErr, res.events, res.streamErr, srv.CallCount()-before)
			}
		})
	}
}
