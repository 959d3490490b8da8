package integration_test

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	smithymiddleware "github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/streamstatus/streamstatus/integration/fake"
)

// The benchmarks of issue 20: 1-event streams against both bare baselines,
// and many concurrent streams on one client.
//
//	go test -run '^$' -bench 'OneEventStream|ConcurrentStreams' -count 6 ./integration/

// bareSafe is the bare SDK with the request-body race closed the way the
// plugin closes it (a request stream without WriteTo, set after signing):
// the race-free bare baseline. The middleware is built once, as the
// plugin's body guard is, so that the baseline pays only for what the fix
// itself needs (smithy-go's SetStream, which clones the request, and one
// middleware on the stack).
func newBareSafeClient(srv *fake.Server) *bedrockruntime.Client {
	return bedrockruntime.NewFromConfig(testConfig(srv, 1), bedrockruntime.WithAPIOptions(func(s *smithymiddleware.Stack) error {
		return s.Finalize.Add(hideWriteTo, smithymiddleware.After)
	}))
}

var hideWriteTo = smithymiddleware.FinalizeMiddlewareFunc("hideWriteTo", func(ctx context.Context, in smithymiddleware.FinalizeInput, next smithymiddleware.FinalizeHandler) (smithymiddleware.FinalizeOutput, smithymiddleware.Metadata, error) {
	if req, ok := in.Request.(*smithyhttp.Request); ok {
		if rs, ok := req.GetStream().(io.ReadSeeker); ok {
			r, err := req.SetStream(struct{ io.ReadSeeker }{rs})
			if err != nil {
				return smithymiddleware.FinalizeOutput{}, smithymiddleware.Metadata{}, err
			}
			in.Request = r
		}
	}
	return next.HandleFinalize(ctx, in)
})

// scaleSides: the raw bare SDK, the race-free bare baseline, the plugin.
var scaleSides = []struct {
	name string
	new  func(*fake.Server) *bedrockruntime.Client
}{
	{"bare", func(s *fake.Server) *bedrockruntime.Client { return newClient(s, bare, 1) }},
	{"baresafe", newBareSafeClient},
	{"plugin", func(s *fake.Server) *bedrockruntime.Client { return newClient(s, clientOption, 1) }},
}

// BenchmarkConcurrentStreams: conc goroutines stream on one client, each
// stream events × 4 KiB chunks. ns/op is per stream; compare
// side=plugin with side=baresafe (and side=bare) at each level. The bare
// sides decode all their streams through their client's one codec, as
// the SDK does; that races (smithy-go #714, DESIGN.md), so -race reports
// it: run the bare sides without -race.
func BenchmarkConcurrentStreams(b *testing.B) {
	frame := chunkFrameOf(4 << 10)
	for _, events := range []int{1, 100} {
		for _, conc := range []int{1, 8, 64} {
			for _, side := range scaleSides {
				b.Run(fmt.Sprintf("events=%d/conc=%d/side=%s", events, conc, side.name), func(b *testing.B) {
					srv := newServer(b)
					srv.SetDefault(fake.Response{Steps: []fake.Step{fake.Repeat(frame, events)}})
					c := side.new(srv)
					var failed, delivered atomic.Int64
					var before, after runtime.MemStats
					runtime.ReadMemStats(&before)
					b.ResetTimer()
					cpu := cpuTime()
					streamConcurrently(conc, b.N, func() {
						n, _, bad := drain(c, time.Now())
						delivered.Add(int64(n))
						if bad || n != events {
							failed.Add(1)
						}
					})
					cpu = cpuTime() - cpu
					b.StopTimer()
					runtime.ReadMemStats(&after)
					b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N), "allocs/stream")
					b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/stream")
					b.ReportMetric(float64(failed.Load()), "failed-streams")
				})
			}
		}
	}
}

// streamConcurrently runs stream n times on conc goroutines, each taking
// the next run until all n are taken, and returns when all have ended.
func streamConcurrently(conc, n int, stream func()) {
	var taken atomic.Int64
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for taken.Add(1) <= int64(n) {
				stream()
			}
		}()
	}
	wg.Wait()
}

// BenchmarkIdleStreamMemory: 1,000 streams open on one client, each after
// its first (4 KiB) event, waiting for the next. The plugin's extra heap
// per open stream must stay within the largest frame + 8 KiB.
func BenchmarkIdleStreamMemory(b *testing.B) {
	const open = 1000
	frame := chunkFrameOf(4 << 10)
	for _, side := range scaleSides {
		b.Run(fmt.Sprintf("open=%d/frame=%d/side=%s", open, len(frame), side.name), func(b *testing.B) {
			srv := newServer(b)
			srv.SetDefault(fake.Response{Steps: []fake.Step{fake.Raw(frame), fake.Hang()}})
			c := side.new(srv)
			perStream := heapPerOpenStream(b, open, func(int) *bedrockruntime.Client { return c })
			b.ReportMetric(perStream, "heap-B/stream")
			b.ReportMetric(float64(len(frame)), "frame-B")
		})
	}
}
