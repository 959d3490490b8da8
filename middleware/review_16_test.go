package middleware

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/internal/streamerr"
	"github.com/streamstatus/streamstatus/smithyext"
)

// lateReturnBody delivers its bytes at once, but the read that completes
// the first frame returns late (the reading goroutine was descheduled, a
// GC ran: the bytes were in the socket in time). Close makes later reads
// fail, as a closed response body does.
type lateReturnBody struct {
	mu     sync.Mutex
	r      *bytes.Reader
	reads  int
	late   time.Duration
	closed bool
}

func (s *lateReturnBody) Read(p []byte) (int, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, errors.New("http: read on closed response body")
	}
	s.reads++
	n, err := s.r.Read(p)
	late := s.reads == 2 // prelude, then the rest of the first frame
	s.mu.Unlock()
	if late {
		time.Sleep(s.late)
	}
	return n, err
}

func (s *lateReturnBody) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

// Review of issue 16: the first-event timeout fires while the read that
// completes the first content frame is returning. The read-ahead then still
// takes the frame as the stream's first content and hands the stream to the
// SDK, whose next read meets the connection the guard closed: the consumer
// gets the content event and then stream.Err() = StreamStalled "no content
// event within ..." after content: not retried, the rest of a healthy
// answer lost. The attempt had delivered nothing yet when the guard cut it;
// it should fail before content (and be retried transparently), or keep the
// stream.
func TestDefect_FirstEventStallAfterContentWasTaken(t *testing.T) {
	const d = 20 * time.Millisecond
	frames := [][]byte{event(t, "chunk"), event(t, "chunk"), event(t, "chunk")}
	src := &lateReturnBody{r: bytes.NewReader(bytes.Join(frames, nil)), late: 5 * d}
	b := newStreamBody(context.Background(), src, streamerr.Stream{Service: "Bedrock Runtime"}, resolve([]Option{WithFirstEventTimeout(d)}))
	if err := b.readAhead(); err != nil {
		var se *smithyext.StatusError
		if errors.As(err, &se) && se.ErrorCode() == classify.CodeStreamStalled && se.Retryable {
			return // failed before content: the retryer runs it again
		}
		t.Fatalf("readAhead: %v", err)
	}
	got, err := io.ReadAll(b)
	if err != nil || !bytes.Equal(got, bytes.Join(frames, nil)) {
		t.Fatalf("the read-ahead took the first content frame (call returned), then the stream delivered %d of %d bytes and failed after content: %v",
			len(got), len(bytes.Join(frames, nil)), err)
	}
}
