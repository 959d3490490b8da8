package main

import (
	"strings"
	"testing"
	"time"
)

// TestParserStrictness: each of these was accepted before (and meant
// something else, or nothing).
func TestParserStrictness(t *testing.T) {
	for spec, want := range map[string]string{
		"throttling:":                `a ":" with no option after it`,
		"slowException":              `unknown fault "slowException"`,
		"http0429":                   "not an error status",
		"throttling@+3":              `frame "+3"`,
		"throttling:call=+2":         "want a call number",
		"throttling:attempts=+1":     "want a number of attempts",
		"throttling:p=+0.5":          "want a share of calls",
		"throttling:p=1e-1":          "want a share of calls",
		"modelStreamError:orig=+429": "want an HTTP status",
	} {
		if _, err := parseSpec(spec); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseSpec(%q) = %v, want an error with %q", spec, err, want)
		}
	}
	for _, ok := range []string{"throttlingException@2", "validationexception", "http429", "throttling@3:p=0.5"} {
		if _, err := parseSpec(ok); err != nil {
			t.Errorf("parseSpec(%q): %v", ok, err)
		}
	}
}

// TestRulesThatNeverFireAreRejected: in the check call n is always opOf(n).
func TestRulesThatNeverFireAreRejected(t *testing.T) {
	for _, c := range []struct{ faults, want string }{
		{"throttling:call=2:op=converse", "call 2 is InvokeModelWithResponseStream in the check"},
		{"anthropicError:call=3", "call 3 is ConverseStream in the check"},
		{"throttling:call=50", "call=50 never fires: the check makes 40 calls"},
	} {
		code, _, stderr := runCmd(t, "-calls", "40", "-faults", c.faults)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("-faults %s: exit %d, stderr %q; want 2 and %q", c.faults, code, stderr, c.want)
		}
	}
}

// TestEveryRowIsDefined: each row the table prints has a definition under
// the table and in -h, and the latency rows say which calls they cover.
func TestEveryRowIsDefined(t *testing.T) {
	for _, args := range [][]string{
		{"-calls", "12", "-seed", "3", "-faults", "throttling@0:p=0.3, reset@0:p=0.2, http400:p=0.2"},
		// Stalls: recovered before content, typed after it (failed: typed transport: StreamStalled).
		{"-calls", "6", "-faults", "slow@0:p=0.5:for=400ms, slow@3:p=0.5:for=400ms", "-first-event-timeout", "100ms", "-idle-timeout", "100ms"},
	} {
		checkRowsDefined(t, args)
	}
}

// checkRowsDefined runs the check with args and checks each row of its
// table is defined under the table and in -h.
func checkRowsDefined(t *testing.T, args []string) {
	t.Helper()
	code, table, _ := runCmd(t, args...)
	if code != exitOK {
		t.Fatalf("%q: exit %d:\n%s", args, code, table)
	}
	if len(args) > 6 && !strings.Contains(table, "failed: typed transport: StreamStalled") {
		t.Errorf("%q: no stall row:\n%s", args, table)
	}
	_, help, _ := runCmd(t, "-h")
	head, legend, ok := strings.Cut(table, "\nrows:\n")
	if !ok {
		t.Fatalf("no rows legend:\n%s", table)
	}
	body := head[strings.Index(head, "bare SDK"):]
	for _, line := range strings.Split(body, "\n")[1:] {
		name := strings.TrimSpace(strings.SplitN(line, "  ", 2)[0])
		if name == "" || strings.HasPrefix(name, "(") {
			continue
		}
		def := name
		if strings.HasPrefix(name, "recorded: ") {
			def = "recorded: CODE POSITION"
		}
		if rest, ok := strings.CutPrefix(name, "failed: "); ok {
			switch {
			case strings.HasPrefix(rest, "no status:"):
				def = "failed: no status: CAUSE"
			case strings.HasPrefix(rest, "typed "):
				def = "failed: typed KIND: CODE"
			case rest[0] >= '0' && rest[0] <= '9':
				def = "failed: STATUS CODE"
			}
		}
		if !strings.Contains(legend, "  "+def+" ") || !strings.Contains(help, "  "+def+" ") {
			t.Errorf("row %q (%q) is not defined under the table and in -h", name, def)
		}
	}
	if !strings.Contains(table, "time to first event over the") || !strings.Contains(table, "calls with an event on both sides") {
		t.Errorf("the latency rows do not say which calls they cover:\n%s", table)
	}
	if !strings.Contains(help, "[server calls]") || !strings.Contains(help, "[typed status]") {
		t.Errorf("-h does not define the invariants")
	}
}

// TestCallTimeoutIsSizedFromThePlan: the tool's timeout grows with the
// planned pauses and with events × concurrency.
func TestCallTimeoutIsSizedFromThePlan(t *testing.T) {
	base := checkConfig{calls: 1, concurrency: 1, events: 20, spec: mustSpec(t, "none")}
	slow := base
	slow.spec = mustSpec(t, "slow@0:for=31s:attempts=all")
	big := base
	big.events, big.concurrency = 10000, 256
	if d := callTimeout(slow, 1) - callTimeout(base, 1); d != 3*31*time.Second {
		t.Errorf("a 31s pause on 3 attempts adds %v, want 1m33s", d)
	}
	if d := callTimeout(big, 1); d < 5*time.Minute {
		t.Errorf("10000 events × 256 in flight: timeout %v, want minutes", d)
	}
}

// TestToolTimeoutsAreReportedApart: a call that hits streamcheck's own
// timeout is not a library violation; the run says so and exits 3.
func TestToolTimeoutsAreReportedApart(t *testing.T) {
	cfg := checkConfig{calls: 2, events: 3, seed: 1, spec: mustSpec(t, "none")}
	labels := streamLabels(opOf(1), 1, 3, checkModel)
	timedOut := outcomeOf(labels, labels[:1], errTestDeadline)
	timedOut.toolTimeout = true
	ok := outcomeOf(labels, labels, nil)
	s := &sideRun{name: pluginSide, attempts: [][]string{{""}, {""}}, outcomes: []outcome{timedOut, outcomeOf(streamLabels(opOf(2), 2, 3, checkModel), streamLabels(opOf(2), 2, 3, checkModel), nil)},
		requestIDs: make([]string, 2), bodies: newBodyTracker(nil, 2)}
	_ = ok
	r := buildReport(cfg, s, s)
	if !r.PluginInvariants.Met || r.ToolTimeouts.Plugin != 1 || !strings.Contains(r.ToolTimeouts.Explanation, "not counted as violations") {
		t.Fatalf("report: %+v %+v", r.PluginInvariants, r.ToolTimeouts)
	}
	var b strings.Builder
	r.writeTable(&b)
	if !strings.Contains(b.String(), "INCONCLUSIVE: streamcheck's own per-call timeout") || !strings.Contains(b.String(), "failed: "+toolTimeoutKey) {
		t.Errorf("table:\n%s", b.String())
	}
}

var errTestDeadline = &timeoutErr{}

type timeoutErr struct{}

func (*timeoutErr) Error() string { return "context deadline exceeded" }

// TestToolTimeoutOnOneSide: a streamstatus call that hits streamcheck's own
// timeout while the bare SDK finished it is a [hang] violation; a call that
// hits it on the bare side only leaves the streamstatus side fully checked
// (no INCONCLUSIVE, exit 0).
func TestToolTimeoutOnOneSide(t *testing.T) {
	cfg := checkConfig{calls: 1, events: 3, seed: 1, spec: mustSpec(t, "none")}
	labels := streamLabels(opOf(1), 1, 3, checkModel)
	timedOut := outcomeOf(labels, labels[:1], errTestDeadline)
	timedOut.toolTimeout = true
	side := func(o outcome) *sideRun {
		return &sideRun{name: pluginSide, attempts: [][]string{{""}}, outcomes: []outcome{o},
			requestIDs: make([]string, 1), bodies: newBodyTracker(nil, 1)}
	}
	done := side(outcomeOf(labels, labels, nil))

	r := buildReport(cfg, done, side(timedOut))
	if r.PluginInvariants.Met || !strings.Contains(strings.Join(r.PluginInvariants.Violations, "\n"), "[hang]") || r.ToolTimeouts.Both != 0 {
		t.Errorf("plugin-only timeout: %+v %+v, want a [hang] violation", r.PluginInvariants, r.ToolTimeouts)
	}

	r = buildReport(cfg, side(timedOut), done)
	var b strings.Builder
	r.writeTable(&b)
	if !r.PluginInvariants.Met || r.ToolTimeouts.Both != 0 || strings.Contains(b.String(), "INCONCLUSIVE") ||
		!strings.Contains(r.ToolTimeouts.Explanation, "fully checked") {
		t.Errorf("bare-only timeout: %+v %+v, want met and fully checked:\n%s", r.PluginInvariants, r.ToolTimeouts, b.String())
	}
}
