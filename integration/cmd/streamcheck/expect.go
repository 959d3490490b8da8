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
// other code is an unknown type (DESIGN §2). ErrorCode() is the code sent.
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
		d = lookup(awsErrorCodes, r.code)
		d.code = r.code
	case "anthropicError":
		d = lookup(anthropicErrors, r.envType)
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
	fault    *rule // the ending fault of the first attempt; nil for none
	complete bool  // the call completes with the whole healthy stream
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
		e.serverCalls, e.events = 1, pos
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
