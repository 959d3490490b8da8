package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progress is the one-line progress report of a check, rewritten in place
// with \r on stderr. It is silent unless enabled (stderr is a terminal, or
// -progress), so logs and pipes get no control characters.
type progress struct {
	w  io.Writer
	on bool

	mu           sync.Mutex
	label        string
	done, failed int
	total        int
	width        int // of the last line written, to blank it
	stop         chan struct{}
	wg           sync.WaitGroup
}

// progressInterval is how often the line is rewritten.
const progressInterval = 100 * time.Millisecond

func newProgress(w io.Writer, on bool) *progress { return &progress{w: w, on: on} }

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// start begins reporting a side of total calls.
func (p *progress) start(label string, total int) {
	if !p.on {
		return
	}
	p.mu.Lock()
	p.label, p.total, p.done, p.failed = label, total, 0, 0
	p.mu.Unlock()
	p.stop = make(chan struct{})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			p.draw()
			select {
			case <-t.C:
			case <-p.stop:
				return
			}
		}
	}()
}

// add counts one finished call.
func (p *progress) add(failed bool) {
	if !p.on {
		return
	}
	p.mu.Lock()
	p.done++
	if failed {
		p.failed++
	}
	p.mu.Unlock()
}

// finish stops reporting and blanks the line.
func (p *progress) finish() {
	if !p.on || p.stop == nil {
		return
	}
	close(p.stop)
	p.wg.Wait()
	p.stop = nil
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
	p.width = 0
}

func (p *progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := fmt.Sprintf("streamcheck: %-13s %d/%d calls, %d failed", p.label, p.done, p.total, p.failed)
	pad := max(0, p.width-len(line))
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
	p.width = len(line)
}
