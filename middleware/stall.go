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
// Cost on the hot path: two atomic additions per read of the body (a
// sequence number whose odd values mean "a read is waiting"), no clock, no
// timer call, no allocation. One timer per stream does the rest: it fires
// at the first-event deadline, and every quarter of the idle timeout, where
// it fires the stall when the same read has been waiting through a whole
// idle timeout. So an idle stall is reported between 1 and 1.25 idle
// timeouts after the last byte, the first-event stall on time; time the
// consumer spends on an event, with no read waiting, never counts.
//
// Read runs on one goroutine at a time (the read-ahead, then the SDK's
// reader); the timer's function runs on its own and touches only atomics,
// its own fields and the body's close.
type stallGuard struct {
	src      io.Reader
	closeSrc func()
	timer    *time.Timer // nil: the guard is off

	firstEvent, idle time.Duration
	base             time.Time // the response headers' arrival

	reads       atomic.Uint64 // incremented before and after each read: odd while one waits
	contentSeen atomic.Bool   // the first content event arrived
	fired       atomic.Uint32 // the stallReason that fired, 0 for none
	stopped     atomic.Bool

	// Owned by the timer's function.
	lastRead     uint64 // the waiting read seen at the previous tick
	waitedTicks  int    // ticks the same read has been seen waiting
	ticksPerIdle int
}

type stallReason = uint32

const (
	stallFirstEvent stallReason = iota + 1
	stallIdle
)

// idleTicks is how many timer ticks make one idle timeout.
const idleTicks = 4

// start turns the guard on for a stream whose headers just arrived.
func (g *stallGuard) start(src io.Reader, closeSrc func(), firstEvent, idle time.Duration) {
	g.src, g.closeSrc, g.firstEvent, g.idle = src, closeSrc, firstEvent, idle
	g.base = time.Now()
	g.timer = time.AfterFunc(g.nextTick(0), g.tick)
}

// Read reads from the body, marked as waiting.
func (g *stallGuard) Read(p []byte) (int, error) {
	g.reads.Add(1)
	n, err := g.src.Read(p)
	g.reads.Add(1)
	if err != nil && g.fired.Load() != 0 {
		err = errStalled // even a clean io.EOF: the body was cut by the guard
	}
	return n, err
}

// tick runs on the timer.
func (g *stallGuard) tick() {
	if g.stopped.Load() || g.fired.Load() != 0 {
		return
	}
	elapsed := time.Since(g.base)
	if g.firstEvent > 0 && elapsed >= g.firstEvent && !g.contentSeen.Load() {
		g.fire(stallFirstEvent)
		return
	}
	if g.idle > 0 {
		// The same read waiting at this tick and at the previous ones has
		// waited at least (ticks-1) tick periods.
		switch r := g.reads.Load(); {
		case r&1 == 0:
			g.waitedTicks = 0
		case r == g.lastRead:
			g.waitedTicks++
			if g.waitedTicks > idleTicks {
				g.fire(stallIdle)
				return
			}
		default:
			g.lastRead, g.waitedTicks = r, 1
		}
	}
	if next := g.nextTick(elapsed); next > 0 {
		g.timer.Reset(next)
	}
}

// nextTick is the time from elapsed to the next tick, 0 for none.
func (g *stallGuard) nextTick(elapsed time.Duration) time.Duration {
	var next time.Duration
	if g.idle > 0 {
		next = max(g.idle/idleTicks, time.Millisecond)
	}
	if g.firstEvent > 0 && !g.contentSeen.Load() {
		if left := g.firstEvent - elapsed; next == 0 || left < next {
			next = max(left, 1)
		}
	}
	return next
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
