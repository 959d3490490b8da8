package classify

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	smithy "github.com/aws/smithy-go"
	"github.com/streamstatus/streamstatus/smithyext"
)

// Source says which path of an SDK call an error came from.
type Source uint8

// Sources of errors.
const (
	// SourceUnknown is an error none of the other sources describe (for
	// example a parameter validation error raised before sending).
	SourceUnknown Source = iota
	// SourceStream is a failure inside an event stream (a
	// *smithyext.StatusError).
	SourceStream
	// SourceHTTP is an HTTP error response (4xx/5xx) from the service.
	SourceHTTP
	// SourceTransport is a connection failure before a response arrived.
	SourceTransport
	// SourceCanceled is a canceled or expired context.
	SourceCanceled
)

// String returns a short lower-case name for the source.
func (s Source) String() string {
	switch s {
	case SourceStream:
		return "stream"
	case SourceHTTP:
		return "http"
	case SourceTransport:
		return "transport"
	case SourceCanceled:
		return "canceled"
	}
	return "unknown"
}

// Result is the classification of an error from an SDK call.
type Result struct {
	Source    Source // which path of the call the error came from
	Status    int    // HTTP status; 0 when none applies (transport, canceled)
	Code      string // error code, e.g. "ThrottlingException"
	Message   string // the service's message, or the error's text
	Retryable bool   // whether the SDK's rules (with StatusRetryable) retry it
	Throttle  bool   // whether it is a throttle (see IsThrottle)
	RequestID string // x-amzn-RequestId of the response, when there was one
	Events    int    // events delivered before a stream failure
	// Attempts is the number of attempts made, when the error says: a
	// *retry.MaxAttemptsError, or an error with an AttemptCount() int
	// method (a *backoff.ExhaustedError, whatever part of the budget ran
	// out); 0 otherwise.
	Attempts int
}

var (
	sdkRetryables = retry.IsErrorRetryables(append([]retry.IsErrorRetryable{StatusRetryable{}}, retry.DefaultRetryables...))
	sdkThrottles  = retry.IsErrorThrottles(append([]retry.IsErrorThrottle{StatusThrottle{}}, retry.DefaultThrottles...))
)

// Classify returns the status, code and retry decision of any error an SDK
// call can return: a stream failure (*smithyext.StatusError, wrapped or
// not), an HTTP error response, a transport error or a canceled context.
// Retryable and Throttle follow the SDK's default retry rules, extended with
// StatusRetryable and StatusThrottle. Classify(nil) returns the zero Result.
func Classify(err error) Result {
	if err == nil {
		return Result{}
	}
	var r Result
	var maxAttempts *retry.MaxAttemptsError
	var counted interface{ AttemptCount() int }
	if errors.As(err, &counted) {
		r.Attempts = counted.AttemptCount()
	} else if errors.As(err, &maxAttempts) {
		r.Attempts = maxAttempts.Attempt
	}
	var se *smithyext.StatusError
	if errors.As(err, &se) {
		r.Source, r.Status, r.Code, r.Message = SourceStream, se.Status, se.ErrorCode(), se.Message
		r.Retryable, r.Throttle, r.RequestID, r.Events = se.Retryable, se.Throttle, se.RequestID, se.Events
		if se.Code == CodeRequestCanceled {
			r.Source = SourceCanceled
		}
		return r
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || isCanceled(err) {
		r.Source, r.Code, r.Message = SourceCanceled, CodeRequestCanceled, err.Error()
		return r
	}
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) && status.HTTPStatusCode() != 0 {
		r.Source, r.Status = SourceHTTP, status.HTTPStatusCode()
	} else if isConnectionError(err) {
		r.Source = SourceTransport
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		r.Code, r.Message = api.ErrorCode(), api.ErrorMessage()
	} else {
		r.Message = err.Error()
	}
	var reqID interface{ ServiceRequestID() string }
	if errors.As(err, &reqID) {
		r.RequestID = reqID.ServiceRequestID()
	}
	r.Retryable = sdkRetryables.IsErrorRetryable(err).Bool()
	r.Throttle = IsThrottle(err)
	return r
}

// IsThrottle reports whether err is a throttle: a StatusError's own Throttle
// flag (which counts a modelStreamErrorException whose originalStatusCode is
// 429), then the SDK's default rules (throttle error codes, unmodeled 429s).
func IsThrottle(err error) bool { return sdkThrottles.IsErrorThrottle(err).Bool() }

func isCanceled(err error) bool {
	var c interface{ CanceledError() bool }
	return errors.As(err, &c) && c.CanceledError()
}

func isConnectionError(err error) bool {
	return retry.RetryableConnectionError{}.IsErrorRetryable(err) == aws.TrueTernary
}

// StatusRetryable is a retry.IsErrorRetryable that answers from a
// *smithyext.StatusError anywhere in the error chain, and is unknown for
// every other error. The SDK's own retry.RetryableError rule already gives
// the same answer for an unwrapped StatusError; put StatusRetryable first in
// retry.StandardOptions.Retryables when other wrappers with a
// RetryableError method may sit in front of it.
type StatusRetryable struct{}

// IsErrorRetryable implements retry.IsErrorRetryable.
func (StatusRetryable) IsErrorRetryable(err error) aws.Ternary {
	var se *smithyext.StatusError
	if errors.As(err, &se) {
		return aws.BoolTernary(se.Retryable)
	}
	return aws.UnknownTernary
}

// StatusThrottle is a retry.IsErrorThrottle that reports a
// *smithyext.StatusError's Throttle field. It is what makes the SDK treat a
// modelStreamErrorException with originalStatusCode 429 (code
// ModelStreamErrorException, which no SDK code list names) as a throttle for
// backoff and retry cost. Add it with
//
//	retry.NewStandard(func(o *retry.StandardOptions) {
//		o.Throttles = append([]retry.IsErrorThrottle{classify.StatusThrottle{}}, o.Throttles...)
//	})
type StatusThrottle struct{}

// IsErrorThrottle implements retry.IsErrorThrottle.
func (StatusThrottle) IsErrorThrottle(err error) aws.Ternary {
	var se *smithyext.StatusError
	if errors.As(err, &se) && se.Throttle {
		return aws.TrueTernary
	}
	return aws.UnknownTernary
}

// Codes for failures that have no service error code.
const (
	// CodeStreamInterrupted is the code of a stream that broke in transport:
	// a reset or closed connection, or an end of stream inside a frame.
	CodeStreamInterrupted = "StreamInterrupted"
	// CodeCorruptFrame is the code of a frame that failed validation.
	CodeCorruptFrame = "CorruptFrame"
	// CodeRequestCanceled is the code of a stream ended by its context.
	CodeRequestCanceled = "RequestCanceled"
	// CodeStreamStalled is the code of a stream that stalled: no content
	// event within the first-event timeout, or no byte within the idle
	// timeout (middleware.WithFirstEventTimeout, WithIdleTimeout).
	CodeStreamStalled = "StreamStalled"
)
