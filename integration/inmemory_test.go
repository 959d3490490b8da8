package integration_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	smithymiddleware "github.com/aws/smithy-go/middleware"

	"github.com/streamstatus/streamstatus/middleware"
)

// BenchmarkOneEventInMemory: 1-event streams whose response comes from
// memory (memoryEndpoint: no socket, no server goroutines), on the
// race-free bare baseline (side=baresafe) and on the plugin (WithBedrock),
// one stream at a time (par=false) and from 4 × GOMAXPROCS goroutines
// (par=true). With the network and the endpoint gone, what is left of the
// difference is the plugin's own CPU per stream and its allocations,
// which the end-to-end benchmarks cannot resolve (their spread is wider
// than the cost):
//
//	go test -run '^$' -bench OneEventInMemory -count 8 ./integration/ | benchstat -col /side -
//
// The memory endpoint reads the request body before it answers, so the
// request-body race cannot happen on either side. With par=true each
// goroutine has a client of its own: one bare client shared by goroutines
// decodes all their streams through one codec, which races (smithy-go
// #714; the shared-client benchmarks' baseline does, ConcurrentStreams
// and ConcurrentInterleaved, so run those without -race). And since the
// endpoint answers at once, no attempt ever waits for its response
// headers, so the plugin never takes its busy path (deserializeMiddleware
// callerReads): the read-ahead always runs on the SDK's reader goroutine,
// as it does for one stream at a time end to end.
func BenchmarkOneEventInMemory(b *testing.B) {
	for _, size := range []int{100, 4 << 10} {
		endpoint := memoryEndpoint{frame: chunkFrameOf(size)}
		for _, par := range []bool{false, true} {
			for _, side := range []string{"baresafe", "plugin"} {
				plugin := side == "plugin"
				b.Run(fmt.Sprintf("payload=%d/par=%v/side=%s", size, par, side), func(b *testing.B) {
					b.ReportAllocs()
					if !par {
						c := newMemoryClient(endpoint, plugin)
						for b.Loop() {
							streamOne(b, c)
						}
						return
					}
					b.SetParallelism(4)
					b.RunParallel(func(pb *testing.PB) {
						c := newMemoryClient(endpoint, plugin)
						for pb.Next() {
							streamOne(b, c)
						}
					})
				})
			}
		}
	}
}

// streamOne makes one call and reads its stream to the end (drain); it
// fails the benchmark unless that was exactly one event and no error.
func streamOne(b *testing.B, c *bedrockruntime.Client) {
	if n, _, failed := drain(c, time.Time{}); failed || n != 1 {
		b.Fatalf("%d events, failed %v; want 1 event and no error", n, failed)
	}
}

// memoryEndpoint is an aws.HTTPClient that answers every request with
// frame as a 200 event stream, from memory.
type memoryEndpoint struct{ frame []byte }

func (m memoryEndpoint) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
	}
	h := http.Header{}
	h.Set("Content-Type", "application/vnd.amazon.eventstream")
	h.Set("X-Amzn-Requestid", "memory-1")
	return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(bytes.NewReader(m.frame)), Request: req}, nil
}

// newMemoryClient returns a client of endpoint: the plugin (WithBedrock),
// or the race-free bare baseline (hideWriteTo, as newBareSafeClient).
func newMemoryClient(endpoint memoryEndpoint, plugin bool) *bedrockruntime.Client {
	cfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(testAccessKey, testSecretKey, ""),
		BaseEndpoint: aws.String("http://127.0.0.1:1"), // never dialed
		Retryer:      testRetryer(1, zeroBackoff),
		HTTPClient:   endpoint,
	}
	if plugin {
		return bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock())
	}
	return bedrockruntime.NewFromConfig(cfg, bedrockruntime.WithAPIOptions(func(s *smithymiddleware.Stack) error {
		return s.Finalize.Add(hideWriteTo, smithymiddleware.After)
	}))
}
