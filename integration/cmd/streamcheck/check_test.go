package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/streamstatus/streamstatus/smithyext"
)

// runJSON runs the check with -json and decodes the result.
func runJSON(t *testing.T, args ...string) (int, *report, string) {
	t.Helper()
	code, stdout, stderr := runCmd(t, append([]string{"-json"}, args...)...)
	var r report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("exit %d; stdout is not the JSON result (%v):\n%s\nstderr:\n%s", code, err, stdout, stderr)
	}
	return code, &r, stderr
}

func TestDefaultRunShowsTheDifference(t *testing.T) {
	code, r, stderr := runJSON(t, "-calls", "40")
	if code != exitOK {
		t.Fatalf("exit %d, want 0; violations: %q; stderr: %s", code, r.PluginInvariants.Violations, stderr)
	}
	if !r.PluginInvariants.Met || len(r.PluginInvariants.Violations) != 0 {
		t.Errorf("plugin invariants: %+v", r.PluginInvariants)
	}
	if r.Faults != defaultFaults || r.Calls != 40 || r.Bare.Calls != 40 || r.Plugin.Calls != 40 {
		t.Errorf("header: faults %q, calls %d/%d/%d", r.Faults, r.Calls, r.Bare.Calls, r.Plugin.Calls)
	}
	p, b := r.Plugin, r.Bare
	if p.EventsDuplicated != 0 || p.EventsMissed != 0 {
		t.Errorf("plugin: %d events duplicated, %d missed; want 0", p.EventsDuplicated, p.EventsMissed)
	}
	if p.Completed <= b.Completed {
		t.Errorf("plugin completed %d, bare completed %d: the plugin should recover what the bare SDK does not", p.Completed, b.Completed)
	}
	if p.TransparentRetries <= 0 || p.ServerCalls != p.Calls+p.TransparentRetries {
		t.Errorf("plugin: %d transparent retries, %d server calls", p.TransparentRetries, p.ServerCalls)
	}
	if b.TransparentRetries != 0 {
		t.Errorf("bare SDK retried %d times: in-stream faults are invisible to its retryer", b.TransparentRetries)
	}
	failures := func(f map[string]int) (n int) {
		for _, c := range f {
			n += c
		}
		return n
	}
	if got := failures(b.Failed); got != b.Calls-b.Completed || got == 0 {
		t.Errorf("bare: %d failures by status, %d calls not completed", got, b.Calls-b.Completed)
	}
	for k := range p.Failed {
		if strings.HasPrefix(k, "no status") {
			t.Errorf("plugin failure %q has no typed status", k)
		}
	}
	for k := range b.Failed {
		if !strings.HasPrefix(k, "no status") {
			t.Errorf("bare failure %q has a typed status; the bare SDK has none for in-stream faults", k)
		}
	}
	if p.FirstEventP50Ms <= 0 || p.FirstEventP99Ms < p.FirstEventP50Ms {
		t.Errorf("plugin time to first event p50 %v ms, p99 %v ms", p.FirstEventP50Ms, p.FirstEventP99Ms)
	}
	planned := 0
	for k, n := range r.PlannedFaults {
		if !strings.HasPrefix(k, "slow") {
			planned += n
		}
	}
	if planned != r.Calls {
		t.Errorf("planned faults (slow aside) cover %d calls, want %d: %v", planned, r.Calls, r.PlannedFaults)
	}
	if stderr != "" {
		t.Errorf("stderr %q: want nothing (no progress line when stderr is not a terminal)", stderr)
	}
}

func TestTable(t *testing.T) {
	code, stdout, _ := runCmd(t, "-calls", "12", "-seed", "3")
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, stdout)
	}
	for _, row := range []string{"bare SDK", "streamstatus", "\ncalls ", "\ncompleted ", "\ntransparent retries ",
		"\nserver calls ", "\nevents delivered ", "\nevents duplicated ", "\ntime to first event p50 ",
		"\ntime to first event p99 ", "faults on first attempts", "streamstatus met its invariants"} {
		if !strings.Contains(stdout, row) {
			t.Errorf("table lacks %q:\n%s", row, stdout)
		}
	}
}

// TestEveryFaultKeepsInvariants runs every kind of fault, persistent and
// not retryable ones included, and checks the plugin's failures are the
// typed ones the faults call for.
func TestEveryFaultKeepsInvariants(t *testing.T) {
	spec := "throttling@0:p=0.1:attempts=all, validation@1:p=0.1, corrupt@3:p=0.1, cut@1:p=0.1, cut@9:p=0.05, " +
		"error@1:p=0.1, modelTimeout@6:p=0.1, http429:p=0.05, http500:p=0.05:attempts=all, " +
		"anthropicError@4:p=0.1:op=invoke:type=api_error, modelStreamError@2:p=0.05:attempts=2, slow@2:p=0.2:for=2ms"
	code, r, _ := runJSON(t, "-calls", "80", "-events", "6", "-seed", "11", "-faults", spec)
	if code != exitOK || !r.PluginInvariants.Met {
		t.Fatalf("exit %d; violations:\n%s", code, strings.Join(r.PluginInvariants.Violations, "\n"))
	}
	for _, want := range []string{"429 ThrottlingException", "400 ValidationException", "typed corrupt frame: CorruptFrame", "500 InternalServerException"} {
		if r.Plugin.Failed[want] == 0 {
			t.Errorf("plugin failures %v lack %q", r.Plugin.Failed, want)
		}
	}
	if r.Plugin.EventsDuplicated != 0 || r.Plugin.EventsMissed != 0 {
		t.Errorf("plugin: %d duplicated, %d missed", r.Plugin.EventsDuplicated, r.Plugin.EventsMissed)
	}
}

// outcomeOf is the outcome of a consumer that got events, then err.
func outcomeOf(want, events []string, err error) outcome {
	o := outcome{tally: newTally(want), err: err}
	for _, e := range events {
		o.add(e)
	}
	o.done()
	return o
}

// TestViolationsAreDetected feeds made-up outcomes to the invariant check,
// so a passing check means something.
func TestViolationsAreDetected(t *testing.T) {
	cfg := checkConfig{calls: 6, events: 3, seed: 1, spec: mustSpec(t, "serviceUnavailable@3:call=5, validation@0:call=6")}
	labels := func(n int) []string { return streamLabels(opOf(n), n, cfg.events, checkModel) }
	dup := append(labels(1)[:2:2], labels(1)[1:]...)
	o4 := outcomeOf(labels(4), labels(4), nil)
	o4.envelope = "overloaded_error"
	s := &sideRun{name: pluginSide, plugin: true, attempts: [][]string{{""}, {""}, {""}, {""}, {"x"}, {"x", "x", ""}}, outcomes: []outcome{
		outcomeOf(labels(1), dup, nil), // call 1: an event twice
		outcomeOf(labels(2), labels(2)[:3], errors.New("read tcp: connection reset by peer")), // call 2: healthy, failed untyped
		outcomeOf(labels(3), append(labels(3)[:1:1], labels(3)[2:]...), nil),                  // call 3: an event skipped
		o4, // call 4: envelope delivered
		outcomeOf(labels(5), labels(5)[:2], &smithyext.StatusError{Kind: smithyext.KindException, Code: "ServiceUnavailableException", Status: 200, Events: 1}),
		outcomeOf(labels(6), labels(6), nil), // call 6: a validation error retried until it went away
	}, requestIDs: make([]string, 6), bodies: newBodyTracker(nil, 6)}
	got := strings.Join(violations(cfg, s, s), "\n")
	for _, want := range []string{
		"call 1 (ConverseStream, no fault; attempts: healthy): [events] 1 events delivered twice",
		"call 2 (InvokeModelWithResponseStream, no fault; attempts: healthy): [no failure] should have completed",
		"call 3 (ConverseStream, no fault; attempts: healthy): [events] completed with 1 of 7 events in order (1 skipped",
		"call 4 (InvokeModelWithResponseStream, no fault; attempts: healthy): [no envelope] an overloaded_error envelope was delivered",
		"call 5 (ConverseStream, serviceUnavailable@3:call=5; attempts: x): [typed status] failure reports HTTP 200",
		"call 5 (ConverseStream, serviceUnavailable@3:call=5; attempts: x): [events] the consumer got 2 events (2 of them the stream's first, in order); want exactly the 3 before the fault",
		"call 5 (ConverseStream, serviceUnavailable@3:call=5; attempts: x): [events delivered] StatusError.EventsDelivered() = 1, the consumer got 2 events",
		"call 6 (InvokeModelWithResponseStream, validation@0:call=6; attempts: x | x | healthy): [server calls] 3 server calls, want 1 (not retryable",
		"call 6 (InvokeModelWithResponseStream, validation@0:call=6; attempts: x | x | healthy): [typed status] ended without an error; want HTTP 400, not retryable",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("violations lack\n  %s\ngot:\n%s", want, got)
		}
	}
}

func TestCompareEvents(t *testing.T) {
	want := []string{"a", "b", "c", "d"}
	cases := []struct {
		got                     []string
		complete                bool
		dup, missed, unexpected int
	}{
		{[]string{"a", "b", "c", "d"}, true, 0, 0, 0},
		{[]string{"a", "b"}, false, 0, 0, 0},
		{[]string{"a", "b"}, true, 0, 2, 0},
		{[]string{"a", "a", "b", "c", "d"}, true, 1, 0, 0},
		{[]string{"a", "c", "d"}, true, 0, 1, 0},
		{[]string{"a", "x", "b", "c", "d"}, true, 0, 0, 1},
		{[]string{"b", "a", "c", "d"}, true, 0, 2, 0},
	}
	for _, c := range cases {
		dup, missed, unexpected := compareEvents(c.got, want, c.complete)
		if dup != c.dup || missed != c.missed || unexpected != c.unexpected {
			t.Errorf("compareEvents(%q, complete %v) = %d dup, %d missed, %d unexpected; want %d, %d, %d",
				c.got, c.complete, dup, missed, unexpected, c.dup, c.missed, c.unexpected)
		}
	}
}

func TestProgressLine(t *testing.T) {
	code, _, stderr := runCmd(t, "-calls", "6", "-faults", "none", "-progress")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, side := range []string{bareSide, pluginSide} {
		if !strings.Contains(stderr, fmt.Sprintf("\rstreamcheck: %-13s", side)) {
			t.Errorf("no progress line for %s in %q", side, stderr)
		}
	}
	if strings.Contains(stderr, "\n") || !strings.HasSuffix(stderr, "\r") {
		t.Errorf("progress %q: want one line rewritten with \\r and blanked at the end", stderr)
	}
}
