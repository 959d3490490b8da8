package integration_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"

	"github.com/streamstatus/streamstatus/integration/fake"
)

// Issue 15: the stream path, reviewed. Each test below failed on the code
// before the fix (see the note for the figures).

// TestUnknownFrameReportedAsFastAsTheBareSDK: a frame of an unknown message
// type before content, then a server that goes quiet. The bare SDK reports
// the unknown frame at once; the plugin must not sit in its read-ahead
// waiting for content until the caller's deadline.
func TestUnknownFrameReportedAsFastAsTheBareSDK(t *testing.T) {
	const deadline = 3 * time.Second
	for _, how := range append([]install{bare}, installs...) {
		t.Run(how.String(), func(t *testing.T) {
			srv := serverFor(t, how)
			srv.SetDefault(fake.Response{Steps: []fake.Step{fake.MessageStart(), futureMessage(), fake.Hang()}})
			c := newClient(srv, how, 1)
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			res := converseStream.run(ctx, c)
			took := time.Since(start)
			if res.callErr != nil || res.streamErr == nil || errors.Is(res.streamErr, context.DeadlineExceeded) {
				t.Fatalf("call error %v, stream error %v; want the SDK's unknown-message error", res.callErr, res.streamErr)
			}
			if took > deadline/3 {
				t.Fatalf("the unknown frame was reported after %v (caller deadline %v)", took, deadline)
			}
			t.Logf("%s: %v, %v", how, took.Round(time.Millisecond), res.streamErr)
		})
	}
}

// TestNoFrameBufferHeldAfterTheStreamEnds: once a stream has ended (EOF, a
// failure, or the consumer's Close), the plugin holds no frame buffer, even
// while the caller still holds the output (the SDK's reader keeps a
// reference to the body). Heap held is measured side by side with the bare
// SDK.
func TestNoFrameBufferHeldAfterTheStreamEnds(t *testing.T) {
	big, _ := chunkFrameOfSize(8 << 20)
	ends := []struct {
		name  string
		steps []fake.Step
		stop  bool // the consumer Closes after the first event
	}{
		{"EOF", []fake.Step{fake.Raw(big)}, false},
		{"exception", []fake.Step{fake.Raw(big), fake.Exception("throttlingException", "slow down")}, false},
		// Close while the SDK's goroutines wait to hand over the next
		// events (no Read in progress), and while a Read waits for bytes.
		{"Close between reads", []fake.Step{fake.Raw(big), fake.Chunk([]byte("b")), fake.Chunk([]byte("c")), fake.Chunk([]byte("d")), fake.Hang()}, true},
		{"Close during a read", []fake.Step{fake.Raw(big), fake.Hang()}, true},
	}
	for _, end := range ends {
		t.Run(end.name, func(t *testing.T) {
			held := func(how install) int64 {
				srv := serverFor(t, how)
				cfg, bodies := countingConfig(srv, 1)
				c := newBedrockClient(cfg, how)
				srv.Enqueue(fake.Response{Steps: end.steps})
				before := heapAfterGC()
				out, err := c.InvokeModelWithResponseStream(context.Background(), &bedrockruntime.InvokeModelWithResponseStreamInput{
					ModelId: aws.String("anthropic.claude-test"), Body: []byte(`{}`), ContentType: aws.String("application/json"),
				})
				if err != nil {
					t.Fatal(err)
				}
				s := out.GetStream()
				n := 0
				for range s.Events() {
					n++
					if end.stop {
						time.Sleep(50 * time.Millisecond) // let the SDK's goroutines block
						_ = s.Close()
						break
					}
				}
				if n == 0 {
					t.Fatalf("%s: no event delivered: %v", how, s.Err())
				}
				if _, _, ok := bodies.balanced(); !ok {
					t.Fatalf("%s: response body not closed", how)
				}
				waitStreamDone(s.Reader)
				h := heapAfterGC() - before
				runtime.KeepAlive(out)
				_ = s.Close()
				return h
			}
			bareHeld := held(bare)
			got := held(clientOption)
			t.Logf("heap held after the stream ended, output still referenced: bare SDK %d KiB, plugin %d KiB", bareHeld>>10, got>>10)
			if got > bareHeld+64<<10 {
				t.Fatalf("plugin holds %d KiB, bare SDK %d KiB: want at most 64 KiB more", got>>10, bareHeld>>10)
			}
		})
	}
}

// waitStreamDone waits for the SDK's reader goroutine to finish.
func waitStreamDone(r bedrockruntime.ResponseStreamReader) {
	if c, ok := r.(interface{ Closed() <-chan struct{} }); ok {
		select {
		case <-c.Closed():
		case <-time.After(5 * time.Second):
		}
	}
}

func heapAfterGC() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
