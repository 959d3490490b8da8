package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/smithyext"
)

// This file turns the two sides' outcomes into figures, checks the plugin's
// invariants, and prints the table or the JSON document.

// report is the result of a check; -json prints it as is.
type report struct {
	Seed             int64          `json:"seed"`
	Calls            int            `json:"calls"`
	Concurrency      int            `json:"concurrency"`
	EventsPerCall    int            `json:"content_events_per_stream"`
	MaxAttempts      int            `json:"max_attempts"`
	Faults           string         `json:"faults"`
	PlannedFaults    map[string]int `json:"planned_faults"` // rule (or "none") -> calls, first attempts; slow apart
	Bare             sideFigures    `json:"bare"`
	Plugin           sideFigures    `json:"plugin"`
	PluginInvariants invariants     `json:"plugin_invariants"`
}

// invariants says whether the plugin side kept its promises.
type invariants struct {
	Met        bool     `json:"met"`
	Violations []string `json:"violations"`
}

// sideFigures are one side's figures.
type sideFigures struct {
	Name               string         `json:"name"`
	Calls              int            `json:"calls"`
	Completed          int            `json:"completed"`
	Failed             map[string]int `json:"failed"` // by failureKey
	TransparentRetries int            `json:"transparent_retries"`
	ServerCalls        int            `json:"server_calls"`
	EventsDelivered    int            `json:"events_delivered"`
	EventsDuplicated   int            `json:"events_duplicated"`
	EventsMissed       int            `json:"events_missed"`
	FirstEventP50Ms    float64        `json:"first_event_p50_ms"`
	FirstEventP99Ms    float64        `json:"first_event_p99_ms"`
	WallMs             float64        `json:"wall_ms"`
	// Recorded is what the side's clients recorded through their
	// MeterProvider: streamstatus.stream.failures by exception.type and
	// position (plugin side only).
	Recorded map[string]int64 `json:"recorded_failures,omitempty"`
}

// maxViolations bounds the violations listed (the count is always given).
const maxViolations = 25

// buildReport computes the figures of both sides and the plugin's
// invariants.
func buildReport(cfg checkConfig, bare, plugin *sideRun) *report {
	r := &report{
		Seed: cfg.seed, Calls: cfg.calls, Concurrency: cfg.concurrency, EventsPerCall: cfg.events,
		MaxAttempts: maxAttempts, Faults: cfg.spec.String(), PlannedFaults: map[string]int{},
	}
	for n := 1; n <= cfg.calls; n++ {
		p := cfg.spec.choose(cfg.seed, n).forAttempt(opOf(n), 1)
		if p.ending != nil {
			r.PlannedFaults[p.ending.text]++
		} else {
			r.PlannedFaults["none"]++
		}
		for _, s := range p.slows {
			r.PlannedFaults[s.text]++
		}
	}
	r.Bare = figures(cfg, bare)
	r.Plugin = figures(cfg, plugin)
	v := violations(cfg, plugin)
	if v == nil {
		v = []string{} // [] in JSON, not null
	}
	r.PluginInvariants = invariants{Met: len(v) == 0, Violations: v}
	if len(v) > maxViolations {
		r.PluginInvariants.Violations = append(v[:maxViolations:maxViolations], fmt.Sprintf("... and %d more", len(v)-maxViolations))
	}
	return r
}

// figures computes one side's figures.
func figures(cfg checkConfig, s *sideRun) sideFigures {
	f := sideFigures{Name: s.name, Calls: cfg.calls, Failed: map[string]int{}, ServerCalls: s.serverCalls,
		WallMs: ms(s.elapsed), Recorded: s.recorded.snapshot()}
	f.TransparentRetries = s.serverCalls - cfg.calls
	var firsts []time.Duration
	for i, o := range s.outcomes {
		want := healthyStream(opOf(i+1), i+1, cfg.events, checkModel).labels
		dup, missed, _ := compareEvents(o.events, want, o.err == nil)
		f.EventsDelivered += len(o.events)
		f.EventsDuplicated += dup
		f.EventsMissed += missed
		if len(o.events) > 0 {
			firsts = append(firsts, o.firstEvent)
		}
		switch {
		case o.envelope != "":
			f.Failed["no status: "+o.envelope+" envelope as a chunk"]++
		case o.err == nil && missed > 0:
			// The bare SDK ends a truncated stream without an error.
			f.Failed["no status: no error, stream cut short"]++
		case o.err == nil:
			f.Completed++
		default:
			f.Failed[failureKey(o.err)]++
		}
	}
	f.FirstEventP50Ms = ms(percentile(firsts, 0.50))
	f.FirstEventP99Ms = ms(percentile(firsts, 0.99))
	return f
}

// compareEvents compares the events a consumer got with the healthy
// stream's. dup counts events seen twice, missed counts events skipped
// (and, for a complete stream, the ones that never came), unexpected counts
// events that are not in the stream at all.
func compareEvents(got, want []string, complete bool) (dup, missed, unexpected int) {
	pos := make(map[string]int, len(want))
	for i, w := range want {
		pos[w] = i
	}
	seen := map[string]bool{}
	next := 0
	for _, e := range got {
		switch i, ok := pos[e]; {
		case seen[e]:
			dup++
		case !ok:
			unexpected++
		case i >= next:
			missed += i - next
			next = i + 1
		default: // an earlier event, out of order
			missed++
		}
		seen[e] = true
	}
	if complete {
		missed += len(want) - next
	}
	return dup, missed, unexpected
}

// failureKey names a failure by its typed status, e.g. "429
// ThrottlingException", or says it has none.
func failureKey(err error) string {
	r := classify.Classify(err)
	if r.Status != 0 && r.Status != 200 {
		return fmt.Sprintf("%d %s", r.Status, r.Code)
	}
	var se *smithyext.StatusError
	if errors.As(err, &se) {
		return fmt.Sprintf("typed %s: %s", se.Kind, se.ErrorCode())
	}
	if r.Code != "" {
		return "no status: " + r.Code
	}
	return "no status: " + transportSummary(err)
}

// transportSummary shortens an untyped transport error to its cause.
func transportSummary(err error) string {
	msg := err.Error()
	for _, s := range []string{"use of closed network connection", "connection reset by peer", "unexpected EOF",
		"checksum", "crc", "EOF", "context deadline exceeded", "context canceled"} {
		if strings.Contains(msg, s) {
			return s
		}
	}
	if len(msg) > 60 {
		msg = msg[:60] + "..."
	}
	return msg
}

// violations lists the plugin side's broken promises, call by call:
//   - no event is delivered twice, skipped, or out of place;
//   - a call whose fault came before content, was retryable and hit fewer
//     attempts than the retryer allows, completes;
//   - every failure carries a typed status: the HTTP status documented for
//     the fault (never 200), or, for connection faults, a StatusError of
//     kind transport or corrupt frame; a StatusError counts the events the
//     consumer got;
//   - no error envelope is delivered as an ordinary chunk.
func violations(cfg checkConfig, s *sideRun) []string {
	var out []string
	for i, o := range s.outcomes {
		n := i + 1
		op := opOf(n)
		hs := healthyStream(op, n, cfg.events, checkModel)
		p := cfg.spec.choose(cfg.seed, n)
		first := p.forAttempt(op, 1)
		fault := "no fault"
		if first.ending != nil {
			fault = first.ending.text
		}
		where := fmt.Sprintf("call %d (%s, %s; attempts: %s)", n, op, fault, attemptsText(s.attempts[i]))
		bad := func(format string, args ...any) { out = append(out, where+": "+fmt.Sprintf(format, args...)) }

		dup, missed, unexpected := compareEvents(o.events, hs.labels, o.err == nil)
		if dup > 0 {
			bad("%d events delivered twice", dup)
		}
		if missed > 0 || unexpected > 0 {
			bad("events skipped or out of place (%d missed, %d not in the stream)", missed, unexpected)
		}
		if o.envelope != "" {
			bad("an %s envelope was delivered as an ordinary chunk", o.envelope)
		}

		if e := first.ending; e == nil || (!e.kind.http && e.retryable() && e.frame <= hs.nonContent &&
			!coversAllAttempts(p.ending, op)) {
			if o.err != nil {
				bad("should have recovered, failed: %v", o.err)
			}
		}
		if o.err == nil {
			continue
		}
		r := classify.Classify(o.err)
		var se *smithyext.StatusError
		isSE := errors.As(o.err, &se)
		want := 0
		if first.ending != nil {
			want = first.ending.wantStatus()
		}
		switch {
		case r.Status == 200:
			bad("failure reports HTTP 200: %v", o.err)
		case r.Status == 0 && !(isSE && (se.Kind == smithyext.KindTransport || se.Kind == smithyext.KindCorrupt)):
			bad("failure has no typed status: %v", o.err)
		case want != 0 && r.Status != want:
			bad("failure has HTTP %d, want %d: %v", r.Status, want, o.err)
		}
		if isSE && se.Events != len(o.events) {
			bad("StatusError.EventsDelivered() = %d, the consumer got %d events", se.Events, len(o.events))
		}
	}
	return out
}

// coversAllAttempts reports whether a fault is sent on every attempt the
// retryer makes, so not even a retry can get past it.
func coversAllAttempts(r *rule, op string) bool {
	return r != nil && r.appliesTo(op, maxAttempts)
}

// attemptsText renders the faults an endpoint sent to each attempt.
func attemptsText(faults []string) string {
	if len(faults) == 0 {
		return "none arrived"
	}
	parts := make([]string, len(faults))
	for i, f := range faults {
		if f == "" {
			f = "healthy"
		}
		parts[i] = f
	}
	return strings.Join(parts, " | ")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// roundForTable renders milliseconds as a duration with 3 to 5 digits.
func roundForTable(v float64) string {
	d := time.Duration(v * float64(time.Millisecond))
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(10 * time.Microsecond).String()
}

// percentile is the nearest-rank percentile of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s))*p+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

// writeJSON prints the report as one indented JSON document.
func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeTable prints the side-by-side table.
func (r *report) writeTable(w io.Writer) {
	converse := (r.Calls + 1) / 2
	fmt.Fprintf(w, "streamcheck: %d calls per side (%d ConverseStream, %d InvokeModelWithResponseStream), seed %d, %d in flight, %d content events per stream\n",
		r.Calls, converse, r.Calls-converse, r.Seed, r.Concurrency, r.EventsPerCall)
	fmt.Fprintf(w, "endpoint: fake Bedrock Runtime on 127.0.0.1; retryer: standard, %d attempts, %v backoff, no retry quota\n", r.MaxAttempts, retryBackoff)
	fmt.Fprintf(w, "\nfaults on first attempts (a call gets at most one, plus any slow; -faults %q):\n", r.Faults)
	keys := make([]string, 0, len(r.PlannedFaults))
	for k := range r.PlannedFaults {
		keys = append(keys, k)
	}
	order := map[string]int{}
	for i, part := range strings.Split(r.Faults, ",") {
		order[strings.TrimSpace(part)] = i + 1
	}
	sort.Slice(keys, func(i, j int) bool {
		oi, oj := order[keys[i]], order[keys[j]]
		if oi == 0 {
			oi = 1 << 20 // "none" last
		}
		if oj == 0 {
			oj = 1 << 20
		}
		return oi < oj
	})
	for _, k := range keys {
		fmt.Fprintf(w, "  %-48s %5d calls\n", k, r.PlannedFaults[k])
	}

	fmt.Fprintln(w)
	failed := map[string]bool{}
	for k := range r.Bare.Failed {
		failed[k] = true
	}
	for k := range r.Plugin.Failed {
		failed[k] = true
	}
	fkeys := make([]string, 0, len(failed))
	for k := range failed {
		fkeys = append(fkeys, k)
	}
	sort.Strings(fkeys) // typed statuses first (digits sort before letters)
	width := len("time to first event p50")
	for _, k := range fkeys {
		width = max(width, len("failed: "+k))
	}
	row := func(name, a, b string) { fmt.Fprintf(w, "%-*s %14s %14s\n", width, name, a, b) }
	num := func(name string, f func(s sideFigures) int) {
		row(name, fmt.Sprint(f(r.Bare)), fmt.Sprint(f(r.Plugin)))
	}
	dur := func(name string, f func(s sideFigures) float64) {
		row(name, roundForTable(f(r.Bare)), roundForTable(f(r.Plugin)))
	}
	row("", r.Bare.Name, r.Plugin.Name)
	num("calls", func(s sideFigures) int { return s.Calls })
	num("completed", func(s sideFigures) int { return s.Completed })
	for _, k := range fkeys {
		num("failed: "+k, func(s sideFigures) int { return s.Failed[k] })
	}
	num("transparent retries", func(s sideFigures) int { return s.TransparentRetries })
	num("server calls", func(s sideFigures) int { return s.ServerCalls })
	num("events delivered", func(s sideFigures) int { return s.EventsDelivered })
	num("events duplicated", func(s sideFigures) int { return s.EventsDuplicated })
	num("events missed", func(s sideFigures) int { return s.EventsMissed })
	dur("time to first event p50", func(s sideFigures) float64 { return s.FirstEventP50Ms })
	dur("time to first event p99", func(s sideFigures) float64 { return s.FirstEventP99Ms })
	dur("wall time", func(s sideFigures) float64 { return s.WallMs })
	writeRecorded(w, r.Plugin.Recorded)

	fmt.Fprintln(w)
	if r.PluginInvariants.Met {
		fmt.Fprintln(w, "streamstatus met its invariants: every retryable fault before content was recovered, no event was delivered twice or missed, every failure carries a typed status.")
		return
	}
	fmt.Fprintln(w, "streamstatus FAILED its invariants:")
	for _, v := range r.PluginInvariants.Violations {
		fmt.Fprintln(w, "  -", v)
	}
}
