// Command bodyrace reproduces, with the bare aws-sdk-go-v2 and nothing from
// streamstatus, the request-body race that breaks event streams on a fast
// endpoint, and shows the one-line guard that removes it. It is written to be
// attached to an upstream bug report as it is: a single file, loopback only.
//
//	go run ./integration/cmd/bodyrace              # bare SDK: some streams die
//	go run ./integration/cmd/bodyrace -guard       # request stream without WriteTo: none do
//
// The race: smithy-go's ClientHandler closes the request body as soon as
// client.Do returns. Its safeWriteToReadCloser.WriteTo then returns io.EOF.
// net/http's transport calls WriteTo(io.Discard) once more after the body
// (to look for extra bytes) and takes that io.EOF as a write error, so it
// closes the connection while the response stream is still being read:
// "decode event: read tcp ...: use of closed network connection". A request
// stream with Read and Seek but no WriteTo makes net/http fall back to Read,
// which answers a clean EOF; the bytes sent do not change.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go/eventstream"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func main() {
	streams := flag.Int("streams", 300, "streams to read")
	events := flag.Int("events", 1000, "events per stream")
	guard := flag.Bool("guard", false, "hand the transport a request stream without WriteTo")
	flag.Parse()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	body := eventStream(*events)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
		w.Header().Set("X-Amzn-Requestid", "bodyrace")
		_, _ = w.Write(body)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	var optFns []func(*bedrockruntime.Options)
	if *guard {
		optFns = append(optFns, bedrockruntime.WithAPIOptions(func(s *middleware.Stack) error {
			return s.Finalize.Insert(guardMiddleware{}, "Retry", middleware.After)
		}))
	}
	client := bedrockruntime.New(bedrockruntime.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDBODYRACE", "secret", ""),
		BaseEndpoint: aws.String("http://" + ln.Addr().String()),
		Retryer:      aws.NopRetryer{},
	}, optFns...)

	failed := 0
	var first error
	start := time.Now()
	for i := 0; i < *streams; i++ {
		if err := readStream(client, *events); err != nil {
			failed++
			if first == nil {
				first = err
			}
		}
	}
	fmt.Printf("%s, %d streams of %d events, guard=%v: %d failed (%.1f%%) in %v\n",
		runtime.Version(), *streams, *events, *guard, failed, 100*float64(failed)/float64(*streams), time.Since(start).Round(time.Millisecond))
	if first != nil {
		fmt.Println("first error:", first)
	}
}

func readStream(client *bedrockruntime.Client, events int) error {
	out, err := client.InvokeModelWithResponseStream(context.Background(), &bedrockruntime.InvokeModelWithResponseStreamInput{
		ModelId: aws.String("model"), Body: []byte(`{"prompt":"hi"}`), ContentType: aws.String("application/json"),
	})
	if err != nil {
		return err
	}
	stream := out.GetStream()
	defer stream.Close()
	n := 0
	for ev := range stream.Events() {
		if _, ok := ev.(*types.ResponseStreamMemberChunk); ok {
			n++
		}
	}
	if err := stream.Err(); err != nil {
		return err
	}
	if n != events {
		return fmt.Errorf("stream ended after %d of %d events", n, events)
	}
	return nil
}

// eventStream encodes n chunk events.
func eventStream(n int) []byte {
	var m eventstream.Message
	m.Headers.Set(":event-type", eventstream.StringValue("chunk"))
	m.Headers.Set(":content-type", eventstream.StringValue("application/json"))
	m.Headers.Set(":message-type", eventstream.StringValue("event"))
	m.Payload = []byte(`{"bytes":"` + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("x"), 100)) + `"}`)
	var frame bytes.Buffer
	_ = eventstream.NewEncoder().Encode(&frame, m)
	return bytes.Repeat(frame.Bytes(), n)
}

// guardMiddleware is the fix: per attempt, replace the request stream with
// one that has Read and Seek but no WriteTo.
type guardMiddleware struct{}

func (guardMiddleware) ID() string { return "bodyrace.Guard" }

func (guardMiddleware) HandleFinalize(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
	if req, ok := in.Request.(*smithyhttp.Request); ok {
		if s, ok := req.GetStream().(io.ReadSeeker); ok {
			if guarded, err := req.SetStream(struct{ io.ReadSeeker }{s}); err == nil {
				in.Request = guarded
			}
		}
	}
	return next.HandleFinalize(ctx, in)
}
