package middleware

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// stallGuard enforces the stall timeouts of one stream (WithFirstEventTimeout,
// WithIdleTimeout). The scanner reads the response body through it.
//
// Go has no read timeout on a response body, and the body of an SDK
// response does not reach its connection, so the guard uses one timer per
// stream: armed for the time left before each read of the body and stopped
// when the read returns, it costs a Reset and a Stop per read and nothing
// while the consumer is busy with an event. When it fires it closes the
// body, which ends the blocked read; the read's error is then reported as
// the stall.
//
// Read runs on one goroutine at a time (the read-ahead, then the SDK's
// reader); the timer's function runs on its own and touches only atomics
// and the body's close.
type stallGuard struct {
	src   io.Reader
	timer *time.Timer // nil: the guard is off

	firstEvent, idle time.Duration
	deadline         time.Time // for the first content event; zero once seen

	armed atomic.Uint32 // stallReason the armed timer stands for
	fired atomic.Uint32 // stallReason that fired, 0 for none
}

type stallReason = uint32

const (
	stallFirstEvent stallReason = iota + 1
	stallIdle
)

// start turns the guard on for a stream whose headers just arrived.
func (g *stallGuard) start(src io.Reader, closeSrc func(), firstEvent, idle time.Duration) {
	g.src, g.firstEvent, g.idle = src, firstEvent, idle
	if firstEvent > 0 {
		g.deadline = time.Now().Add(firstEvent)
	}
	g.timer = time.AfterFunc(time.Hour, func() {
		g.fired.CompareAndSwap(0, g.armed.Load())
		closeSrc()
	})
	g.timer.Stop()
}

// Read reads from the body with the timer armed for whichever timeout
// comes first.
func (g *stallGuard) Read(p []byte) (int, error) {
	wait, reason := g.idle, stallIdle
	if !g.deadline.IsZero() {
		if left := time.Until(g.deadline); wait <= 0 || left < wait {
			wait, reason = left, stallFirstEvent
		}
	}
	if wait <= 0 && reason == stallIdle { // idle off, first content seen
		return g.src.Read(p)
	}
	g.armed.Store(reason)
	g.timer.Reset(wait)
	n, err := g.src.Read(p)
	g.timer.Stop()
	if err != nil && g.fired.Load() != 0 {
		err = errStalled // even a clean io.EOF: the body was cut by the timer
	}
	return n, err
}

// errStalled is the read error of a body the timer closed; readError
// reports it as the stall.
var errStalled = errors.New("streamstatus: response body closed by a stall timeout")

// awaitingContent reports whether the first-event timeout still runs.
func (g *stallGuard) awaitingContent() bool { return !g.deadline.IsZero() }

// contentSeen stops the first-event timeout.
func (g *stallGuard) contentSeen() { g.deadline = time.Time{} }

// stop turns the timer off for good (the stream has ended).
func (g *stallGuard) stop() {
	if g.timer != nil {
		g.timer.Stop()
	}
}

// stalled returns the stall the timer detected, or nil.
func (g *stallGuard) stalled() error {
	switch g.fired.Load() {
	case stallFirstEvent:
		return &stallError{what: "no content event", d: g.firstEvent, after: "of the response headers", option: "WithFirstEventTimeout"}
	case stallIdle:
		return &stallError{what: "no byte", d: g.idle, after: "while the next frame was awaited", option: "WithIdleTimeout"}
	}
	return nil
}

// stallError says which timeout expired. It is deliberately not a context
// error: errors.Is(err, context.DeadlineExceeded) stays the caller's.
type stallError struct {
	what, after, option string
	d                   time.Duration
}

func (e *stallError) Error() string {
	return fmt.Sprintf("%s within %v %s (%s)", e.what, e.d, e.after, e.option)
}

// Timeout reports true, as net.Error does for a read deadline.
func (e *stallError) Timeout() bool { return true }
