package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/streamstatus/streamstatus/middleware"
	"github.com/streamstatus/streamstatus/smithyext"
)

// These tests cover -first-event-timeout and -idle-timeout: slow pauses
// the streamstatus side cuts as stalls, retried before content and typed
// after it, while the bare SDK waits them out.

const stalledKey = "typed transport: StreamStalled"

// TestStallBeforeContentIsRetried: a 2 s pause before the first frame on
// every call's first attempt, and a 200 ms first-event timeout. The plugin
// cuts each pause, retries once, and completes every call; it does not wait
// the pauses out (its wall time stays under one pause, where the bare SDK,
// 4 calls in flight, takes two pauses).
func TestStallBeforeContentIsRetried(t *testing.T) {
	const pause = 2 * time.Second
	code, r, stderr := runJSON(t, "-calls", "8", "-concurrency", "4", "-faults", "slow@0:p=1:for=2s", "-first-event-timeout", "200ms")
	if code != exitOK || !r.PluginInvariants.Met {
		t.Fatalf("exit %d; violations:\n%s\nstderr: %s", code, strings.Join(r.PluginInvariants.Violations, "\n"), stderr)
	}
	p, b := r.Plugin, r.Bare
	// Every event of every call: the [events] invariant pins each call's
	// count; the bare side is no reference, it may lose a stream to the
	// request-body race.
	if p.Completed != 8 || p.TransparentRetries != 8 || p.ServerCalls != 16 || p.EventsMissed != 0 || p.EventsDelivered == 0 {
		t.Errorf("plugin: %d completed, %d transparent retries, %d server calls, %d events, %d missed; want 8, 8, 16, all, 0",
			p.Completed, p.TransparentRetries, p.ServerCalls, p.EventsDelivered, p.EventsMissed)
	}
	if got := p.Recorded["StreamStalled before_content"]; got != 8 {
		t.Errorf("plugin recorded %d StreamStalled before_content, want 8: %v", got, p.Recorded)
	}
	// The bare side waits every pause out. It may still lose a stream to
	// the SDK's request-body race (DESIGN §3), so its completions are not
	// pinned, only that it neither retried nor cut the pauses.
	if b.TransparentRetries != 0 || b.WallMs < ms(2*pause) {
		t.Errorf("bare SDK: %d completed, %d retries, wall %v ms; want 0 retries and at least two pauses", b.Completed, b.TransparentRetries, b.WallMs)
	}
	if p.WallMs >= ms(pause) {
		t.Errorf("plugin wall time %v ms: it waited a %v pause out instead of cutting it at 200ms", p.WallMs, pause)
	}
	if r.FirstEventTimeoutMs != 200 || r.IdleTimeoutMs != 0 {
		t.Errorf("report timeouts: first event %v ms, idle %v ms; want 200, 0", r.FirstEventTimeoutMs, r.IdleTimeoutMs)
	}
}

// TestStallOnEveryAttemptFails: a pause on every attempt is cut every time;
// the call fails after maxAttempts server calls with a retryable stall.
func TestStallOnEveryAttemptFails(t *testing.T) {
	code, r, _ := runJSON(t, "-calls", "4", "-concurrency", "4", "-faults", "slow@0:p=1:for=700ms:attempts=all", "-first-event-timeout", "150ms")
	if code != exitOK || !r.PluginInvariants.Met {
		t.Fatalf("exit %d; violations:\n%s", code, strings.Join(r.PluginInvariants.Violations, "\n"))
	}
	if p := r.Plugin; p.Failed[stalledKey] != 4 || p.ServerCalls != 4*maxAttempts || p.EventsDelivered != 0 {
		t.Errorf("plugin: failures %v, %d server calls, %d events; want 4 %q, %d, 0", p.Failed, p.ServerCalls, p.EventsDelivered, stalledKey, 4*maxAttempts)
	}
	if r.Bare.TransparentRetries != 0 || r.Bare.WallMs < ms(700*time.Millisecond) {
		t.Errorf("bare SDK: %d retries, wall %v ms: it has no timeout and waits the pause out", r.Bare.TransparentRetries, r.Bare.WallMs)
	}
}

// TestStallAfterContentIsTyped: a pause after 5 frames longer than the
// idle timeout ends the stream with the typed stall and exactly those 5
// events, after one server call; a shorter pause is left alone.
func TestStallAfterContentIsTyped(t *testing.T) {
	code, r, _ := runJSON(t, "-calls", "4", "-concurrency", "4", "-faults", "slow@5:p=1:for=1s", "-idle-timeout", "150ms")
	if code != exitOK || !r.PluginInvariants.Met {
		t.Fatalf("exit %d; violations:\n%s", code, strings.Join(r.PluginInvariants.Violations, "\n"))
	}
	if p := r.Plugin; p.Failed[stalledKey] != 4 || p.ServerCalls != 4 || p.EventsDelivered != 4*5 || p.Recorded["StreamStalled after_content"] != 4 {
		t.Errorf("plugin: failures %v, %d server calls, %d events, recorded %v; want 4 %q, 4, 20, 4 after_content",
			p.Failed, p.ServerCalls, p.EventsDelivered, p.Recorded, stalledKey)
	}

	code, r, _ = runJSON(t, "-calls", "4", "-concurrency", "4", "-faults", "slow@5:p=1:for=100ms", "-idle-timeout", "400ms", "-first-event-timeout", "1s")
	if code != exitOK || !r.PluginInvariants.Met {
		t.Fatalf("short pause: exit %d; violations:\n%s", code, strings.Join(r.PluginInvariants.Violations, "\n"))
	}
	if p := r.Plugin; p.Completed != 4 || p.ServerCalls != 4 {
		t.Errorf("short pause: plugin completed %d, %d server calls; want 4, 4 (a pause under the timeouts is left alone)", p.Completed, p.ServerCalls)
	}
}

// TestCheckFailsWhenTheTimeoutDoesNotCut breaks the streamstatus side's
// timeouts through pluginOpts (applied after the flags' options) and shows
// the check fails naming the invariant.
func TestCheckFailsWhenTheTimeoutDoesNotCut(t *testing.T) {
	cases := []struct {
		name, faults     string
		firstEvent, idle time.Duration
		opts             []middleware.Option
		want             string
	}{
		{name: "first-event timeout off: the pause is waited out", faults: "slow@0:p=1:for=600ms", firstEvent: 200 * time.Millisecond,
			opts: []middleware.Option{middleware.WithFirstEventTimeout(0)},
			want: "(ConverseStream, slow@0:p=1:for=600ms; attempts: slow@0:p=1:for=600ms): [server calls] 1 server calls, want 2"},
		{name: "idle timeout off: a stall after content completes", faults: "slow@5:p=1:for=600ms", idle: 150 * time.Millisecond,
			opts: []middleware.Option{middleware.WithIdleTimeout(0)},
			want: "[typed status] ended without an error; want a StatusError of kind transport, retryable (stall:"},
		{name: "idle timeout too short: a pause under it is cut", faults: "slow@5:p=1:for=100ms", idle: 400 * time.Millisecond,
			opts: []middleware.Option{middleware.WithIdleTimeout(20 * time.Millisecond)},
			want: "(ConverseStream, no fault; attempts: slow@5:p=1:for=100ms): [no failure] should have completed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := checkConfig{calls: 2, concurrency: 2, events: 20, seed: 1, spec: mustSpec(t, c.faults), json: true,
				firstEventTimeout: c.firstEvent, idleTimeout: c.idle, pluginOpts: c.opts}
			if err := checkStallPlan(cfg); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			if code := check(context.Background(), cfg, &stdout, &stderr); code != exitFailed {
				t.Errorf("exit %d, want %d (invariants broken):\n%s", code, exitFailed, stdout.String())
			}
			if !strings.Contains(stdout.String(), c.want) {
				t.Errorf("violations lack %q:\n%s", c.want, stdout.String())
			}
		})
	}
}

// TestExpectStalls checks expect's predictions with the timeouts on,
// pause by pause and fault by fault, without running calls.
func TestExpectStalls(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name, faults     string
		call             int // odd: ConverseStream, even: InvokeModelWithResponseStream
		firstEvent, idle time.Duration
		want             expectation // fault is compared by its text
		fault            string
	}{
		{name: "pause under the first-event timeout", faults: "slow@0:call=1:for=100ms", call: 1, firstEvent: 500 * ms,
			want: expectation{complete: true, serverCalls: 1}},
		{name: "pause over it, first attempt", faults: "slow@0:call=1:for=1s", call: 1, firstEvent: 200 * ms,
			want: expectation{complete: true, serverCalls: 2, beforeContent: true, stalled: true}, fault: "slow@0:call=1:for=1s"},
		{name: "pause over it, every attempt", faults: "slow@0:call=2:for=1s:attempts=all", call: 2, firstEvent: 200 * ms,
			want:  expectation{serverCalls: maxAttempts, doc: stallDoc, kind: smithyext.KindTransport, beforeContent: true, stalled: true},
			fault: "slow@0:call=2:for=1s:attempts=all"},
		{name: "pause over it, two attempts", faults: "slow@0:call=2:for=1s:attempts=2", call: 2, firstEvent: 200 * ms,
			want: expectation{complete: true, serverCalls: 3, beforeContent: true, stalled: true}, fault: "slow@0:call=2:for=1s:attempts=2"},
		{name: "messageStart is not content: ConverseStream's frame 1 is before content", faults: "slow@1:call=1:for=1s", call: 1, firstEvent: 200 * ms,
			want: expectation{complete: true, serverCalls: 2, beforeContent: true, stalled: true}, fault: "slow@1:call=1:for=1s"},
		{name: "pauses before content add up", faults: "slow@0:call=1:for=150ms, slow@1:call=1:for=150ms", call: 1, firstEvent: 200 * ms,
			want: expectation{complete: true, serverCalls: 2, beforeContent: true, stalled: true}, fault: "slow@1:call=1:for=150ms"},
		{name: "the first-event timeout ignores pauses after content", faults: "slow@5:call=1:for=1s", call: 1, firstEvent: 200 * ms,
			want: expectation{complete: true, serverCalls: 1}},
		{name: "idle stall after content", faults: "slow@5:call=2:for=1s", call: 2, idle: 200 * ms,
			want:  expectation{serverCalls: 1, events: 5, doc: stallDoc, kind: smithyext.KindTransport, stalled: true},
			fault: "slow@5:call=2:for=1s"},
		{name: "idle stall before content is retried", faults: "slow@0:call=2:for=1s", call: 2, idle: 200 * ms,
			want: expectation{complete: true, serverCalls: 2, beforeContent: true, stalled: true}, fault: "slow@0:call=2:for=1s"},
		{name: "a stall before the fault's frame wins", faults: "slow@2:call=2:for=1s, serviceUnavailable@4:call=2", call: 2, idle: 200 * ms,
			want:  expectation{serverCalls: 1, events: 2, doc: stallDoc, kind: smithyext.KindTransport, stalled: true},
			fault: "slow@2:call=2:for=1s"},
		{name: "a pause after the fault's frame is never sent", faults: "slow@6:call=2:for=1s, reset@4:call=2", call: 2, idle: 200 * ms,
			want:  expectation{serverCalls: 1, events: 4, doc: documented{0, true, false, "", srcTransport}, kind: smithyext.KindTransport},
			fault: "reset@4:call=2"},
		{name: "a stall before a first-frame throttle is retried, then the throttle's attempts are over", faults: "slow@0:call=1:for=1s, throttling@0:call=1", call: 1, firstEvent: 200 * ms,
			want: expectation{complete: true, serverCalls: 2, beforeContent: true, stalled: true}, fault: "slow@0:call=1:for=1s"},
		{name: "an HTTP answer has no stream to stall", faults: "slow@0:call=2:for=1s, http400:call=2", call: 2, firstEvent: 200 * ms,
			want:  expectation{serverCalls: 1, doc: documented{400, false, false, "ValidationException", srcHTTP}, beforeContent: true},
			fault: "http400:call=2"},
		{name: "a pause after the last frame, over the idle timeout", faults: "slow@99:call=1:for=1s", call: 1, idle: 200 * ms,
			want:  expectation{serverCalls: 1, events: streamLen(opConverseStream, 20), doc: stallDoc, kind: smithyext.KindTransport, stalled: true},
			fault: "slow@99:call=1:for=1s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := checkConfig{calls: c.call, events: 20, seed: 1, spec: mustSpec(t, c.faults), firstEventTimeout: c.firstEvent, idleTimeout: c.idle}
			if err := checkStallPlan(cfg); err != nil {
				t.Fatal(err)
			}
			got := expect(cfg, c.call)
			text := ""
			if got.fault != nil {
				text = got.fault.text
			}
			if got.complete { // the row of the fault a retry cured is not the call's
				got.doc = documented{}
			}
			got.fault = nil
			if text != c.fault || got != c.want {
				t.Errorf("expect = %+v (fault %q)\nwant     %+v (fault %q)", got, text, c.want, c.fault)
			}
		})
	}
}

// TestPausesTooCloseToATimeoutAreRejected: the check cannot predict a pause
// near a timeout, so it refuses the run rather than flake.
func TestPausesTooCloseToATimeoutAreRejected(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-faults", "slow@0:for=200ms", "-first-event-timeout", "220ms"},
			"-faults with the timeouts: call 1 (ConverseStream), attempt 1: the pauses before the first content event add up to 200ms, within 55ms of -first-event-timeout 220ms"},
		{[]string{"-faults", "slow@4:call=3:for=220ms", "-idle-timeout", "200ms"},
			"call 3 (ConverseStream), attempt 1: the pause before frame 4 is 220ms; -idle-timeout 200ms cuts pauses from 200ms to 250ms"},
		{[]string{"-first-event-timeout", "-1s"}, "-first-event-timeout -1s: want a positive duration, or 0 for none"},
		{[]string{"-idle-timeout", "-5ms"}, "-idle-timeout -5ms: want a positive duration, or 0 for none"},
	} {
		code, stdout, stderr := runCmd(t, append([]string{"-calls", "4"}, c.args...)...)
		if code != exitUsage || !strings.Contains(stderr, c.want) || stdout != "" {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
	if code, _, stderr := runCmd(t, "-calls", "4", "-faults", "slow@0:for=10ms", "-first-event-timeout", "1s", "-idle-timeout", "1s"); code != exitOK {
		t.Errorf("a pause far under the timeouts: exit %d, stderr %q", code, stderr)
	}
}
