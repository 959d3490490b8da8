package main

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// This file is the fault SPEC language: what -faults and serve --faults
// accept. specHelp (below) is its user documentation; keep the two in step.

// defaultFaults is the realistic mix of the no-flag run: first-frame
// throttles, a model stream error from a throttled provider, 500/503 in the
// middle of the stream, an Anthropic overloaded envelope, connection resets
// before and after content, and a slow first token.
const defaultFaults = "throttling@0:p=0.15, modelStreamError@0:p=0.05:orig=429, internalServer@1:p=0.05, " +
	"serviceUnavailable@12:p=0.05, internalServer@8:p=0.04, anthropicError@0:p=0.05:op=invoke, " +
	"reset@0:p=0.04, reset@10:p=0.03, slow@0:p=0.1:for=150ms"

// specHelp documents the SPEC language for --help (and the README).
var specHelp = strings.Replace(specHelpText, "DEFAULT", strings.ReplaceAll(defaultFaults, ", ", ",\n      "), 1)

const specHelpText = `The fault SPEC language

  SPEC    = "default" | "none" | rule { "," rule }
  rule    = fault [ "@" frame ] { ":" option }

  "default" is the mix of the no-flag run:
      DEFAULT

  fault               frame   what the endpoint sends
  throttling          @frame  exception throttlingException          (429, retryable, throttle)
  internalServer      @frame  exception internalServerException      (500, retryable)
  serviceUnavailable  @frame  exception serviceUnavailableException  (503, retryable)
  modelStreamError    @frame  exception modelStreamErrorException    (424, retryable; orig=429 makes it a throttle)
  modelTimeout        @frame  exception modelTimeoutException        (408, retryable)
  validation          @frame  exception validationException          (400, not retryable)
  error               @frame  :message-type error frame, code=InternalFailure unless code= says
  anthropicError      @frame  chunk {"type":"error",...}, type=overloaded_error unless type= says
                              (InvokeModelWithResponseStream only)
  reset               @frame  TCP RST instead of frame N
  cut                 @frame  half of frame N, then the connection closes (truncated frame)
  corrupt             @frame  frame N, 32 KiB larger, with a wrong message CRC, then the stream ends
  slow                @frame  a pause before frame N (for=, default 1s); the stream goes on
  httpNNN                     an HTTP NNN error answer (400-599) instead of a stream, e.g. http429

  frame   which frame of the healthy stream the fault replaces, counted from 0
          (default 0, before anything is sent). ConverseStream sends messageStart
          (not content), N contentBlockDelta, contentBlockStop, messageStop,
          metadata; InvokeModelWithResponseStream sends Anthropic Messages chunks:
          message_start, content_block_start, N content_block_delta,
          content_block_stop, message_delta, message_stop. A frame past the end
          means after the last frame (cut and corrupt: the last frame).

  option
  p=F          share of calls, 0 < F <= 1, drawn per call from -seed
  call=N       only the N-th call (1-based); p= and call= exclude each other,
               and a rule with neither applies to every call
  attempts=N   how many attempts of a chosen call see the fault: N, or "all".
               Default 1: the first attempt only, so a retry can succeed.
  op=OP        only calls of one operation: converse or invoke
  for=D        slow: the pause (Go duration: 150ms, 2s)
  orig=N       modelStreamError: the originalStatusCode in the payload
  code=C       error: the :error-code header
  type=T       anthropicError: the error.type (e.g. overloaded_error, api_error)

  A call gets at most one fault besides slow. call= rules come first; then one
  draw per call picks at most one p= rule, so p= values are exclusive shares
  and must add up to at most 1. slow rules draw on their own and add a pause to
  whatever else the call gets. Stream faults leave Converse and InvokeModel
  (non-streaming) alone; http faults apply to every operation.

  A call is recognised across its retries by the x-streamcheck-call header
  (streamcheck's own clients send it), else by amz-sdk-invocation-id (the AWS
  SDKs keep it across retries), else by its method, path and body; the n-th
  request of a call is attempt n. Calls are numbered in order of first arrival
  unless x-streamcheck-call gives the number.

  Example: throttling@0:p=0.2, serviceUnavailable@5:call=3, reset@2:p=0.05,
           slow@0:p=0.1:for=500ms, modelStreamError@1:p=0.1:orig=429:attempts=2
`

// faultKind is one fault name of the language.
type faultKind struct {
	name string
	// exception is the wire :exception-type of exception faults.
	exception string
	// message is the message sent with exception and error faults (envelopes
	// use envelopeMessage).
	message string
	// ending is false only for slow, which delays the stream and lets it go on.
	ending bool
	// http is set for the httpNNN faults.
	http bool
	// opts lists the options besides the common ones (p, call, attempts, op).
	opts []string
}

// faultKinds are the known faults, in the order --help lists them.
var faultKinds = []*faultKind{
	{name: "throttling", exception: "throttlingException", message: "Too many requests, please wait before trying your request again.", ending: true},
	{name: "internalServer", exception: "internalServerException", message: "The server encountered an internal error while processing the request.", ending: true},
	{name: "serviceUnavailable", exception: "serviceUnavailableException", message: "The service is temporarily unavailable.", ending: true},
	{name: "modelStreamError", exception: "modelStreamErrorException", message: "An error occurred while streaming the response from the model.", ending: true, opts: []string{"orig"}},
	{name: "modelTimeout", exception: "modelTimeoutException", message: "The model took too long to respond.", ending: true},
	{name: "validation", exception: "validationException", message: "The request failed validation.", ending: true},
	{name: "error", message: "An internal failure occurred.", ending: true, opts: []string{"code"}},
	{name: "anthropicError", ending: true, opts: []string{"type"}}, // message: envelopeMessage
	{name: "reset", ending: true},
	{name: "cut", ending: true},
	{name: "corrupt", ending: true},
	{name: "slow", opts: []string{"for"}},
}

// httpKind is the kind of every httpNNN fault; the status is in the rule.
var httpKind = &faultKind{name: "http", ending: true, http: true}

// Operations a rule can be limited to with op=.
const (
	opConverseStream = "ConverseStream"
	opInvokeStream   = "InvokeModelWithResponseStream"
)

// Defaults of the fault-specific options.
const (
	defaultSlow      = time.Second
	defaultErrorCode = "InternalFailure"
	defaultEnvelope  = "overloaded_error"
	maxFrame         = 1_000_000
	maxSlow          = time.Hour
)

// rule is one parsed rule of a SPEC.
type rule struct {
	text string // as written (trimmed), for messages and the report
	kind *faultKind

	frame    int           // frame index (0 when no @)
	status   int           // httpNNN: the status
	p        float64       // share of calls; 0 when call= is set
	call     int           // only this call (1-based); 0 when p= is set
	attempts int           // attempts that see the fault; 0 = all
	op       string        // "" or opConverseStream / opInvokeStream
	pause    time.Duration // slow
	orig     int           // modelStreamError originalStatusCode; 0 = none
	code     string        // error :error-code
	envType  string        // anthropicError error.type
}

// faultSpec is a parsed SPEC.
type faultSpec struct {
	text  string
	rules []*rule
}

// String returns the SPEC as given ("none" for no faults).
func (s *faultSpec) String() string {
	if len(s.rules) == 0 {
		return "none"
	}
	return s.text
}

// specError is a parse error that names the bad rule.
type specError struct {
	rule string // the rule as written; "" for errors about the whole spec
	msg  string
}

func (e *specError) Error() string {
	if e.rule == "" {
		return e.msg
	}
	return fmt.Sprintf("%q: %s", e.rule, e.msg)
}

// parseSpec parses a SPEC. Errors name the rule and the part that is wrong.
func parseSpec(text string) (*faultSpec, error) {
	s := &faultSpec{text: strings.TrimSpace(text)}
	if strings.EqualFold(s.text, "default") {
		s.text = defaultFaults
	}
	if s.text == "" || strings.EqualFold(s.text, "none") {
		return s, nil
	}
	for _, part := range strings.Split(s.text, ",") {
		raw := strings.TrimSpace(part)
		if raw == "" {
			return nil, &specError{msg: fmt.Sprintf("empty rule in %q (two commas in a row, or a comma at the start or end?)", s.text)}
		}
		r, err := parseRule(raw)
		if err != nil {
			return nil, &specError{rule: raw, msg: err.Error()}
		}
		s.rules = append(s.rules, r)
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return s, nil
}

var (
	httpName  = regexp.MustCompile(`^(?i:http)([0-9]+)$`)
	digits    = regexp.MustCompile(`^[0-9]+$`)
	decimal   = regexp.MustCompile(`^[0-9]*\.?[0-9]+$`)
	errorCode = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.]*$`)
	envType   = regexp.MustCompile(`^[a-z][a-z_]*$`)
)

// parseRule parses one rule: fault[@frame]{:option}.
func parseRule(raw string) (*rule, error) {
	head, options, hasOptions := strings.Cut(raw, ":")
	if hasOptions && strings.TrimSpace(options) == "" {
		return nil, errors.New(`a ":" with no option after it: drop it, or add key=value`)
	}
	name, frame, hasFrame := strings.Cut(head, "@")
	name = strings.TrimSpace(name)
	r := &rule{text: raw, attempts: 1}

	if m := httpName.FindStringSubmatch(name); m != nil {
		st, err := strconv.Atoi(m[1])
		if err != nil || len(m[1]) != 3 || st < 400 || st > 599 {
			return nil, fmt.Errorf("HTTP status %s is not an error status (want http400 to http599, e.g. http429)", m[1])
		}
		r.kind, r.status = httpKind, st
	} else if r.kind = lookupFault(name); r.kind == nil {
		return nil, unknownFault(name)
	}

	if hasFrame {
		frame = strings.TrimSpace(frame)
		if r.kind.http {
			return nil, fmt.Errorf("an HTTP answer replaces the whole stream and has no frame: drop %q", "@"+frame)
		}
		n, err := atoi(frame)
		if err != nil || n < 0 || n > maxFrame {
			return nil, fmt.Errorf("frame %q: want a frame index from 0 to %d (0 = the first frame)", frame, maxFrame)
		}
		r.frame = n
	}

	r.pause, r.code, r.envType = defaultSlow, defaultErrorCode, defaultEnvelope
	seen := map[string]bool{}
	hasP := false
	if options != "" {
		for _, opt := range strings.Split(options, ":") {
			opt = strings.TrimSpace(opt)
			key, val, ok := strings.Cut(opt, "=")
			key, val = strings.TrimSpace(key), strings.TrimSpace(val)
			if !ok || key == "" || val == "" {
				return nil, fmt.Errorf("option %q: want key=value (%s)", opt, strings.Join(r.kind.options(), ", "))
			}
			if seen[key] {
				return nil, fmt.Errorf("option %s= given twice", key)
			}
			seen[key] = true
			if err := r.setOption(key, val); err != nil {
				return nil, fmt.Errorf("%s=%s: %v", key, val, err)
			}
			hasP = hasP || key == "p"
		}
	}
	if hasP && r.call != 0 {
		return nil, errors.New("p= and call= both given: a rule picks its calls one way (by share, or by number)")
	}
	if !hasP && r.call == 0 {
		r.p = 1 // every call
	}
	if r.kind.name == "anthropicError" && r.op == opConverseStream {
		return nil, errors.New("anthropicError is a chunk of InvokeModelWithResponseStream; ConverseStream has no chunks (use op=invoke)")
	}
	return r, nil
}

// options lists the options a fault accepts, as key=... hints.
func (k *faultKind) options() []string {
	out := []string{"p=F", "call=N", "attempts=N|all", "op=converse|invoke"}
	for _, o := range k.opts {
		out = append(out, o+"="+map[string]string{"for": "D", "orig": "N", "code": "C", "type": "T"}[o])
	}
	return out
}

// setOption applies one key=value option to r.
func (r *rule) setOption(key, val string) error {
	allowed := key == "p" || key == "call" || key == "attempts" || key == "op"
	for _, o := range r.kind.opts {
		allowed = allowed || o == key
	}
	if !allowed {
		name := r.kind.name
		if r.kind.http {
			name = "http" + strconv.Itoa(r.status)
		}
		return fmt.Errorf("unknown option for %s (it takes %s)", name, strings.Join(r.kind.options(), ", "))
	}
	switch key {
	case "p":
		p, err := strconv.ParseFloat(val, 64)
		if !decimal.MatchString(val) || err != nil || math.IsNaN(p) || p <= 0 || p > 1 {
			return errors.New("want a share of calls, 0 < p <= 1 (e.g. p=0.2)")
		}
		r.p = p
	case "call":
		n, err := atoi(val)
		if err != nil || n < 1 {
			return errors.New("want a call number, 1 or more (calls are numbered from 1)")
		}
		r.call = n
	case "attempts":
		if strings.EqualFold(val, "all") {
			r.attempts = 0
			return nil
		}
		n, err := atoi(val)
		if err != nil || n < 1 {
			return errors.New(`want a number of attempts, 1 or more, or "all"`)
		}
		r.attempts = n
	case "op":
		switch strings.ToLower(val) {
		case "converse", strings.ToLower(opConverseStream):
			r.op = opConverseStream
		case "invoke", strings.ToLower(opInvokeStream):
			r.op = opInvokeStream
		default:
			return errors.New("want converse (ConverseStream) or invoke (InvokeModelWithResponseStream)")
		}
	case "for":
		d, err := time.ParseDuration(val)
		if err != nil || d <= 0 || d > maxSlow {
			return fmt.Errorf("want a duration above 0 and at most %v (e.g. 500ms, 2s)", maxSlow)
		}
		r.pause = d
	case "orig":
		n, err := atoi(val)
		if err != nil || n < 100 || n > 599 {
			return errors.New("want an HTTP status, 100-599 (e.g. orig=429)")
		}
		r.orig = n
	case "code":
		if !errorCode.MatchString(val) {
			return errors.New("want an error code such as InternalFailure or ThrottlingException")
		}
		r.code = val
	case "type":
		if !envType.MatchString(val) {
			return errors.New("want an Anthropic error type such as overloaded_error or api_error")
		}
		r.envType = val
	}
	return nil
}

// atoi is strconv.Atoi for plain decimal digits only: no sign, no spaces,
// no leading zeros (0429 is not a status, @03 not a frame).
func atoi(s string) (int, error) {
	if !digits.MatchString(s) {
		return 0, fmt.Errorf("%q is not a plain number", s)
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("%q has a leading zero", s)
	}
	return strconv.Atoi(s)
}

// lookupFault finds a fault by name, ignoring case; an exception fault also
// answers to its wire name (throttlingException), and only those do.
func lookupFault(name string) *faultKind {
	for _, k := range faultKinds {
		if strings.EqualFold(k.name, name) || (k.exception != "" && strings.EqualFold(k.exception, name)) {
			return k
		}
	}
	return nil
}

// unknownFault is the error for a name no fault has, with the closest
// known name when one is near.
func unknownFault(name string) error {
	var names []string
	best, bestDist := "", 3
	for _, k := range faultKinds {
		names = append(names, k.name)
		if d := nearness(strings.ToLower(name), strings.ToLower(k.name)); len(name) >= 3 && d < bestDist {
			best, bestDist = k.name, d
		}
	}
	names = append(names, "httpNNN")
	msg := fmt.Sprintf("unknown fault %q", name)
	if name == "" {
		msg = "missing fault name"
	}
	if best != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", best)
	}
	return fmt.Errorf("%s (known: %s)", msg, strings.Join(names, ", "))
}

// nearness is how far typed is from name or from a prefix of name of at
// least 3 letters (so a misspelled or shortened name finds its fault).
func nearness(typed, name string) int {
	best := editDistance(typed, name)
	for i := 3; i < len(name); i++ {
		best = min(best, editDistance(typed, name[:i]))
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// checkPlan rejects rules that can never fire in a check of calls calls:
// the check's call n is always opOf(n), so call= must agree with op= (and
// anthropicError needs an InvokeModelWithResponseStream call).
func (s *faultSpec) checkPlan(calls int) error {
	for _, r := range s.rules {
		if r.call == 0 {
			continue
		}
		op := opOf(r.call)
		switch {
		case r.call > calls:
			return &specError{rule: r.text, msg: fmt.Sprintf("call=%d never fires: the check makes %d calls (-calls)", r.call, calls)}
		case r.op != "" && r.op != op:
			return &specError{rule: r.text, msg: fmt.Sprintf("call %d is %s in the check (odd calls are ConverseStream, even ones "+
				"InvokeModelWithResponseStream), so op=%s never fires", r.call, op, r.op)}
		case r.kind.name == "anthropicError" && op != opInvokeStream:
			return &specError{rule: r.text, msg: fmt.Sprintf("call %d is ConverseStream in the check and anthropicError needs "+
				"InvokeModelWithResponseStream (an even call)", r.call)}
		}
	}
	return nil
}

// check validates the rules together: p= shares of ending faults must fit
// in one draw, and no call may be named by two ending rules.
func (s *faultSpec) check() error {
	var total float64
	var shared []string
	byCall := map[int]string{}
	for _, r := range s.rules {
		if !r.kind.ending {
			continue
		}
		if r.call != 0 {
			if other, ok := byCall[r.call]; ok {
				return &specError{rule: r.text, msg: fmt.Sprintf("call %d already gets %q; a call gets at most one fault besides slow", r.call, other)}
			}
			byCall[r.call] = r.text
			continue
		}
		total += r.p
		shared = append(shared, r.text)
	}
	if total > 1+1e-9 {
		return &specError{msg: fmt.Sprintf("the p= shares of %s add up to %.3g; they are exclusive shares of one draw per call "+
			"(a rule without p= or call= takes every call, p=1), so they must add up to at most 1", strings.Join(quoteAll(shared), ", "), total)}
	}
	return nil
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}
