package middleware

import (
	"errors"
	"fmt"
	"io"
	"sync"
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
// Cost on the hot path: two atomic additions and one atomic load per read
// of the body (a sequence number whose odd values mean "a read is
// waiting"), no clock, no timer call, no allocation. Until the first content
// event, each read also takes a mutex and reads the clock twice, to add the
// time it waited to the first-event clock. One timer per stream does the
// rest. The first-event clock counts only the time reads wait before the
// first content event, from the read-ahead's first read on (microseconds
// after the response headers): when the read-ahead hands the stream over
// early (ReadAheadLimit) and the consumer is busy with the events it got,
// no read waits and the clock stands still. The timer fires when that
// waiting time reaches the first-event timeout (late by up to a quarter of
// it when the last of it is spent across a pause of the consumer), and
// every quarter of the idle timeout, where it fires the stall when the
// same read has been waiting through a whole idle timeout.
// So an idle stall is reported between 1 and 1.25 idle timeouts after the
// last byte; time the consumer spends on an event, with no read waiting,
// never counts for either timeout.
//
// The first content event is taken (markContent) and a stall is fired
// (fire) under one atomic state: once the first content event is taken, the
// first-event timeout can no longer fire, and once a stall has fired, no
// content event is taken: the attempt fails before content, so the retryer
// runs it again, rather than delivering one event and failing after it.
//
// Read runs on one goroutine at a time (the SDK's reader, whose first read
// runs the read-ahead; or the caller, running the read-ahead under the
// body's mutex when the installation is busy or another middleware took
// the body's place); the timer's function runs on its own and touches
// only atomics, the mutex-guarded wait times, its own fields and the
// body's close.
type stallGuard struct {
	src      io.Reader
	closeSrc func()
	timer    *time.Timer // nil: the guard is off

	firstEvent, idle time.Duration

	reads   atomic.Uint64 // incremented before and after each read: odd while one waits
	state   atomic.Uint32 // the stallReason that fired, 0 for none; | contentTaken
	stopped atomic.Bool

	// The first-event clock: the time reads waited before the first
	// content event. Only while the first-event timeout runs.
	mu           sync.Mutex
	waited       time.Duration // by the reads that returned
	waitingSince time.Time     // the start of the read waiting now; zero if none

	// Owned by the timer's function.
	lastRead    uint64 // the waiting read seen at the previous tick
	waitedTicks int    // ticks the same read has been seen waiting
}

type stallReason = uint32

const (
	stallFirstEvent stallReason = iota + 1
	stallIdle

	stallMask    = 0x0f
	contentTaken = 0x10 // in state: the first content event was taken
)

// idleTicks is how many timer ticks make one idle timeout.
const idleTicks = 4

// start turns the guard on for a stream whose headers just arrived.
func (g *stallGuard) start(src io.Reader, closeSrc func(), firstEvent, idle time.Duration) {
	g.src, g.closeSrc, g.firstEvent, g.idle = src, closeSrc, firstEvent, idle
	g.timer = time.AfterFunc(g.nextTick(0, false), g.tick)
}

// Read reads from the body, marked as waiting.
func (g *stallGuard) Read(p []byte) (int, error) {
	if g.firstEvent > 0 && g.state.Load()&contentTaken == 0 {
		return g.readBeforeContent(p)
	}
	g.reads.Add(1)
	n, err := g.src.Read(p)
	g.reads.Add(1)
	if err != nil && g.state.Load()&stallMask != 0 {
		err = errStalled // even a clean io.EOF: the body was cut by the guard
	}
	return n, err
}

// readBeforeContent is Read while the first-event clock runs: the time the
// read waits counts.
func (g *stallGuard) readBeforeContent(p []byte) (int, error) {
	g.mu.Lock()
	g.waitingSince = time.Now()
	g.mu.Unlock()
	g.reads.Add(1)
	n, err := g.src.Read(p)
	g.reads.Add(1)
	g.mu.Lock()
	g.waited += time.Since(g.waitingSince)
	g.waitingSince = time.Time{}
	g.mu.Unlock()
	if err != nil && g.state.Load()&stallMask != 0 {
		err = errStalled
	}
	return n, err
}

// firstEventWait returns the time reads waited before the first content
// event, and whether one waits now.
func (g *stallGuard) firstEventWait() (time.Duration, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.waitingSince.IsZero() {
		return g.waited, false
	}
	return g.waited + time.Since(g.waitingSince), true
}

// tick runs on the timer.
func (g *stallGuard) tick() {
	if g.stopped.Load() || g.state.Load()&stallMask != 0 {
		return
	}
	var waited time.Duration
	var waiting bool
	if g.firstEvent > 0 && g.state.Load()&contentTaken == 0 {
		waited, waiting = g.firstEventWait()
		if waiting && waited >= g.firstEvent {
			g.fire(stallFirstEvent)
			return
		}
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
	if next := g.nextTick(waited, waiting); next > 0 {
		g.timer.Reset(next)
	}
}

// nextTick is the time to the next tick, 0 for none, given the time reads
// waited for the first content event and whether one waits now.
func (g *stallGuard) nextTick(waited time.Duration, waiting bool) time.Duration {
	var next time.Duration
	if g.idle > 0 {
		next = max(g.idle/idleTicks, time.Millisecond)
	}
	if g.firstEvent > 0 && g.state.Load()&contentTaken == 0 {
		left := g.firstEvent - waited
		if !waiting {
			// The clock stands still until a read waits: look again
			// after what is left, but not in a busy loop.
			left = max(left, g.firstEvent/idleTicks)
		}
		if next == 0 || left < next {
			next = max(left, 1)
		}
	}
	return next
}

// fire records the stall and closes the body, ending a blocked read. A
// first-event stall does not fire once the first content event was taken.
func (g *stallGuard) fire(reason stallReason) {
	for {
		s := g.state.Load()
		if s&stallMask != 0 || (reason == stallFirstEvent && s&contentTaken != 0) {
			return
		}
		if g.state.CompareAndSwap(s, s|reason) {
			g.closeSrc()
			return
		}
	}
}

// awaitingContent reports whether the guard is on and the first content
// event was not taken yet.
func (g *stallGuard) awaitingContent() bool {
	return g.timer != nil && g.state.Load()&contentTaken == 0
}

// markContent takes the first content event: it stops the first-event
// timeout, and reports whether the event may be delivered. It reports
// false when a stall fired before: the guard closed the body while the
// read completing the event returned, and the attempt must fail as that
// stall, before content.
func (g *stallGuard) markContent() bool {
	for {
		s := g.state.Load()
		switch {
		case s&contentTaken != 0:
			return true
		case s&stallMask != 0:
			return false
		case g.state.CompareAndSwap(s, s|contentTaken):
			return true
		}
	}
}

// stop turns the guard off for good (the stream has ended).
func (g *stallGuard) stop() {
	if g.timer != nil {
		g.stopped.Store(true)
		g.timer.Stop()
	}
}

// stalled returns the stall the guard detected, or nil.
func (g *stallGuard) stalled() error {
	switch g.state.Load() & stallMask {
	case stallFirstEvent:
		return &stallError{what: "no content event", d: g.firstEvent, after: "of waiting for bytes since the response headers", option: "WithFirstEventTimeout"}
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
