package middleware

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/aws/smithy-go/eventstream"

	"github.com/streamstatus/streamstatus/internal/streamerr"
)

// TestPooledFrameBuffersNotReadAfterReturn: many streams at once, each
// decoded by smithy-go's event-stream decoder (as the SDK's reader does)
// from its own stream body, with frames of every pool class and above,
// before and after content, whole and passed through in parts, some
// streams closed part way. Every event must arrive with exactly its own
// bytes. Run under -race (the README's test command): the scanner then
// poisons every buffer it gives back to the shared pool, so a frame read
// after its buffer went back (and taken by another stream) shows up here
// as a wrong payload, and the race detector reports the read.
func TestPooledFrameBuffersNotReadAfterReturn(t *testing.T) {
	sizes := []int{10, 900, 3000, 7000, 15000, 30000, 60000, 70000, 200000}
	inParallel(t, 24, func(g int) error {
		var frames [][]byte
		var payloads []string
		for i := range 40 {
			size := sizes[(g+i*7)%len(sizes)]
			p := fmt.Sprintf("%d/%d:", g, i) + strings.Repeat(string(rune('a'+(g+i)%26)), size)
			payloads = append(payloads, p)
			frames = append(frames, frame(t, "event", eventstream.EventTypeHeader, "chunk", p))
		}
		op := []string{"InvokeModelWithResponseStream", "ConverseStream"}[g%2]
		info := streamerr.Stream{Service: "Bedrock Runtime", Operation: op}
		src := &closeRecorder{Reader: &chunkedReader{data: bytes.Join(frames, nil), max: 1 + g*997%20000}}
		b := newStreamBody(context.Background(), src, info, resolve(nil))
		if err := b.readAhead(); err != nil {
			return err
		}
		stopAt := len(payloads)
		if g%3 == 0 {
			stopAt = g % 17 // closed part way
		}
		dec := eventstream.NewDecoder()
		var buf []byte
		for i := range stopAt {
			m, err := dec.Decode(b, buf[:0])
			if err != nil {
				return fmt.Errorf("stream %d event %d: %v", g, i, err)
			}
			if string(m.Payload) != payloads[i] {
				return fmt.Errorf("stream %d event %d: payload of %d bytes is not its own (starts %.20q)", g, i, len(m.Payload), m.Payload)
			}
			buf = m.Payload
		}
		_ = b.Close()
		if stopAt == len(payloads) {
			if _, err := dec.Decode(b, nil); err != io.EOF && err != errBodyClosed && !strings.Contains(fmt.Sprint(err), "closed") {
				return fmt.Errorf("stream %d: after the last event: %v", g, err)
			}
		}
		return nil
	})
}

// inParallel runs f(0) to f(n-1) in n goroutines at once, waits for all of
// them, and reports every error they return.
func inParallel(t testing.TB, n int, f func(g int) error) {
	t.Helper()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(g); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// heldBytes is the capacity of the frame buffer b holds, read under its
// lock.
func heldBytes(b *streamBody) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.scan.Held()
}
