package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/streamstatus/streamstatus/smithyext"
)

// This file is what the check expects of the streamstatus side, fault by
// fault. The outcomes are written out here from the documented tables, on
// purpose not read from package classify: the check must be able to fail
// when classify's tables are wrong.

// documented is one row of a documented table: the HTTP status a failure
// must carry, whether the documentation says a retry may cure it, whether
// it is a throttle, and the code ErrorCode() must give.
type documented struct {
	status    int
	retryable bool
	throttle  bool
	code      string // "" when the row names none (HTTP answers without an error type)
	source    string
}

// Sources of the rows below.
const (
	srcBedrock     = "Bedrock stream exceptions (README status table, DESIGN §2)"
	srcAnthropic   = "Anthropic error types (docs.anthropic.com/en/api/errors)"
	srcAWSCodes    = "AWS common errors (docs.aws.amazon.com/bedrock/latest/APIReference/CommonErrors.html)"
	srcBedrockAPI  = "Bedrock API reference, InvokeModel errors (docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html)"
	srcSDKThrottle = "aws-sdk-go-v2 aws/retry DefaultThrottleErrorCodes (throttle codes: 429, retried, a throttle)"
	srcSDKRetry    = "aws-sdk-go-v2 aws/retry DefaultRetryableErrorCodes (retried; 408, HTTP's Request Timeout)"
	srcUnknown     = "unknown exception type or error code: 500, not retried (DESIGN §2)"
	srcHTTP        = "HTTP error answer: left to the SDK's standard retryer (500, 502, 503, 504 and throttle codes retried)"
	srcTransport   = "connection failure: a transport StatusError, retryable (README \"What you get on an error\")"
	srcCorrupt     = "corrupt frame: a corrupt-frame StatusError, not retryable (README \"What you get on an error\")"
	srcStall       = "stall: a pause the -first-event-timeout or -idle-timeout cut, a transport StatusError StreamStalled, retryable (middleware.WithFirstEventTimeout, WithIdleTimeout)"
)

// bedrockExceptions is the Bedrock Runtime status table, by :exception-type
// (DESIGN §2: the modeled code is the type with a capital first letter).
var bedrockExceptions = map[string]documented{
	"internalServerException":     {500, true, false, "InternalServerException", srcBedrock},
	"serviceUnavailableException": {503, true, false, "ServiceUnavailableException", srcBedrock},
	"throttlingException":         {429, true, true, "ThrottlingException", srcBedrock},
	"modelStreamErrorException":   {424, true, false, "ModelStreamErrorException", srcBedrock}, // a throttle when orig=429
	"modelTimeoutException":       {408, true, false, "ModelTimeoutException", srcBedrock},
	"validationException":         {400, false, false, "ValidationException", srcBedrock},
}

// anthropicErrors is Anthropic's published error list, by error.type; the
// code is the type (README "Anthropic models ... fail in band").
var anthropicErrors = map[string]documented{
	"invalid_request_error": {400, false, false, "invalid_request_error", srcAnthropic},
	"authentication_error":  {401, false, false, "authentication_error", srcAnthropic},
	"permission_error":      {403, false, false, "permission_error", srcAnthropic},
	"not_found_error":       {404, false, false, "not_found_error", srcAnthropic},
	"request_too_large":     {413, false, false, "request_too_large", srcAnthropic},
	"rate_limit_error":      {429, true, true, "rate_limit_error", srcAnthropic},
	"api_error":             {500, true, false, "api_error", srcAnthropic},
	"overloaded_error":      {529, true, true, "overloaded_error", srcAnthropic},
}

// awsCommonErrors are the :error-code values of error messages with a
// documented status on the AWS common errors page, plus the server errors
// of the same names with Exception (the Bedrock exceptions' modeled codes).
var awsCommonErrors = map[string]documented{
	"InternalFailure":             {500, true, false, "", srcAWSCodes},
	"InternalServerError":         {500, true, false, "", srcAWSCodes},
	"InternalServerException":     {500, true, false, "", srcAWSCodes},
	"ServiceUnavailable":          {503, true, false, "", srcAWSCodes},
	"ServiceUnavailableException": {503, true, false, "", srcAWSCodes},
	"ValidationError":             {400, false, false, "", srcAWSCodes},
	"ValidationException":         {400, false, false, "", srcAWSCodes},
	"SerializationException":      {400, false, false, "", srcAWSCodes},
	"AccessDeniedException":       {403, false, false, "", srcAWSCodes},
	"UnrecognizedClientException": {403, false, false, "", srcAWSCodes},
	"ExpiredTokenException":       {403, false, false, "", srcAWSCodes},
	"ResourceNotFoundException":   {404, false, false, "", srcAWSCodes},
	// Bedrock's own quota error (API reference, InvokeModel errors: 400).
	"ServiceQuotaExceededException": {400, false, false, "", srcBedrockAPI},
}

// sdkThrottleErrorCodes is aws-sdk-go-v2 aws/retry DefaultThrottleErrorCodes,
// copied from aws/retry/standard.go of github.com/aws/aws-sdk-go-v2 v1.48.0
// (the module cache), not imported, so a change in the SDK's list shows up
// as a failing check: an error message with one of these codes is a
// throttle, 429, retried.
var sdkThrottleErrorCodes = []string{
	"Throttling",
	"ThrottlingException",
	"ThrottledException",
	"RequestThrottledException",
	"TooManyRequestsException",
	"ProvisionedThroughputExceededException",
	"TransactionInProgressException",
	"RequestLimitExceeded",
	"BandwidthLimitExceeded",
	"LimitExceededException",
	"RequestThrottled",
	"SlowDown",
	"PriorRequestNotComplete",
	"EC2ThrottledException",
}

// sdkRetryableErrorCodes is aws-sdk-go-v2 aws/retry
// DefaultRetryableErrorCodes, copied likewise: retried, 408.
var sdkRetryableErrorCodes = []string{
	"RequestTimeout",
	"RequestTimeoutException",
}

// awsErrorCodes are the :error-code values of error messages with a
// documented row: the AWS common errors, the SDK's throttle codes (429,
// retried, throttle) and the SDK's retryable codes (408, retried). Any
// other code is an unknown type (DESIGN §2). Codes are looked up ignoring
// case; ErrorCode() is the row's code (lookupFold).
var awsErrorCodes = func() map[string]documented {
	m := map[string]documented{}
	for c, d := range awsCommonErrors {
		m[c] = d
	}
	for _, c := range sdkThrottleErrorCodes {
		m[c] = documented{429, true, true, "", srcSDKThrottle}
	}
	for _, c := range sdkRetryableErrorCodes {
		m[c] = documented{408, true, false, "", srcSDKRetry}
	}
	return m
}()

// lookupFold returns the row of m whose key equals code ignoring case, as
// the tables are looked up (classify.Rule), with the row's code: its own,
// or else its key.
func lookupFold(m map[string]documented, code string) (documented, bool) {
	for k, d := range m {
		if strings.EqualFold(k, code) {
			if d.code == "" {
				d.code = k
			}
			return d, true
		}
	}
	return documented{}, false
}

// unknownType is the row of an exception, error code or envelope type no
// table lists.
var unknownType = documented{500, false, false, "", srcUnknown}

// httpRetryable is what the SDK's standard retryer retries of the HTTP
// answers httpFault sends: 500, 502, 503 and 504 by status, 429 by its
// x-amzn-ErrorType ThrottlingException (aws/retry
// DefaultRetryableHTTPStatusCodes, DefaultThrottleErrorCodes). streamstatus
// leaves HTTP answers to the retryer, so the bare SDK's rule is the rule.
var httpRetryable = map[int]bool{429: true, 500: true, 502: true, 503: true, 504: true}

// documentedOutcome is the documented row of a fault's failure, with the
// code its error must give.
func documentedOutcome(r *rule) documented {
	lookup := func(m map[string]documented, key string) documented {
		if d, ok := m[key]; ok {
			return d
		}
		return unknownType
	}
	var d documented
	switch r.kind.name {
	case "http":
		// The code is the x-amzn-ErrorType httpFault sends, as the SDK
		// reads it; 429 (ThrottlingException) is a throttle.
		return documented{r.status, httpRetryable[r.status], r.status == 429, httpErrorTypes[r.status], srcHTTP}
	case "error":
		// Looked up as an exception type of the operation's service
		// first, then among the AWS codes, ignoring case (classify.Rule);
		// the code is the row's, or the code sent when no row has it.
		if d, ok := lookupFold(bedrockExceptions, r.code); ok {
			return d
		}
		if d, ok := lookupFold(awsErrorCodes, r.code); ok {
			return d
		}
		d = unknownType
		d.code = r.code
	case "anthropicError":
		if d, ok := lookupFold(anthropicErrors, r.envType); ok {
			return d
		}
		d = unknownType
		d.code = r.envType
	case "reset", "cut":
		return documented{0, true, false, "", srcTransport}
	case "corrupt":
		return documented{0, false, false, "", srcCorrupt}
	default:
		d = lookup(bedrockExceptions, r.kind.exception)
		if r.kind.exception == "modelStreamErrorException" && r.orig == 429 {
			d.throttle = true // DESIGN §2: a throttle when originalStatusCode is 429
		}
	}
	return d
}

// expectation is what the streamstatus side must produce for one call.
type expectation struct {
	// fault is the fault that ended the call's last failing attempt: the
	// first attempt's for a call that completes after retries, nil for none.
	// A stall's fault is the slow rule whose pause the timeout cut.
	fault    *rule
	complete bool // the call completes with the whole healthy stream
	// serverCalls is exactly how many requests the endpoint must see.
	serverCalls int
	// events is how many events the consumer must get when the call fails:
	// exactly the healthy stream's first events.
	events int
	// (After a reset too: the fake waits until the client's kernel has
	// acknowledged every frame before the reset, so a client reads them
	// all; see fake.Reset.)
	// doc is the documented row of the failure (when !complete).
	doc documented
	// kind is the StatusError kind of a failure without an HTTP status.
	kind smithyext.Kind
	// beforeContent says the fault came before any content event.
	beforeContent bool
	// stalled says the failure is a stall: a slow pause the streamstatus
	// side's -first-event-timeout or -idle-timeout cut.
	stalled bool
}

// attemptEnd is how one attempt of a call ends on the streamstatus side.
type attemptEnd struct {
	fault         *rule // nil: the stream completes
	doc           documented
	kind          smithyext.Kind
	pos           int  // events the consumer gets before the end (after content)
	beforeContent bool // the attempt ended before its first content event
	stalled       bool
}

// expect is what the documented tables say call n must come to on the
// streamstatus side, with retryer attempts maxAttempts: attempt by attempt,
// the faults the endpoint sends it (and the stalls the timeouts make of its
// pauses), retried while a retryable failure comes before content.
//
// It panics on a pause too close to a timeout to predict; runCheck rejects
// those plans first (checkStallPlan).
func expect(cfg checkConfig, n int) expectation {
	op := opOf(n)
	p := cfg.spec.choose(cfg.seed, n)
	var e expectation
	for a := 1; a <= maxAttempts; a++ {
		end, err := attemptOutcome(cfg, op, p.forAttempt(op, a))
		if err != nil {
			panic(fmt.Sprintf("call %d attempt %d: %v", n, a, err))
		}
		if end.fault == nil {
			e.complete, e.serverCalls = true, a
			return e
		}
		if a == 1 {
			// A call that recovers is described by its first fault.
			e.fault, e.doc, e.beforeContent, e.stalled = end.fault, end.doc, end.beforeContent, end.stalled
		}
		if end.beforeContent && end.doc.retryable && a < maxAttempts {
			continue
		}
		e = expectation{fault: end.fault, serverCalls: a, doc: end.doc, kind: end.kind,
			beforeContent: end.beforeContent, stalled: end.stalled}
		if !end.beforeContent {
			e.events = end.pos
		}
		return e
	}
	panic("unreachable: the last attempt always ends the call")
}

// attemptOutcome is how an attempt with the faults p (already narrowed to
// the attempt) ends on the streamstatus side: at its ending fault, at a
// stall the configured timeouts make of one of its pauses, or complete.
func attemptOutcome(cfg checkConfig, op string, p pick) (attemptEnd, error) {
	frames := streamLen(op, cfg.events)
	last := frames // the attempt's last step: the ending fault's frame, or after the last frame
	if r := p.ending; r != nil && !r.kind.http {
		last = min(r.frame, frames)
		if r.kind.name == "cut" || r.kind.name == "corrupt" {
			last = min(r.frame, frames-1)
		}
	}
	if p.ending == nil || !p.ending.kind.http { // an HTTP answer has no stream to pause
		at, slow, err := stallAt(cfg, op, p.slows, last)
		if err != nil {
			return attemptEnd{}, err
		}
		if slow != nil {
			return attemptEnd{fault: slow, doc: stallDoc, kind: smithyext.KindTransport, pos: at,
				beforeContent: at <= nonContentOf(op), stalled: true}, nil
		}
	}
	r := p.ending
	if r == nil {
		return attemptEnd{}, nil
	}
	end := attemptEnd{fault: r, doc: documentedOutcome(r), pos: last}
	switch r.kind.name {
	case "reset", "cut":
		end.kind = smithyext.KindTransport
	case "corrupt":
		end.kind = smithyext.KindCorrupt
	}
	end.beforeContent = r.kind.http || last <= nonContentOf(op)
	return end, nil
}

// stallDoc is the documented row of a stall.
var stallDoc = documented{0, true, false, "StreamStalled", srcStall}

// stallMargin is how far a pause must be from a timeout for the check to
// predict its outcome: the client sees a pause a little longer than the
// endpoint sleeps it, and a timer fires a little late, on a busy machine
// by tens of milliseconds.
func stallMargin(timeout time.Duration) time.Duration {
	return max(timeout/4, 50*time.Millisecond)
}

// idleSpread is how late the idle timeout may fire: the plugin reports an
// idle stall between 1 and 1.25 idle timeouts after the last byte
// (middleware.WithIdleTimeout checks a quarter of the timeout at a time).
const idleSpread = 1.25

// stallAt finds the first pause, among the pauses before frames 0 to last,
// that the streamstatus side's timeouts cut: at is the frame it comes
// before and slow its rule (the first rule pausing there), or nil for
// none. A pause before the first content event counts against
// -first-event-timeout with the pauses before it, every pause against
// -idle-timeout on its own. err says a pause is too close to a timeout
// (within stallMargin) to tell.
func stallAt(cfg checkConfig, op string, slows []*rule, last int) (at int, slow *rule, err error) {
	if cfg.firstEventTimeout <= 0 && cfg.idleTimeout <= 0 {
		return 0, nil, nil
	}
	frames := streamLen(op, cfg.events)
	var waited time.Duration // pauses before the first content event, so far
	for i := 0; i <= last; i++ {
		var pause time.Duration
		var first *rule
		for _, r := range slows {
			if min(r.frame, frames) == i {
				pause += r.pause
				if first == nil {
					first = r
				}
			}
		}
		if first == nil {
			continue
		}
		stall, unsure := false, ""
		if t := cfg.firstEventTimeout; t > 0 && i <= nonContentOf(op) {
			waited += pause
			switch m := stallMargin(t); {
			case waited >= t+m:
				stall = true
			case waited > t-m:
				unsure = fmt.Sprintf("the pauses before the first content event add up to %v, within %v of -first-event-timeout %v", waited, m, t)
			}
		}
		if t := cfg.idleTimeout; t > 0 {
			m := stallMargin(t)
			switch latest := time.Duration(float64(t) * idleSpread); {
			case pause >= latest+m:
				stall = true
			case pause > t-m && unsure == "":
				unsure = fmt.Sprintf("the pause before frame %d is %v; -idle-timeout %v cuts pauses from %v to %v, "+
					"so the outcome is only certain below %v or from %v", i, pause, t, t, latest, t-m, latest+m)
			}
		}
		switch {
		case stall:
			return i, first, nil
		case unsure != "":
			return 0, nil, fmt.Errorf("%s (%s): too close to call; make the pause and the timeout differ more", unsure, describePick(pick{slows: slows}))
		}
	}
	return 0, nil, nil
}

// checkStallPlan returns an error when a pause the plan gives an attempt
// is too close to a timeout for the check to predict whether the
// streamstatus side cuts it.
func checkStallPlan(cfg checkConfig) error {
	if cfg.firstEventTimeout <= 0 && cfg.idleTimeout <= 0 {
		return nil
	}
	for n := 1; n <= cfg.calls; n++ {
		op := opOf(n)
		p := cfg.spec.choose(cfg.seed, n)
		if len(p.slows) == 0 {
			continue
		}
		for a := 1; a <= maxAttempts; a++ {
			if _, err := attemptOutcome(cfg, op, p.forAttempt(op, a)); err != nil {
				return fmt.Errorf("call %d (%s), attempt %d: %v", n, op, a, err)
			}
		}
	}
	return nil
}

// describe renders an expectation for violation messages.
func (e expectation) describe() string {
	if e.fault == nil {
		return "no fault"
	}
	return e.fault.text
}

// wantFailure renders the documented failure, e.g. "HTTP 429, retryable".
func (e expectation) wantFailure() string {
	s := "not retryable"
	if e.doc.retryable {
		s = "retryable"
	}
	if e.doc.status == 0 {
		return fmt.Sprintf("a StatusError of kind %s, %s", e.kind, s)
	}
	return fmt.Sprintf("HTTP %d, %s", e.doc.status, s)
}
