package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseSpecAccepts(t *testing.T) {
	cases := []struct {
		name  string
		spec  string
		rules int
		check func(t *testing.T, rs []*rule)
	}{
		{name: "empty spec means no faults", spec: "", rules: 0},
		{name: "none means no faults, in any case", spec: " NONE ", rules: 0},
		{name: "a fault alone hits every call at frame 0 on the first attempt only", spec: "throttling", rules: 1,
			check: func(t *testing.T, rs []*rule) {
				r := rs[0]
				if r.kind.name != "throttling" || r.frame != 0 || r.p != 1 || r.call != 0 || r.attempts != 1 || r.op != "" {
					t.Errorf("rule = %+v", *r)
				}
			}},
		{name: "frame index after @", spec: "serviceUnavailable@5", rules: 1,
			check: func(t *testing.T, rs []*rule) { wantInt(t, "frame", rs[0].frame, 5) }},
		{name: "p= is the share of calls", spec: "reset@2:p=0.05", rules: 1,
			check: func(t *testing.T, rs []*rule) {
				if rs[0].p != 0.05 || rs[0].call != 0 {
					t.Errorf("p = %v, call = %d", rs[0].p, rs[0].call)
				}
			}},
		{name: "call= picks one call and no share", spec: "serviceUnavailable@5:call=3", rules: 1,
			check: func(t *testing.T, rs []*rule) {
				if rs[0].call != 3 || rs[0].p != 0 {
					t.Errorf("call = %d, p = %v", rs[0].call, rs[0].p)
				}
			}},
		{name: "attempts=all makes a fault persistent", spec: "throttling:attempts=all", rules: 1,
			check: func(t *testing.T, rs []*rule) { wantInt(t, "attempts", rs[0].attempts, 0) }},
		{name: "attempts=N covers the first N attempts", spec: "throttling:attempts=2", rules: 1,
			check: func(t *testing.T, rs []*rule) { wantInt(t, "attempts", rs[0].attempts, 2) }},
		{name: "op= takes short and full operation names", spec: "throttling:op=converse:p=0.1, reset:op=InvokeModelWithResponseStream:p=0.1", rules: 2,
			check: func(t *testing.T, rs []*rule) {
				if rs[0].op != opConverseStream || rs[1].op != opInvokeStream {
					t.Errorf("ops = %q, %q", rs[0].op, rs[1].op)
				}
			}},
		{name: "slow takes its pause from for=", spec: "slow@0:for=500ms:p=0.1", rules: 1,
			check: func(t *testing.T, rs []*rule) {
				if rs[0].pause != 500*time.Millisecond || rs[0].kind.ending {
					t.Errorf("pause = %v, ending = %v", rs[0].pause, rs[0].kind.ending)
				}
			}},
		{name: "slow pauses 1s by default", spec: "slow@3", rules: 1,
			check: func(t *testing.T, rs []*rule) {
				if rs[0].pause != time.Second {
					t.Errorf("pause = %v", rs[0].pause)
				}
			}},
		{name: "modelStreamError carries originalStatusCode from orig=", spec: "modelStreamError@1:orig=429", rules: 1,
			check: func(t *testing.T, rs []*rule) { wantInt(t, "orig", rs[0].orig, 429) }},
		{name: "error frame code from code=, InternalFailure by default", spec: "error@2:code=ThrottlingException:p=0.5, error@3:p=0.5", rules: 2,
			check: func(t *testing.T, rs []*rule) {
				if rs[0].code != "ThrottlingException" || rs[1].code != "InternalFailure" {
					t.Errorf("codes = %q, %q", rs[0].code, rs[1].code)
				}
			}},
		{name: "anthropicError type from type=, overloaded_error by default", spec: "anthropicError:type=api_error:p=0.5, anthropicError@2:p=0.5", rules: 2,
			check: func(t *testing.T, rs []*rule) {
				if rs[0].envType != "api_error" || rs[1].envType != "overloaded_error" {
					t.Errorf("types = %q, %q", rs[0].envType, rs[1].envType)
				}
			}},
		{name: "httpNNN is an HTTP error answer", spec: "http429:p=0.5, http503:p=0.5", rules: 2,
			check: func(t *testing.T, rs []*rule) {
				if !rs[0].kind.http || rs[0].status != 429 || rs[1].status != 503 {
					t.Errorf("rules = %+v, %+v", *rs[0], *rs[1])
				}
			}},
		{name: "names ignore case and the Exception suffix", spec: "ThrottlingException@1:p=0.5, MODELTIMEOUT:p=0.5", rules: 2,
			check: func(t *testing.T, rs []*rule) {
				if rs[0].kind.name != "throttling" || rs[1].kind.name != "modelTimeout" {
					t.Errorf("kinds = %q, %q", rs[0].kind.name, rs[1].kind.name)
				}
			}},
		{name: "spaces around rules, @ and options are ignored", spec: " throttling @ 1 : p = 0.5 ,\n\treset : call = 2 ", rules: 2,
			check: func(t *testing.T, rs []*rule) {
				if rs[0].frame != 1 || rs[0].p != 0.5 || rs[1].kind.name != "reset" {
					t.Errorf("rules = %+v, %+v", *rs[0], *rs[1])
				}
			}},
		{name: "shares may add up to exactly 1", spec: "throttling:p=0.3, reset:p=0.3, cut:p=0.4", rules: 3},
		{name: "slow shares do not count toward the ending faults' total", spec: "throttling, slow:p=0.5", rules: 2},
		{name: "call= rules do not count toward the shares", spec: "throttling, reset:call=2, cut:call=3", rules: 3},
		{name: "default is the built-in mix", spec: "default", rules: strings.Count(defaultFaults, ",") + 1},
		{name: "the mix as --help prints it, one rule a line", spec: strings.ReplaceAll(defaultFaults, ", ", ",\n      "),
			rules: strings.Count(defaultFaults, ",") + 1},
		{name: "the --help example", spec: "throttling@0:p=0.2, serviceUnavailable@5:call=3, reset@2:p=0.05, slow@0:p=0.1:for=500ms, modelStreamError@1:p=0.1:orig=429:attempts=2", rules: 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := parseSpec(c.spec)
			if err != nil {
				t.Fatalf("parseSpec(%q): %v", c.spec, err)
			}
			if len(s.rules) != c.rules {
				t.Fatalf("%d rules, want %d", len(s.rules), c.rules)
			}
			if c.check != nil {
				c.check(t, s.rules)
			}
		})
	}
}

func wantInt(t *testing.T, what string, got, want int) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %d, want %d", what, got, want)
	}
}

func TestParseSpecRejects(t *testing.T) {
	cases := []struct {
		name string
		spec string
		want string // the whole error must contain this
	}{
		{"unknown fault, with the nearest name and the known ones", "throttling@0:p=0.2, throtle@0",
			`"throtle@0": unknown fault "throtle" (did you mean "throttling"?) (known: throttling, internalServer, serviceUnavailable, modelStreamError, modelTimeout, validation, error, anthropicError, reset, cut, corrupt, slow, httpNNN)`},
		{"unknown fault far from every name gets no guess", "explode", `"explode": unknown fault "explode" (known: throttling,`},
		{"a shortened name gets its guess", "internal@3", `unknown fault "internal" (did you mean "internalServer"?)`},
		{"missing fault name", "@3", `"@3": missing fault name`},
		{"frame that is not a number", "reset@x", `"reset@x": frame "x": want a frame index from 0 to 1000000`},
		{"negative frame", "reset@-1", `frame "-1": want a frame index`},
		{"empty frame", "reset@", `frame "": want a frame index`},
		{"HTTP status that is not an error", "http200", `"http200": HTTP status 200 is not an error status (want http400 to http599`},
		{"HTTP status past 599", "http600", "HTTP status 600 is not an error status"},
		{"HTTP answer with a frame", "http503@2", `"http503@2": an HTTP answer replaces the whole stream and has no frame: drop "@2"`},
		{"option without a value", "reset:p", `"reset:p": option "p": want key=value (p=F, call=N, attempts=N|all, op=converse|invoke)`},
		{"option of another fault", "reset:for=1s", `"reset:for=1s": for=1s: unknown option for reset (it takes p=F, call=N, attempts=N|all, op=converse|invoke)`},
		{"option of another fault on an HTTP answer", "http429:orig=429", "orig=429: unknown option for http429"},
		{"option given twice", "reset:p=0.1:p=0.2", `"reset:p=0.1:p=0.2": option p= given twice`},
		{"zero share", "reset:p=0", "p=0: want a share of calls, 0 < p <= 1"},
		{"share above 1", "reset:p=1.5", "p=1.5: want a share of calls"},
		{"share that is not a number", "reset:p=NaN", "p=NaN: want a share of calls"},
		{"call zero (calls count from 1)", "reset:call=0", "call=0: want a call number, 1 or more"},
		{"both p= and call=", "reset:p=0.1:call=2", "p= and call= both given"},
		{"zero attempts", "reset:attempts=0", `attempts=0: want a number of attempts, 1 or more, or "all"`},
		{"attempts that is a word", "reset:attempts=some", "attempts=some: want a number of attempts"},
		{"unknown operation", "reset:op=converse-stream", "op=converse-stream: want converse (ConverseStream) or invoke"},
		{"slow pause that is not a duration", "slow:for=fast", "for=fast: want a duration above 0"},
		{"negative slow pause", "slow:for=-1s", "for=-1s: want a duration above 0"},
		{"slow pause over an hour", "slow:for=2h", "for=2h: want a duration above 0 and at most 1h0m0s"},
		{"originalStatusCode out of range", "modelStreamError:orig=42", "orig=42: want an HTTP status, 100-599"},
		{"error code with a space", "error:code=bad code", "code=bad code: want an error code"},
		{"Anthropic error type in capitals", "anthropicError:type=Overloaded", "type=Overloaded: want an Anthropic error type"},
		{"Anthropic envelope on ConverseStream", "anthropicError:op=converse", "anthropicError is a chunk of InvokeModelWithResponseStream"},
		{"two commas in a row", "reset,,cut", `empty rule in "reset,,cut"`},
		{"trailing comma", "reset,", `empty rule in "reset,"`},
		{"shares adding up to more than 1", "throttling:p=0.7, reset:p=0.5",
			`the p= shares of "throttling:p=0.7", "reset:p=0.5" add up to 1.2; they are exclusive shares of one draw per call`},
		{"two faults on every call", "throttling, reset", `"throttling", "reset" add up to 2`},
		{"two ending faults on one call", "reset:call=3, cut@2:call=3", `"cut@2:call=3": call 3 already gets "reset:call=3"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := parseSpec(c.spec)
			if err == nil {
				t.Fatalf("parseSpec(%q) = %d rules, want an error", c.spec, len(s.rules))
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("parseSpec(%q) error\n  %v\nwant it to contain\n  %s", c.spec, err, c.want)
			}
		})
	}
}

func TestChooseIsReproducible(t *testing.T) {
	s := mustSpec(t, defaultFaults)
	other := 0
	for n := 1; n <= 500; n++ {
		a, b := s.choose(7, n), s.choose(7, n)
		if describePick(a) != describePick(b) {
			t.Fatalf("call %d: %q then %q with the same seed", n, describePick(a), describePick(b))
		}
		if describePick(a) != describePick(s.choose(8, n)) {
			other++
		}
	}
	if other == 0 {
		t.Error("seeds 7 and 8 chose the same faults for 500 calls")
	}
}

func TestChooseSharesMatchP(t *testing.T) {
	s := mustSpec(t, "throttling:p=0.2, reset@3:p=0.1, slow:p=0.5:for=1ms")
	const calls = 20000
	counts := map[string]int{}
	for n := 1; n <= calls; n++ {
		p := s.choose(1, n)
		if p.ending != nil {
			counts[p.ending.text]++
		}
		for _, r := range p.slows {
			counts[r.text]++
		}
	}
	for text, want := range map[string]float64{"throttling:p=0.2": 0.2, "reset@3:p=0.1": 0.1, "slow:p=0.5:for=1ms": 0.5} {
		if got := float64(counts[text]) / calls; math.Abs(got-want) > 0.015 {
			t.Errorf("%s: share %.3f, want %.2f", text, got, want)
		}
	}
}

func TestChooseCallRuleWinsOverShares(t *testing.T) {
	s := mustSpec(t, "throttling, reset@2:call=3, slow:call=4:for=1ms")
	for n := 1; n <= 5; n++ {
		p := s.choose(1, n)
		want := "throttling"
		if n == 3 {
			want = "reset@2:call=3"
		}
		if p.ending == nil || p.ending.text != want {
			t.Errorf("call %d: ending %q, want %q", n, describePick(p), want)
		}
		if gotSlow := len(p.slows) == 1; gotSlow != (n == 4) {
			t.Errorf("call %d: slows %d", n, len(p.slows))
		}
	}
}

func TestForAttempt(t *testing.T) {
	cases := []struct {
		name    string
		spec    string
		op      string
		attempt int
		want    bool
	}{
		{"first attempt only by default", "throttling", opConverseStream, 1, true},
		{"retry is healthy by default", "throttling", opConverseStream, 2, false},
		{"attempts=2 covers the first retry", "throttling:attempts=2", opInvokeStream, 2, true},
		{"attempts=2 spares the second retry", "throttling:attempts=2", opInvokeStream, 3, false},
		{"attempts=all covers every attempt", "throttling:attempts=all", opInvokeStream, 9, true},
		{"op= spares the other operation", "throttling:op=converse", opInvokeStream, 1, false},
		{"op= hits its operation", "throttling:op=invoke", opInvokeStream, 1, true},
		{"Anthropic envelopes skip ConverseStream", "anthropicError", opConverseStream, 1, false},
		{"stream faults skip non-streaming operations", "reset", "Converse", 1, false},
		{"HTTP answers hit non-streaming operations", "http503", "InvokeModel", 1, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustSpec(t, c.spec).choose(1, 1).forAttempt(c.op, c.attempt)
			if got := p.ending != nil; got != c.want {
				t.Errorf("fault applies = %v, want %v", got, c.want)
			}
		})
	}
}

func mustSpec(t *testing.T, text string) *faultSpec {
	t.Helper()
	s, err := parseSpec(text)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
