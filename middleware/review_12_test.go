//go:build !streamstatus_per_operation_sdk

// This file names bedrockruntime API of the schema-serde generation only
// (v1.63.0 on): Options.Protocol and InvokeModelWithBidirectionalStream's
// input types. integration/compat.sh builds rows whose bedrockruntime is
// older (the floors, the per-operation generation) with the tag
// streamstatus_per_operation_sdk, which leaves it out; there is no shared
// protocol to isolate there.

package middleware_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go/eventstream"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/aws/smithy-go/transport/http/protocol/restjson1"

	"github.com/streamstatus/streamstatus/middleware"
)

// bidiEndpoint is an in-process HTTP/2-looking endpoint for
// InvokeModelWithBidirectionalStream (the fake server speaks HTTP/1.1 only,
// and the SDK refuses a bidirectional stream over it). It decodes every
// input frame the SDK sends (the signed envelope, then the event inside)
// and records, per request, the chunk bytes it carried or why it could not
// be decoded.
type bidiEndpoint struct {
	mu  sync.Mutex
	got [][]string
	wg  sync.WaitGroup
}

func (e *bidiEndpoint) Do(req *http.Request) (*http.Response, error) {
	e.mu.Lock()
	i := len(e.got)
	e.got = append(e.got, nil)
	e.mu.Unlock()
	pr, pw := io.Pipe()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer pw.Close()
		var seen []string
		defer func() { e.mu.Lock(); e.got[i] = seen; e.mu.Unlock() }()
		dec := eventstream.NewDecoder()
		for {
			outer, err := dec.Decode(req.Body, nil)
			if err != nil {
				if err != io.EOF {
					seen = append(seen, fmt.Sprintf("bad envelope: %v", err))
				}
				return
			}
			if len(outer.Payload) == 0 {
				continue // end-of-stream signature frame
			}
			inner, err := eventstream.NewDecoder().Decode(bytes.NewReader(outer.Payload), nil)
			if err != nil {
				seen = append(seen, fmt.Sprintf("bad event: %v", err))
				continue
			}
			var chunk struct{ Bytes []byte }
			if err := json.Unmarshal(inner.Payload, &chunk); err != nil {
				seen = append(seen, fmt.Sprintf("bad payload %q: %v", inner.Payload, err))
				continue
			}
			seen = append(seen, string(chunk.Bytes))
		}
	}()
	return &http.Response{
		Status: "200 OK", StatusCode: 200, Proto: "HTTP/2.0", ProtoMajor: 2,
		Header:  http.Header{"Content-Type": {"application/vnd.amazon.eventstream"}},
		Body:    pr,
		Request: req,
	}, nil
}

// TestDefect_BidiInputSharedCodec: the README says one client built with
// WithBedrock is safe for many goroutines streaming at once and that
// `go test -race` is quiet. InvokeModelWithBidirectionalStream is a
// streaming operation of that client, and isolatedProtocol leaves
// SerializeEventMessage on the client's one shared codec: concurrent
// bidirectional streams encode their input events through one
// eventstream.Encoder whose buffers every call resets. Run with -race: the
// race detector reports it; without -race, frames arrive corrupted or
// carrying another stream's bytes.
func TestDefect_BidiInputSharedCodec(t *testing.T) {
	if os.Getenv(bidiChildEnv) != "1" {
		// The shared encoder can panic in an SDK goroutine, which nobody can
		// recover: run the workload in a child process and read its verdict.
		// The child ignores exactly one goroutine at exit, the one the SDK
		// leaks per bidirectional call (sdkBidiLeak, see TestMain): any other
		// leak, a failure or a panic makes it exit non-zero.
		cmd := exec.Command(os.Args[0], "-test.run=^TestDefect_BidiInputSharedCodec$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), bidiChildEnv+"=1")
		out, err := cmd.CombinedOutput()
		text := string(out)
		races := strings.Count(text, "WARNING: DATA RACE")
		panicked := regexp.MustCompile(`(?m)^panic: .*$`).FindString(text)
		verdict := regexp.MustCompile(`(?m)^.*bidi verdict: .*$`).FindString(text)
		if err != nil || races != 0 || panicked != "" || !strings.Contains(verdict, "bidi verdict: ok") {
			t.Fatalf("concurrent InvokeModelWithBidirectionalStream on one WithBedrock client: child %v, %d race reports, panic %q, %s\n%.2000s",
				err, races, panicked, strings.TrimSpace(verdict), text)
		}
		return
	}
	const goroutines, events = 8, 40
	ep := &bidiEndpoint{}
	c := bedrockruntime.New(bedrockruntime.Options{
		Region:       "us-east-1",
		Credentials:  exampleCredentials, // example_test.go
		BaseEndpoint: aws.String("https://bedrock-runtime.invalid"),
		HTTPClient:   ep,
	}, middleware.WithBedrock())

	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			out, err := c.InvokeModelWithBidirectionalStream(ctx, &bedrockruntime.InvokeModelWithBidirectionalStreamInput{ModelId: aws.String("m")})
			if err != nil {
				errs <- err
				return
			}
			stream := out.GetStream()
			for i := range events {
				ev := &types.InvokeModelWithBidirectionalStreamInputMemberChunk{Value: types.BidirectionalInputPayloadPart{
					Bytes: fmt.Appendf(nil, "g%02d-%03d-%s", g, i, bytes.Repeat([]byte{'a' + byte(g)}, 64)),
				}}
				if err := stream.Send(ctx, ev); err != nil {
					errs <- fmt.Errorf("goroutine %d send %d: %w", g, i, err)
					break
				}
			}
			_ = stream.Close()
		}()
	}
	wg.Wait()
	ep.wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var wrong int
	var example string
	for _, seen := range ep.got {
		if len(seen) != events {
			wrong++
			example = fmt.Sprintf("%d events received, want %d: %.200q", len(seen), events, seen)
			continue
		}
		prefix := seen[0][:3]
		for i, s := range seen {
			want := fmt.Sprintf("%s-%03d-", prefix, i)
			if len(s) < len(want) || s[:len(want)] != want || len(s) != len(want)+64 {
				wrong++
				example = fmt.Sprintf("event %d: %.120q, want prefix %q", i, s, want)
				break
			}
		}
	}
	if wrong != 0 {
		fmt.Printf("bidi verdict: %d of %d streams sent wrong input events; first: %s\n", wrong, len(ep.got), example)
		t.Fail()
		return
	}
	fmt.Printf("bidi verdict: ok, %d streams each sent exactly its own %d events\n", len(ep.got), events)
}

// TestDefect_UserProtocolReplaced pins what WithBedrock's doc says about a
// Protocol set in the client's options (the review found the doc claimed
// every protocol a user sets is left alone; bedrockruntime.New always sets
// a restJson1 protocol first, so a user's restJson1 protocol cannot be told
// from it). A user's restJson1 protocol is wrapped, and still serves the
// client's requests; a protocol of another type is left as it is.
func TestDefect_UserProtocolReplaced(t *testing.T) {
	mine := restjson1.New(nil)
	c := bedrockruntime.New(bedrockruntime.Options{Region: "us-east-1", Credentials: aws.AnonymousCredentials{}},
		func(o *bedrockruntime.Options) { o.Protocol = mine }, middleware.WithBedrock())
	wrapper, ok := c.Options().Protocol.(interface {
		Unwrap() smithyhttp.ClientProtocol
	})
	if !ok {
		t.Fatalf("a restJson1 Protocol set before WithBedrock became %T; the doc says it is wrapped", c.Options().Protocol)
	}
	if got := wrapper.Unwrap(); got != smithyhttp.ClientProtocol(mine) {
		t.Errorf("the wrapper serves requests with %T %p, not the restJson1 protocol set before WithBedrock (%p)", got, got, mine)
	}

	other := otherProtocol{mine}
	c = bedrockruntime.New(bedrockruntime.Options{Region: "us-east-1", Credentials: aws.AnonymousCredentials{}},
		func(o *bedrockruntime.Options) { o.Protocol = other }, middleware.WithBedrock())
	if got := c.Options().Protocol; got != smithyhttp.ClientProtocol(other) {
		t.Errorf("a Protocol of another type set before WithBedrock became %T; the doc says it is left as it is", got)
	}
}

// otherProtocol is a protocol of the user's own type.
type otherProtocol struct{ smithyhttp.ClientProtocol }
