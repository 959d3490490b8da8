package main

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// This file counts the response bodies a side's clients are handed and
// close, call by call, for the [bodies closed] invariant (DESIGN §5: every
// response body is closed).

// bodySettle is how long a side's run waits, after its last call returned,
// for bodies still being closed (a stream's reader may close its body just
// after the consumer's Close returns).
const bodySettle = time.Second

// bodyTracker is an http.RoundTripper that wraps every response body and
// counts, per call (the x-streamcheck-call header), the bodies opened and
// closed.
type bodyTracker struct {
	base   http.RoundTripper
	opened []atomic.Int32 // opened[n-1]: bodies of call n's attempts
	closed []atomic.Int32
	other  atomic.Int32 // bodies of unnumbered requests, opened minus closed
}

func newBodyTracker(base http.RoundTripper, calls int) *bodyTracker {
	return &bodyTracker{base: base, opened: make([]atomic.Int32, calls), closed: make([]atomic.Int32, calls)}
}

// RoundTrip implements http.RoundTripper.
func (t *bodyTracker) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	var closed func()
	if n, perr := strconv.Atoi(req.Header.Get(callHeader)); perr == nil && n >= 1 && n <= len(t.opened) {
		t.opened[n-1].Add(1)
		closed = func() { t.closed[n-1].Add(1) }
	} else {
		t.other.Add(1)
		closed = func() { t.other.Add(-1) }
	}
	resp.Body = &trackedBody{ReadCloser: resp.Body, closed: closed}
	return resp, nil
}

// unclosed returns how many of call n's response bodies were opened and how
// many of them were never closed.
func (t *bodyTracker) unclosed(n int) (opened, open int) {
	o := int(t.opened[n-1].Load())
	return o, o - int(t.closed[n-1].Load())
}

// settle waits up to d for every body opened to be closed.
func (t *bodyTracker) settle(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		done := t.other.Load() == 0
		for i := range t.opened {
			if t.opened[i].Load() != t.closed[i].Load() {
				done = false
				break
			}
		}
		if done {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// trackedBody counts its first Close.
type trackedBody struct {
	io.ReadCloser
	once   sync.Once
	closed func()
}

func (b *trackedBody) Close() error {
	b.once.Do(b.closed)
	return b.ReadCloser.Close()
}
