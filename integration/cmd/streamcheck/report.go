package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	smithy "github.com/aws/smithy-go"

	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/smithyext"
)

// This file turns the two sides' outcomes into figures, checks the plugin's
// invariants, and prints the table or the JSON document.

// report is the result of a check; -json prints it as is.
type report struct {
	Seed          int64  `json:"seed"`
	Calls         int    `json:"calls"`
	Concurrency   int    `json:"concurrency"`
	EventsPerCall int    `json:"content_events_per_stream"`
	MaxAttempts   int    `json:"max_attempts"`
	Faults        string `json:"faults"`
	// FirstEventTimeoutMs and IdleTimeoutMs are the streamstatus side's
	// stall timeouts (-first-event-timeout, -idle-timeout); 0 is off.
	FirstEventTimeoutMs float64        `json:"first_event_timeout_ms"`
	IdleTimeoutMs       float64        `json:"idle_timeout_ms"`
	PlannedFaults       map[string]int `json:"planned_faults"` // rule (or "none") -> calls, first attempts; slow apart
	Bare                sideFigures    `json:"bare"`
	Plugin              sideFigures    `json:"plugin"`
	PluginInvariants    invariants     `json:"plugin_invariants"`
	// ToolTimeouts are the calls streamcheck itself gave up on (its own
	// per-call timeout): not library violations, but not checked either.
	ToolTimeouts toolTimeouts `json:"tool_timeouts"`
	// Rows defines every row of the table.
	Rows map[string]string `json:"rows"`
}

// toolTimeouts counts the calls that hit streamcheck's own timeout. A
// streamstatus call that hits it while the bare SDK finished the same call
// is a [hang] violation; a call that hits it on both sides is not checked
// (inconclusive); a call that hits it on the bare side only was checked.
type toolTimeouts struct {
	Bare        int     `json:"bare"`
	Plugin      int     `json:"plugin"`
	Both        int     `json:"both"`
	LongestMs   float64 `json:"longest_timeout_ms"`
	Explanation string  `json:"explanation,omitempty"`
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
	// FirstEventCalls is how many calls the latency figures cover: the
	// calls that got an event on both sides, the same on both.
	FirstEventCalls int     `json:"first_event_calls"`
	FirstEventP50Ms float64 `json:"first_event_p50_ms"`
	FirstEventP99Ms float64 `json:"first_event_p99_ms"`
	WallMs          float64 `json:"wall_ms"`
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
		FirstEventTimeoutMs: ms(cfg.firstEventTimeout), IdleTimeoutMs: ms(cfg.idleTimeout),
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
	both := make([]bool, cfg.calls) // calls with an event on both sides
	for i := range both {
		both[i] = bare.outcomes[i].delivered > 0 && plugin.outcomes[i].delivered > 0
	}
	r.Bare = figures(cfg, bare, both)
	r.Plugin = figures(cfg, plugin, both)
	v := violations(cfg, bare, plugin)
	if v == nil {
		v = []string{} // [] in JSON, not null
	}
	r.PluginInvariants = invariants{Met: len(v) == 0, Violations: v}
	if len(v) > maxViolations {
		r.PluginInvariants.Violations = append(v[:maxViolations:maxViolations], fmt.Sprintf("... and %d more", len(v)-maxViolations))
	}
	for n := 1; n <= cfg.calls; n++ {
		r.ToolTimeouts.LongestMs = max(r.ToolTimeouts.LongestMs, ms(callTimeout(cfg, n)))
		if bare.outcomes[n-1].toolTimeout {
			r.ToolTimeouts.Bare++
		}
		if plugin.outcomes[n-1].toolTimeout {
			r.ToolTimeouts.Plugin++
		}
	}
	for n := 1; n <= cfg.calls; n++ {
		if bare.outcomes[n-1].toolTimeout && plugin.outcomes[n-1].toolTimeout {
			r.ToolTimeouts.Both++
		}
	}
	limit := roundForTable(r.ToolTimeouts.LongestMs)
	switch t := r.ToolTimeouts; {
	case t.Both > 0:
		r.ToolTimeouts.Explanation = fmt.Sprintf("streamcheck's own per-call timeout (up to %s, sized from -events, -concurrency and the planned pauses) "+
			"ended %d calls on both sides; they are not counted as violations and were not checked: rerun with fewer -concurrency or -events on a less loaded machine "+
			"(%d bare and %d streamstatus calls timed out in all; a streamstatus timeout on a call the bare SDK finished is a [hang] violation)",
			limit, t.Both, t.Bare, t.Plugin)
	case t.Bare > 0 && t.Plugin == 0:
		r.ToolTimeouts.Explanation = fmt.Sprintf("streamcheck's own per-call timeout (up to %s) ended %d bare SDK calls; "+
			"the streamstatus side finished every call and was fully checked", limit, t.Bare)
	}
	r.Rows = rowDefinitions()
	return r
}

// figures computes one side's figures. both marks the calls the latency
// figures cover.
func figures(cfg checkConfig, s *sideRun, both []bool) sideFigures {
	f := sideFigures{Name: s.name, Calls: cfg.calls, Failed: map[string]int{}, ServerCalls: s.serverCalls,
		WallMs: ms(s.elapsed), Recorded: s.recorded.snapshot()}
	f.TransparentRetries = s.serverCalls - cfg.calls
	var firsts []time.Duration
	for i, o := range s.outcomes {
		missed := o.missed(o.err == nil)
		f.EventsDelivered += o.delivered
		f.EventsDuplicated += o.dup
		f.EventsMissed += missed
		if both[i] {
			firsts = append(firsts, o.firstEvent)
		}
		switch {
		case o.toolTimeout:
			f.Failed[toolTimeoutKey]++
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
	f.FirstEventCalls = len(firsts)
	f.FirstEventP50Ms = ms(percentile(firsts, 0.50))
	f.FirstEventP99Ms = ms(percentile(firsts, 0.99))
	return f
}

// toolTimeoutKey is the failure row of calls streamcheck gave up on.
const toolTimeoutKey = "streamcheck timeout (not checked)"

// statusOf is the HTTP status an error reports to errors.As, as the
// README tells users to read it; 0 when it has none.
func statusOf(err error) int {
	var sc interface{ HTTPStatusCode() int }
	if errors.As(err, &sc) {
		return sc.HTTPStatusCode()
	}
	return 0
}

// retryableOf is what an error's RetryableError says; ok is false when no
// error in the chain has one.
func retryableOf(err error) (retryable, ok bool) {
	var re interface{ RetryableError() bool }
	if errors.As(err, &re) {
		return re.RetryableError(), true
	}
	return false, false
}

// failureKey names a failure by its typed status, e.g. "429
// ThrottlingException", or says it has none and names its cause.
func failureKey(err error) string {
	code := ""
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	if st := statusOf(err); st != 0 && st != 200 {
		return fmt.Sprintf("%d %s", st, code)
	}
	var se *smithyext.StatusError
	if errors.As(err, &se) {
		return fmt.Sprintf("typed %s: %s", se.Kind, se.ErrorCode())
	}
	if code != "" {
		return "no status: " + code
	}
	return "no status: " + transportSummary(err)
}

// transportCauses name the causes of untyped transport errors.
var transportCauses = []struct{ text, cause string }{
	{"use of closed network connection", "connection closed under the stream: the SDK's request-body race (DESIGN §3)"},
	{"connection reset by peer", "connection reset by peer (an injected reset)"},
	{"unexpected EOF", "unexpected EOF (a truncated stream)"},
	{"checksum", "checksum mismatch (a corrupt frame)"},
	{"crc", "CRC mismatch (a corrupt frame)"},
	{"context deadline exceeded", "context deadline exceeded"},
	{"context canceled", "context canceled"},
	{"EOF", "EOF (the connection ended)"},
}

// transportSummary shortens an untyped transport error to its cause.
func transportSummary(err error) string {
	msg := err.Error()
	for _, c := range transportCauses {
		if strings.Contains(msg, c.text) {
			return c.cause
		}
	}
	if len(msg) > 60 {
		msg = msg[:60] + "..."
	}
	return msg
}

// The invariants the check holds the streamstatus side to, by the name a
// violation carries (see invariantHelp). Every fault kind is checked
// against all of them.
const (
	invRecovered  = "recovered"
	invServer     = "server calls"
	invEvents     = "events"
	invStatus     = "typed status"
	invRetryable  = "retryable"
	invCount      = "events delivered"
	invEnvelope   = "no envelope"
	invNoFailures = "no failure"
	invRequestID  = "request id"
	invThrottle   = "throttle"
	invCode       = "error code"
	invModeled    = "modeled type"
	invBodies     = "bodies closed"
	invHang       = "hang"
	invRecorded   = "recorded failures"
)

// invariantHelp describes the invariants, for -h.
const invariantHelp = `  [recovered]        a retryable fault before content, sent to fewer attempts than the retryer allows,
                     is retried transparently and the call completes; so is a stall before content: a slow
                     pause that -first-event-timeout or -idle-timeout cuts, on fewer attempts than allowed
  [server calls]     each call makes exactly the documented number of requests: 1 for a fault that is
                     not retryable or comes after content; faulted attempts + 1 for a recovered one
  [events]           the consumer gets exactly the healthy stream, or, when the call fails, exactly the
                     events before the fault's frame (none for a fault before content), never one twice;
                     a reset included (the endpoint resets only once the client has every frame before it)
  [typed status]     a failure carries the HTTP status the documented tables give the fault (never the
                     stream's 200); a connection fault gives a StatusError of kind transport or corrupt frame;
                     a stall (a pause longer than -first-event-timeout or -idle-timeout) one of kind transport,
                     code StreamStalled, retryable, after exactly the events before the pause
  [retryable]        the failure's RetryableError() is what the documented tables say
  [events delivered] StatusError.EventsDelivered() is the number of events the consumer got
  [no envelope]      no Anthropic error envelope is delivered as an ordinary chunk
  [no failure]       a call without a fault completes
  [request id]       the failure's ServiceRequestID() is the x-amzn-RequestId the endpoint answered the
                     call's last attempt with
  [throttle]         classify.Classify(err).Throttle (the StatusError's own flag; the SDK's throttle
                     rules for HTTP answers) is what the documented tables say (DESIGN §2 throttle column)
  [error code]       ErrorCode() is the modeled code: ThrottlingException for throttlingException, the
                     :error-code sent, the envelope's error.type, the x-amzn-ErrorType of an HTTP answer
  [modeled type]     errors.As finds the modeled error: *types.XxxException for a Bedrock exception,
                     *smithy.GenericAPIError with the code for an error message, and with the
                     error.type as code for an Anthropic envelope
  [bodies closed]    every response body the side's HTTP client handed out (every attempt, error answers
                     included) was closed
  [hang]             a streamstatus call is not ended by streamcheck's own timeout when the bare SDK
                     finished the same call
  [recorded failures] the streamstatus side's clients recorded, through their MeterProvider, one
                     streamstatus.stream.failures per attempt a fault inside the stream (or a stall)
                     ended, with its position (before_content, after_content) and the code the README
                     documents for it (StreamInterrupted, CorruptFrame, UnknownEnvelopeError, ...);
                     none for an HTTP error answer (checked over all calls, unless a call hit
                     streamcheck's own timeout)
  Expected outcomes are written out in the check from the README/DESIGN §2 Bedrock table, Anthropic's
  published error list, the AWS common errors, and the SDK retryer's HTTP rules; not read from classify.
`

// violations lists the streamstatus side's broken promises, call by call,
// each naming the invariant it breaks (see invariantHelp). bare is the bare
// SDK's run of the same calls, which tells a hang from a slow machine.
func violations(cfg checkConfig, bare, s *sideRun) []string {
	var out []string
	for i, o := range s.outcomes {
		n := i + 1
		op := opOf(n)
		e := expect(cfg, n)
		where := fmt.Sprintf("call %d (%s, %s; attempts: %s)", n, op, e.describe(), attemptsText(s.attempts[i]))
		bad := func(inv, format string, args ...any) {
			out = append(out, where+": ["+inv+"] "+fmt.Sprintf(format, args...))
		}
		if o.toolTimeout {
			if !bare.outcomes[i].toolTimeout {
				bad(invHang, "streamcheck's own timeout (%s) ended the call after %d events; the bare SDK finished the same call "+
					"(%d events, %s)", roundForTable(ms(callTimeout(cfg, n))), o.delivered, bare.outcomes[i].delivered, bareEnd(bare.outcomes[i]))
			}
			continue // otherwise reported apart: the tool gave up on both sides, the library was not checked
		}
		if opened, open := s.bodies.unclosed(n); open != 0 {
			bad(invBodies, "%d of the %d response bodies of the call's attempts were never closed", open, opened)
		}

		if o.dup > 0 {
			bad(invEvents, "%d events delivered twice", o.dup)
		}
		if o.envelope != "" {
			bad(invEnvelope, "an %s envelope was delivered as an ordinary chunk", o.envelope)
		}
		if calls := len(s.attempts[i]); calls != e.serverCalls {
			why := "documented"
			switch {
			case e.fault == nil:
				why = "no fault"
			case e.stalled && e.complete:
				why = "stalled before content: retried until an attempt was not cut"
			case e.stalled && e.beforeContent:
				why = "stalled before content on every attempt: retried until the retryer's attempts ran out"
			case e.stalled:
				why = "stalled after content: never retried"
			case !e.beforeContent:
				why = "the fault came after content: never retried"
			case !e.doc.retryable:
				why = "not retryable per " + e.doc.source
			}
			bad(invServer, "%d server calls, want %d (%s)", calls, e.serverCalls, why)
		}

		if e.complete {
			if o.err != nil {
				inv := invRecovered
				if e.fault == nil {
					inv = invNoFailures
				}
				bad(inv, "should have completed (%s), failed: %v", e.doc.source, o.err)
			} else if !o.exactly(o.total) || o.unexpected > 0 {
				bad(invEvents, "completed with %d of %d events in order (%d skipped, %d not in the stream)",
					o.prefix, o.total, o.skipped, o.unexpected)
			}
			continue
		}

		if o.err == nil {
			bad(invStatus, "ended without an error; want %s (%s), with exactly %d events before it", e.wantFailure(), e.doc.source, e.events)
			continue
		}
		if !o.exactly(e.events) {
			bad(invEvents, "the consumer got %d events (%d of them the stream's first, in order); want exactly the %d before the fault",
				o.delivered, o.prefix, e.events)
		}
		st := statusOf(o.err)
		var se *smithyext.StatusError
		isSE := errors.As(o.err, &se)
		switch {
		case st == 200:
			bad(invStatus, "failure reports HTTP 200, want %s: %v", e.wantFailure(), o.err)
		case e.doc.status != 0 && st != e.doc.status:
			bad(invStatus, "failure has HTTP %d, want %s (%s): %v", st, e.wantFailure(), e.doc.source, o.err)
		case e.doc.status == 0 && (!isSE || se.Kind != e.kind):
			bad(invStatus, "failure is not a StatusError of kind %s: %v", e.kind, o.err)
		}
		if r, ok := retryableOf(o.err); ok && r != e.doc.retryable {
			bad(invRetryable, "RetryableError() = %v, want %s (%s)", r, e.wantFailure(), e.doc.source)
		} else if !ok && !e.fault.kind.http {
			bad(invRetryable, "failure has no RetryableError(), want %s", e.wantFailure())
		}
		if isSE && se.Events != o.delivered {
			bad(invCount, "StatusError.EventsDelivered() = %d, the consumer got %d events", se.Events, o.delivered)
		}
		var rid interface{ ServiceRequestID() string }
		if want := s.requestIDs[i]; !errors.As(o.err, &rid) {
			bad(invRequestID, "failure has no ServiceRequestID(), want %q (the response's x-amzn-RequestId)", want)
		} else if got := rid.ServiceRequestID(); got != want {
			bad(invRequestID, "ServiceRequestID() = %q, want %q (the x-amzn-RequestId of the call's last attempt)", got, want)
		}
		if got := classify.Classify(o.err).Throttle; got != e.doc.throttle {
			bad(invThrottle, "throttle = %v, want %v (%s)", got, e.doc.throttle, e.doc.source)
		}
		if e.doc.code != "" {
			var ae smithy.APIError
			if !errors.As(o.err, &ae) {
				bad(invCode, "failure is no smithy.APIError, want ErrorCode() %q", e.doc.code)
			} else if ae.ErrorCode() != e.doc.code {
				bad(invCode, "ErrorCode() = %q, want the modeled code %q (%s)", ae.ErrorCode(), e.doc.code, e.doc.source)
			}
		}
		if name, is := modeledType(e.fault); is != nil && !is(o.err) {
			bad(invModeled, "errors.As finds no %s in the failure: %v", name, o.err)
		}
	}
	return append(out, recordedViolations(cfg, s)...)
}

// recordedViolations holds what the streamstatus side's clients recorded
// through their MeterProvider (streamstatus.stream.failures) against the
// failures the endpoint sent: one per attempt that a fault inside the
// stream (or a stall) ended, with its position and the code the README
// says is recorded for it (recordedCode). An HTTP error answer has no
// stream and records nothing. Not checked when streamcheck's own timeout
// ended a call: what that call's attempts recorded is unknown.
func recordedViolations(cfg checkConfig, s *sideRun) []string {
	if s.recorded == nil {
		return nil
	}
	want := map[string]int64{}
	for i, o := range s.outcomes {
		if o.toolTimeout {
			return nil
		}
		n := i + 1
		op := opOf(n)
		p := cfg.spec.choose(cfg.seed, n)
		for a := 1; a <= len(s.attempts[i]); a++ {
			end, err := attemptOutcome(cfg, op, p.forAttempt(op, a))
			if err != nil || end.fault == nil || end.fault.kind.http {
				continue
			}
			want[recordedCode(end)+" "+recordedPosition(end.beforeContent)]++
		}
	}
	got := s.recorded.snapshot()
	keys := mergeKeys(want, got)
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		if want[k] != got[k] {
			code, pos, _ := strings.Cut(k, " ")
			out = append(out, fmt.Sprintf("all calls: [%s] the clients' MeterProvider got %d streamstatus.stream.failures of %s %s; "+
				"the faults the endpoint sent make %d", invRecorded, got[k], code, pos, want[k]))
		}
	}
	return out
}

// recordedCode is the exception.type the README says a failure is
// recorded with: the modeled code of a Bedrock exception; an error
// message's code as sent when it looks like a modeled code (a letter, then
// letters, digits, '_' or '.', at most 64 bytes), else UnknownError; an
// envelope's type when Anthropic's table has it, else UnknownEnvelopeError
// (never text of a payload); StreamInterrupted for a reset or a cut,
// CorruptFrame for a corrupt frame, StreamStalled for a stall.
func recordedCode(end attemptEnd) string {
	r := end.fault
	switch {
	case end.stalled:
		return "StreamStalled"
	case r.kind.name == "reset", r.kind.name == "cut":
		return "StreamInterrupted"
	case r.kind.name == "corrupt":
		return "CorruptFrame"
	case r.kind.name == "anthropicError":
		if end.doc.source != srcUnknown {
			return end.doc.code // the row's (lookups ignore case)
		}
		return "UnknownEnvelopeError"
	case r.kind.name == "error":
		if end.doc.source != srcUnknown || looksModeled(r.code) {
			return end.doc.code // the row's, or the code sent
		}
		return "UnknownError"
	}
	return end.doc.code
}

// looksModeled reports whether a wire code has the shape of a modeled
// code: a letter, then letters, digits, '_' or '.', at most 64 bytes.
func looksModeled(code string) bool {
	if code == "" || len(code) > 64 {
		return false
	}
	for i, c := range code {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '_' || c == '.')) {
			return false
		}
	}
	return true
}

// recordedPosition is the streamstatus.position of a failure.
func recordedPosition(beforeContent bool) string {
	if beforeContent {
		return "before_content"
	}
	return "after_content"
}

// mergeKeys returns the keys of a and b, each once.
func mergeKeys(a, b map[string]int64) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	return keys
}

// bareEnd says how the bare SDK's call ended.
func bareEnd(o outcome) string {
	if o.err == nil {
		return "no error"
	}
	return failureKey(o.err)
}

// modeledType is the modeled error a fault's failure must unwrap to, by
// name and as a test; is is nil for faults without one (connection faults,
// HTTP answers, which the SDK deserializes itself).
func modeledType(r *rule) (name string, is func(error) bool) {
	switch r.kind.name {
	case "error":
		return fmt.Sprintf("*smithy.GenericAPIError with code %q", r.code), func(err error) bool {
			var g *smithy.GenericAPIError
			return errors.As(err, &g) && g.Code == r.code
		}
	case "anthropicError":
		return fmt.Sprintf("*smithy.GenericAPIError with code %q", r.envType), func(err error) bool {
			var g *smithy.GenericAPIError
			return errors.As(err, &g) && g.Code == r.envType
		}
	}
	switch r.kind.exception {
	case "internalServerException":
		return "*types.InternalServerException", isA[*types.InternalServerException]
	case "serviceUnavailableException":
		return "*types.ServiceUnavailableException", isA[*types.ServiceUnavailableException]
	case "throttlingException":
		return "*types.ThrottlingException", isA[*types.ThrottlingException]
	case "modelStreamErrorException":
		return "*types.ModelStreamErrorException", func(err error) bool {
			var m *types.ModelStreamErrorException
			return errors.As(err, &m) && (r.orig == 0 || (m.OriginalStatusCode != nil && int(*m.OriginalStatusCode) == r.orig))
		}
	case "modelTimeoutException":
		return "*types.ModelTimeoutException", isA[*types.ModelTimeoutException]
	case "validationException":
		return "*types.ValidationException", isA[*types.ValidationException]
	}
	return "", nil
}

// isA reports whether errors.As finds a T in err.
func isA[T error](err error) bool {
	var t T
	return errors.As(err, &t)
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
	if r.FirstEventTimeoutMs > 0 || r.IdleTimeoutMs > 0 {
		timeout := func(v float64) string {
			if v == 0 {
				return "off"
			}
			return roundForTable(v)
		}
		fmt.Fprintf(w, "streamstatus side: first-event timeout %s, idle timeout %s (none on the bare side: it waits out every pause)\n",
			timeout(r.FirstEventTimeoutMs), timeout(r.IdleTimeoutMs))
	}
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
	width := len("time to first event p99")
	for _, k := range fkeys {
		width = max(width, len("failed: "+k))
	}
	rkeys := make([]string, 0, len(r.Plugin.Recorded))
	for k := range r.Plugin.Recorded {
		rkeys = append(rkeys, k)
		width = max(width, len("recorded: "+k))
	}
	sort.Strings(rkeys)
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
	fmt.Fprintf(w, "(time to first event over the %d calls with an event on both sides)\n", r.Plugin.FirstEventCalls)
	dur("time to first event p50", func(s sideFigures) float64 { return s.FirstEventP50Ms })
	dur("time to first event p99", func(s sideFigures) float64 { return s.FirstEventP99Ms })
	dur("wall time", func(s sideFigures) float64 { return s.WallMs })
	for _, k := range rkeys {
		row("recorded: "+k, "-", fmt.Sprint(r.Plugin.Recorded[k]))
	}

	fmt.Fprintln(w, "\nrows:")
	writeRowDefs(w)

	fmt.Fprintln(w)
	switch {
	case r.ToolTimeouts.Both > 0:
		fmt.Fprintln(w, "INCONCLUSIVE:", r.ToolTimeouts.Explanation)
	case r.ToolTimeouts.Explanation != "":
		fmt.Fprintln(w, "note:", r.ToolTimeouts.Explanation)
	}
	switch {
	case !r.PluginInvariants.Met:
		fmt.Fprintln(w, "streamstatus FAILED its invariants:")
		for _, v := range r.PluginInvariants.Violations {
			fmt.Fprintln(w, "  -", v)
		}
	case r.ToolTimeouts.Both > 0:
		fmt.Fprintln(w, "streamstatus met its invariants on every call the check could finish (see INCONCLUSIVE above).")
	default:
		fmt.Fprintln(w, "streamstatus met its invariants: every retryable fault before content was recovered, every other fault failed "+
			"after exactly one server call with exactly the events before it, no event was delivered twice or missed, and every "+
			"failure carries the documented status.")
	}
}

// rowDefs defines the rows of the table, in order; -h and the table's
// footer print them, -json gives them as "rows".
var rowDefs = []struct{ name, def string }{
	{"calls", "calls made on the side, the same numbered calls with the same faults on both sides"},
	{"completed", "calls whose stream ended without an error and with every event of the healthy stream"},
	{"failed: STATUS CODE", "failed calls by the HTTP status and code their error reports to errors.As (never 200)"},
	{"failed: typed KIND: CODE", "failed calls whose StatusError has no HTTP status: a connection fault, a corrupt frame, " +
		"or a stall (transport: StreamStalled, a pause the streamstatus side's -first-event-timeout or -idle-timeout cut)"},
	{"failed: no status: CAUSE", "failed calls whose error has no status, by cause (e.g. the SDK's request-body race, DESIGN §3), " +
		"and calls that ended without an error but with events missing or an error envelope delivered as content"},
	{"failed: " + toolTimeoutKey, "calls streamcheck gave up on (its own per-call timeout): not checked, not counted as violations"},
	{"transparent retries", "server calls minus calls: attempts the retryer made without the caller seeing them"},
	{"server calls", "requests the side's endpoint received, every attempt included"},
	{"events delivered", "events the consumers received, over all calls"},
	{"events duplicated", "events a consumer received a second time"},
	{"events missed", "events of the healthy stream a consumer never got although its call ended without an error " +
		"(a stream cut short or replaced by an error envelope, reported as complete), plus events skipped between two delivered ones"},
	{"time to first event p50", "median time from a call's start to its first event, over the same calls on both sides: " +
		"those that got at least one event on both (the count is in the header of the row)"},
	{"time to first event p99", "99th percentile of the same"},
	{"wall time", "time the side took to run all its calls"},
	{"recorded: CODE POSITION", "failures the streamstatus side's clients recorded through their MeterProvider " +
		"(streamstatus.stream.failures by exception.type and position: before_content or after_content); the bare SDK records none"},
}

// rowDefinitions maps each row name to its definition.
func rowDefinitions() map[string]string {
	m := make(map[string]string, len(rowDefs))
	for _, r := range rowDefs {
		m[r.name] = r.def
	}
	return m
}

// writeRowDefs prints the row definitions, indented.
func writeRowDefs(w io.Writer) {
	width := 0
	for _, r := range rowDefs {
		width = max(width, len(r.name))
	}
	for _, r := range rowDefs {
		fmt.Fprintf(w, "  %-*s  %s\n", width, r.name, r.def)
	}
}

// rowDefsText is writeRowDefs as a string, for -h.
func rowDefsText() string {
	var b strings.Builder
	writeRowDefs(&b)
	return b.String()
}
