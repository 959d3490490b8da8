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
// response does not reach its connection, so the guard closes the body
// itself when a timeout expires, which ends the blocked read; the read's
// error is then reported as the stall.
//
// Cost: a read of the body records when it started and that it is
// waiting (a monotonic clock read and two atomic stores), nothing else. One
// timer per stream checks those marks when the earliest deadline can have
// passed and re-arms itself for the next one, so a healthy stream wakes it
// at most about twice per timeout period, however many events it carries;
// time the consumer spends on an event, with no read waiting, never
// counts.
//
// Read runs on one goroutine at a time (the read-ahead, then the SDK's
// reader); the timer's function runs on its own and touches only atomics
// and the body's close.
type stallGuard struct {
	src      io.Reader
	closeSrc func()
	timer    *time.Timer // nil: the guard is off

	firstEvent, idle time.Duration
	base             time.Time // the response headers' arrival; the clock's zero

	contentSeen  atomic.Bool  // the first content event arrived
	waitingSince atomic.Int64 // 1 + the clock when the pending read started; 0: no read waiting
	fired        atomic.Uint32
	stopped      atomic.Bool
}

type stallReason = uint32

const (
	stallFirstEvent stallReason = iota + 1
	stallIdle
)

// start turns the guard on for a stream whose headers just arrived.
func (g *stallGuard) start(src io.Reader, closeSrc func(), firstEvent, idle time.Duration) {
	g.src, g.closeSrc, g.firstEvent, g.idle = src, closeSrc, firstEvent, idle
	g.base = time.Now()
	first := idle
	if firstEvent > 0 && (idle <= 0 || firstEvent < idle) {
		first = firstEvent
	}
	g.timer = time.AfterFunc(first, g.check)
}

// now is the time since the headers, on the monotonic clock.
func (g *stallGuard) now() time.Duration { return time.Since(g.base) }

// Read reads from the body, marked as waiting.
func (g *stallGuard) Read(p []byte) (int, error) {
	if g.idle <= 0 && g.contentSeen.Load() {
		return g.src.Read(p)
	}
	now := g.now()
	if g.firstEvent > 0 && now >= g.firstEvent && !g.contentSeen.Load() {
		// The deadline passed while no read waited (the consumer was on a
		// non-content event): the stream is late all the same.
		g.fire(stallFirstEvent)
		return 0, errStalled
	}
	g.waitingSince.Store(int64(now) + 1)
	n, err := g.src.Read(p)
	g.waitingSince.Store(0)
	if err != nil && g.fired.Load() != 0 {
		err = errStalled // even a clean io.EOF: the body was cut by the timer
	}
	return n, err
}

// check runs on the timer: it fires when a waiting read has passed a
// deadline, else re-arms the timer for the earliest deadline still ahead.
func (g *stallGuard) check() {
	if g.stopped.Load() || g.fired.Load() != 0 {
		return
	}
	now := g.now()
	since := g.waitingSince.Load()
	const never = time.Duration(1<<63 - 1)
	next := never
	if g.idle > 0 {
		next = g.idle // no read waiting: one may start at any moment
		if since != 0 {
			waited := now - time.Duration(since-1)
			if waited >= g.idle {
				g.fire(stallIdle)
				return
			}
			next = g.idle - waited
		}
	}
	if g.firstEvent > 0 && !g.contentSeen.Load() {
		switch left := g.firstEvent - now; {
		case left > 0:
			next = min(next, left)
		case since != 0:
			g.fire(stallFirstEvent)
			return
		}
		// Past the deadline with no read waiting: the next Read fails.
	}
	if next != never {
		g.timer.Reset(next)
	}
}

// fire records the stall and closes the body, ending a blocked read.
func (g *stallGuard) fire(reason stallReason) {
	if g.fired.CompareAndSwap(0, reason) {
		g.closeSrc()
	}
}

// awaitingContent reports whether the first-event timeout still runs.
func (g *stallGuard) awaitingContent() bool {
	return g.timer != nil && g.firstEvent > 0 && !g.contentSeen.Load()
}

// markContent stops the first-event timeout.
func (g *stallGuard) markContent() { g.contentSeen.Store(true) }

// stop turns the guard off for good (the stream has ended).
func (g *stallGuard) stop() {
	if g.timer != nil {
		g.stopped.Store(true)
		g.timer.Stop()
	}
}

// stalled returns the stall the guard detected, or nil.
func (g *stallGuard) stalled() error {
	switch g.fired.Load() {
	case stallFirstEvent:
		return &stallError{what: "no content event", d: g.firstEvent, after: "of the response headers", option: "WithFirstEventTimeout"}
	case stallIdle:
		return &stallError{what: "no byte", d: g.idle, after: "while the next frame was awaited", option: "WithIdleTimeout"}
	}
	return nil
}

// errStalled is the read error of a body the guard closed; readError
// reports it as the stall.
var errStalled = errors.New("streamstatus: response body closed by a stall timeout")

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
