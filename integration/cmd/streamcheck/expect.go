package main

import (
	"fmt"

	"github.com/streamstatus/streamstatus/smithyext"
)

// This file is what the check expects of the streamstatus side, fault by
// fault. The outcomes are written out here from the documented tables, on
// purpose not read from package classify: the check must be able to fail
// when classify's tables are wrong.

// documented is one row of a documented table: the HTTP status a failure
// must carry and whether the documentation says a retry may cure it.
type documented struct {
	status    int
	retryable bool
	source    string
}

// Sources of the rows below.
const (
	srcBedrock   = "Bedrock stream exceptions (README status table, DESIGN §2)"
	srcAnthropic = "Anthropic error types (docs.anthropic.com/en/api/errors)"
	srcAWSCodes  = "AWS common errors (docs.aws.amazon.com/bedrock/latest/APIReference/CommonErrors.html)"
	srcUnknown   = "unknown exception type: 500, not retried (DESIGN §2)"
	srcHTTP      = "HTTP error answer: left to the SDK's standard retryer (500, 502, 503, 504 and throttle codes retried)"
	srcTransport = "connection failure: a transport StatusError, retryable (README \"What you get on an error\")"
	srcCorrupt   = "corrupt frame: a corrupt-frame StatusError, not retryable (README \"What you get on an error\")"
)

// bedrockExceptions is the Bedrock Runtime status table, by :exception-type.
var bedrockExceptions = map[string]documented{
	"internalServerException":     {500, true, srcBedrock},
	"serviceUnavailableException": {503, true, srcBedrock},
	"throttlingException":         {429, true, srcBedrock},
	"modelStreamErrorException":   {424, true, srcBedrock},
	"modelTimeoutException":       {408, true, srcBedrock},
	"validationException":         {400, false, srcBedrock},
}

// anthropicErrors is Anthropic's published error list, by error.type.
var anthropicErrors = map[string]documented{
	"invalid_request_error": {400, false, srcAnthropic},
	"authentication_error":  {401, false, srcAnthropic},
	"permission_error":      {403, false, srcAnthropic},
	"not_found_error":       {404, false, srcAnthropic},
	"request_too_large":     {413, false, srcAnthropic},
	"rate_limit_error":      {429, true, srcAnthropic},
	"api_error":             {500, true, srcAnthropic},
	"overloaded_error":      {529, true, srcAnthropic},
}

// awsErrorCodes are the :error-code values of error messages with a
// documented status: the AWS common errors, and the SDK's throttle codes
// (aws/retry DefaultThrottleErrorCodes) as 429.
var awsErrorCodes = map[string]documented{
	"InternalFailure":             {500, true, srcAWSCodes},
	"ServiceUnavailable":          {503, true, srcAWSCodes},
	"ThrottlingException":         {429, true, srcAWSCodes},
	"Throttling":                  {429, true, srcAWSCodes},
	"ValidationError":             {400, false, srcAWSCodes},
	"ValidationException":         {400, false, srcAWSCodes},
	"AccessDeniedException":       {403, false, srcAWSCodes},
	"UnrecognizedClientException": {403, false, srcAWSCodes},
	"ExpiredTokenException":       {403, false, srcAWSCodes},
	"ResourceNotFoundException":   {404, false, srcAWSCodes},
}

// unknownType is the row of an exception, error code or envelope type no
// table lists.
var unknownType = documented{500, false, srcUnknown}

// httpRetryable is what the SDK's standard retryer retries of the HTTP
// answers httpFault sends: 500, 502, 503 and 504 by status, 429 by its
// x-amzn-ErrorType ThrottlingException (aws/retry
// DefaultRetryableHTTPStatusCodes, DefaultThrottleErrorCodes). streamstatus
// leaves HTTP answers to the retryer, so the bare SDK's rule is the rule.
var httpRetryable = map[int]bool{429: true, 500: true, 502: true, 503: true, 504: true}

// documentedOutcome is the documented row of a fault's failure.
func documentedOutcome(r *rule) documented {
	lookup := func(m map[string]documented, key string) documented {
		if d, ok := m[key]; ok {
			return d
		}
		return unknownType
	}
	switch r.kind.name {
	case "http":
		return documented{r.status, httpRetryable[r.status], srcHTTP}
	case "error":
		return lookup(awsErrorCodes, r.code)
	case "anthropicError":
		return lookup(anthropicErrors, r.envType)
	case "reset", "cut":
		return documented{0, true, srcTransport}
	case "corrupt":
		return documented{0, false, srcCorrupt}
	}
	return lookup(bedrockExceptions, r.kind.exception)
}

// expectation is what the streamstatus side must produce for one call.
type expectation struct {
	fault    *rule // the ending fault of the first attempt; nil for none
	complete bool  // the call completes with the whole healthy stream
	// serverCalls is exactly how many requests the endpoint must see.
	serverCalls int
	// events is how many events the consumer must get when the call fails:
	// exactly the healthy stream's first events.
	events int
	// upTo relaxes events for a reset: the consumer gets the first events
	// in order, at most events of them. A TCP RST lets the client's kernel
	// drop bytes that arrived but were not read yet (RFC 793 §3.4: on a
	// reset "all segment queues should be flushed"), so no client can be
	// held to all of them.
	upTo bool
	// doc is the documented row of the failure (when !complete).
	doc documented
	// kind is the StatusError kind of a failure without an HTTP status.
	kind smithyext.Kind
	// beforeContent says the fault came before any content event.
	beforeContent bool
}

// expect is what the documented tables say call n must come to on the
// streamstatus side, with retryer attempts maxAttempts.
func expect(cfg checkConfig, n int) expectation {
	op := opOf(n)
	p := cfg.spec.choose(cfg.seed, n)
	first := p.forAttempt(op, 1).ending
	if first == nil {
		return expectation{complete: true, serverCalls: 1}
	}
	e := expectation{fault: first, doc: documentedOutcome(first)}
	switch first.kind.name {
	case "reset", "cut":
		e.kind = smithyext.KindTransport
	case "corrupt":
		e.kind = smithyext.KindCorrupt
	}
	pos := 0 // events the consumer gets before the fault
	if !first.kind.http {
		labels := streamLen(op, cfg.events)
		pos = min(first.frame, labels)
		if first.kind.name == "cut" || first.kind.name == "corrupt" {
			pos = min(first.frame, labels-1)
		}
	}
	e.beforeContent = first.kind.http || pos <= nonContentOf(op)
	if !e.beforeContent {
		e.serverCalls, e.events, e.upTo = 1, pos, first.kind.name == "reset"
		return e
	}
	if !e.doc.retryable {
		e.serverCalls = 1
		return e
	}
	faulted := 0
	for a := 1; a <= maxAttempts && first.appliesTo(op, a); a++ {
		faulted++
	}
	if faulted < maxAttempts {
		e.complete, e.serverCalls = true, faulted+1
		return e
	}
	e.serverCalls = maxAttempts
	return e
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
