package integration_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go/eventstream"

	"github.com/streamstatus/streamstatus/integration/fake"
)

// The performance benchmarks of issue 7. Each runs the bare SDK and the
// plugin side by side in one run, as sub-benchmarks named .../side=bare and
// .../side=plugin, so benchstat can put them in columns:
//
//	integration/bench.sh            # -count 6, summarised with benchstat
//
// Both sides use the same fake endpoint with no response delay; the bare
// SDK's request-body race (DESIGN.md §3) makes some of its streams fail,
// which the failed-streams metric counts and the per-event figures exclude.

var sides = []struct {
	name string
	how  install
}{{"bare", bare}, {"plugin", clientOption}}

// chunkFrameOf returns one encoded chunk frame carrying size content bytes.
func chunkFrameOf(size int) []byte {
	var m eventstream.Message
	m.Headers.Set(eventstream.EventTypeHeader, eventstream.StringValue("chunk"))
	m.Headers.Set(eventstream.ContentTypeHeader, eventstream.StringValue("application/json"))
	m.Headers.Set(eventstream.MessageTypeHeader, eventstream.StringValue(eventstream.EventMessageType))
	m.Payload = []byte(`{"bytes":"` + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("x"), size)) + `"}`)
	return fake.Frame(m)
}

var perfInput = &bedrockruntime.InvokeModelWithResponseStreamInput{
	ModelId: aws.String("anthropic.claude-test"), Body: []byte(`{"prompt":"hi"}`), ContentType: aws.String("application/json"),
}

// drain reads one stream to its end and returns the events delivered, the
// time from start to the first event, and whether the stream failed.
func drain(c *bedrockruntime.Client, start time.Time) (events int, first time.Duration, failed bool) {
	out, err := c.InvokeModelWithResponseStream(context.Background(), perfInput)
	if err != nil {
		return 0, 0, true
	}
	stream := out.GetStream()
	defer stream.Close()
	for ev := range stream.Events() {
		if _, ok := ev.(*types.ResponseStreamMemberChunk); ok {
			if events == 0 {
				first = time.Since(start)
			}
			events++
		}
	}
	return events, first, stream.Err() != nil
}

// BenchmarkThroughput: events per second through Events(), and allocations
// per event, for 1, 100 and 10,000 events per stream and payloads of
// 100 B, 4 KiB and 64 KiB; sides bare, baresafe (the race-free bare
// baseline, scale_test.go) and plugin. Target: plugin >= 0.98 x bare
// (0.99 for 64 KiB events), and zero extra allocations per event.
func BenchmarkThroughput(b *testing.B) {
	for _, events := range []int{1, 100, 10000} {
		for _, size := range []int{100, 4 << 10, 64 << 10} {
			frame := chunkFrameOf(size)
			for _, side := range scaleSides {
				b.Run(fmt.Sprintf("events=%d/payload=%d/side=%s", events, size, side.name), func(b *testing.B) {
					srv := newServer(b)
					srv.SetDefault(fake.Response{Steps: []fake.Step{fake.Repeat(frame, events)}})
					c := side.new(srv)
					var delivered, failed int
					var before, after runtime.MemStats
					b.SetBytes(int64(events * size))
					runtime.ReadMemStats(&before)
					b.ResetTimer()
					cpu := cpuTime()
					for i := 0; i < b.N; i++ {
						n, _, bad := drain(c, time.Now())
						delivered += n
						if bad || n != events {
							failed++
						}
					}
					cpu = cpuTime() - cpu
					b.StopTimer()
					runtime.ReadMemStats(&after)
					if delivered == 0 {
						if side.name == "bare" {
							b.Skipf("the bare SDK lost all %d of its streams to the request-body race", b.N)
						}
						b.Fatal("no event delivered")
					}
					b.ReportMetric(float64(delivered)/b.Elapsed().Seconds(), "events/s")
					b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(delivered), "allocs/event")
					b.ReportMetric(float64(cpu)/float64(delivered), "cpu-ns/event")
					b.ReportMetric(float64(failed), "failed-streams")
				})
			}
		}
	}
}

// BenchmarkTimeToFirstEvent: the first event arrives 20ms after the
// response headers. Target: plugin <= 1.02 x bare (the read-ahead must not
// add a wait of its own).
func BenchmarkTimeToFirstEvent(b *testing.B) {
	frame := chunkFrameOf(100)
	for _, side := range sides {
		b.Run("delay=20ms/side="+side.name, func(b *testing.B) {
			srv := newServer(b)
			srv.SetDefault(fake.Response{Steps: []fake.Step{fake.Pause(20 * time.Millisecond), fake.Raw(frame), fake.Repeat(frame, 9)}})
			c := newClient(srv, side.how, 1)
			var firsts []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				n, first, _ := drain(c, time.Now())
				if n > 0 {
					firsts = append(firsts, first)
				}
			}
			b.StopTimer()
			if len(firsts) == 0 {
				b.Fatal("no stream delivered an event")
			}
			sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
			var sum time.Duration
			for _, f := range firsts {
				sum += f
			}
			b.ReportMetric(float64(sum.Nanoseconds())/float64(len(firsts)), "ttfe-ns")
			b.ReportMetric(float64(firsts[len(firsts)/2].Nanoseconds()), "ttfe-p50-ns")
		})
	}
}

// BenchmarkOpenStreamMemory: 32 streams are opened, their first (64 KiB)
// event read, and held open while the heap is measured. Target: the plugin's
// extra heap per open stream <= the largest frame + 64 KiB.
func BenchmarkOpenStreamMemory(b *testing.B) {
	const open = 32
	frame := chunkFrameOf(64 << 10)
	for _, side := range sides {
		b.Run(fmt.Sprintf("frame=%d/side=%s", len(frame), side.name), func(b *testing.B) {
			srv := newServer(b)
			srv.SetDefault(fake.Response{Steps: []fake.Step{fake.Raw(frame), fake.Hang()}})
			clients := make([]*bedrockruntime.Client, open)
			for i := range clients {
				clients[i] = newClient(srv, side.how, 1)
			}
			b.ResetTimer()
			perStream := heapPerOpenStream(b, open, func(i int) *bedrockruntime.Client { return clients[i] })
			b.StopTimer()
			b.ReportMetric(perStream, "heap-B/stream")
			b.ReportMetric(float64(len(frame)), "frame-B")
		})
	}
}

// heapPerOpenStream opens open streams (the i-th on client(i)), reads each
// one's first event, and returns the heap they hold per stream while open,
// averaged over b.N rounds; the streams hang open until measured, then are
// closed.
func heapPerOpenStream(b *testing.B, open int, client func(i int) *bedrockruntime.Client) float64 {
	var perStream float64
	for i := 0; i < b.N; i++ {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		base := ms.HeapAlloc
		streams := make([]*bedrockruntime.InvokeModelWithResponseStreamEventStream, 0, open)
		for j := range open {
			out, err := client(j).InvokeModelWithResponseStream(context.Background(), perfInput)
			if err != nil {
				b.Fatal(err)
			}
			s := out.GetStream()
			<-s.Events() // the first event, then the stream hangs open
			streams = append(streams, s)
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		perStream += (float64(ms.HeapAlloc) - float64(base)) / float64(open)
		for _, s := range streams {
			s.Close()
		}
	}
	return perStream / float64(b.N)
}

// BenchmarkFirstFrameThrottle: a first-frame throttle with a fixed 5ms
// backoff, against a clean call. Target: the throttled call costs one
// backoff delay plus one round trip: 2 server calls, no extra reads.
func BenchmarkFirstFrameThrottle(b *testing.B) {
	const backoffDelay = 5 * time.Millisecond
	frame := chunkFrameOf(100)
	for _, throttled := range []bool{false, true} {
		name := "clean"
		if throttled {
			name = "throttled"
		}
		b.Run(name+"/side=plugin", func(b *testing.B) {
			srv := newServer(b)
			cfg := testConfig(srv, 3)
			cfg.Retryer = testRetryer(3, retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return backoffDelay, nil }))
			c := newClientFromConfig(cfg)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if throttled {
					srv.Enqueue(fake.Response{Steps: []fake.Step{fake.Exception("throttlingException", "slow")}})
				}
				srv.Enqueue(fake.Response{Steps: []fake.Step{fake.Raw(frame)}})
				b.StartTimer()
				if n, _, bad := drain(c, time.Now()); bad || n != 1 {
					b.Fatal("stream failed")
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(srv.CallCount())/float64(b.N), "server-calls/op")
			b.ReportMetric(float64(backoffDelay.Nanoseconds()), "backoff-ns")
		})
	}
}
