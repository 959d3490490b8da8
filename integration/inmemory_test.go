package integration_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	smithymiddleware "github.com/aws/smithy-go/middleware"

	"github.com/streamstatus/streamstatus/internal/canned"
	"github.com/streamstatus/streamstatus/middleware"
)

// BenchmarkOneEventInMemory: 1-event streams whose response comes from
// memory (internal/canned's endpoint: no socket, no server goroutines), on
// the race-free bare baseline (side=baresafe) and on the plugin
// (WithBedrock), one stream at a time (par=false) and from 4 × GOMAXPROCS
// goroutines (par=true). With the network and the endpoint gone, what is
// left of the difference is the plugin's own CPU per stream and its
// allocations, which the end-to-end benchmarks cannot resolve (their
// spread is wider than the cost):
//
//	go test -run '^$' -bench OneEventInMemory -count 8 ./integration/ | benchstat -col /side -
//
// The memory endpoint never reads the request body, so the request-body
// race cannot happen on either side. With par=true each goroutine has a
// client of its own: one bare client shared by goroutines decodes all their
// streams through one codec, which races (smithy-go #714; the shared-client
// benchmarks' baseline does, ConcurrentStreams and ConcurrentInterleaved,
// so run those without -race). And since the endpoint answers at once, no
// attempt ever waits for its response headers, so the plugin never takes
// its busy path (deserializeMiddleware callerReads): the read-ahead always
// runs on the SDK's reader goroutine, as it does for one stream at a time
// end to end.
func BenchmarkOneEventInMemory(b *testing.B) {
	for _, size := range []int{100, 4 << 10} {
		frame := chunkFrameOf(size)
		for _, par := range []bool{false, true} {
			for _, side := range []string{"baresafe", "plugin"} {
				plugin := side == "plugin"
				b.Run(fmt.Sprintf("payload=%d/par=%v/side=%s", size, par, side), func(b *testing.B) {
					b.ReportAllocs()
					if !par {
						c := newMemoryClient(frame, plugin)
						for b.Loop() {
							streamOne(b, c)
						}
						return
					}
					b.SetParallelism(4)
					b.RunParallel(func(pb *testing.PB) {
						c := newMemoryClient(frame, plugin)
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

// newMemoryClient returns a client of an in-memory endpoint of its own
// that answers every call with frame: the plugin (WithBedrock), or the
// race-free bare baseline (hideWriteTo, as newBareSafeClient).
func newMemoryClient(frame []byte, plugin bool) *bedrockruntime.Client {
	cfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(testAccessKey, testSecretKey, ""),
		BaseEndpoint: aws.String("http://127.0.0.1:1"), // never dialed
		Retryer:      testRetryer(1, zeroBackoff),
		HTTPClient:   canned.NewEndpoint(canned.Stream(frame)),
	}
	if plugin {
		return bedrockruntime.NewFromConfig(cfg, middleware.WithBedrock())
	}
	return bedrockruntime.NewFromConfig(cfg, bedrockruntime.WithAPIOptions(func(s *smithymiddleware.Stack) error {
		return s.Finalize.Add(hideWriteTo, smithymiddleware.After)
	}))
}
