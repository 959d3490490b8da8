package smithyext

import (
	"fmt"
	"strings"

	smithy "github.com/aws/smithy-go"
)

// Kind says where a stream failure came from.
type Kind uint8

// Kinds of stream failure.
const (
	// KindException is an event-stream message with :message-type exception
	// (a modeled service exception such as throttlingException).
	KindException Kind = iota + 1
	// KindErrorMessage is an event-stream message with :message-type error
	// (:error-code and :error-message headers).
	KindErrorMessage
	// KindTransport is a connection failure while the stream was read:
	// reset, unexpected EOF, closed connection, truncated frame.
	KindTransport
	// KindCorrupt is a frame that arrived whole but failed validation
	// (bad CRC, impossible length, malformed headers). Not retryable: the
	// same bytes would fail the same way.
	KindCorrupt
	// KindEnvelope is an in-band error inside an ordinary event's payload
	// (for example an Anthropic {"type":"error"} chunk on Bedrock).
	KindEnvelope
)

// String returns a short lower-case name for the kind.
func (k Kind) String() string {
	switch k {
	case KindException:
		return "exception"
	case KindErrorMessage:
		return "error message"
	case KindTransport:
		return "transport"
	case KindCorrupt:
		return "corrupt frame"
	case KindEnvelope:
		return "error envelope"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// StatusError is the typed error for a failure that arrived inside an AWS
// event stream (or broke it), after the HTTP response had already said 200.
//
// It carries the HTTP status the service documents for the failure, so code
// written for ordinary AWS errors keeps working:
//
//   - errors.As(err, &x) with x interface{ HTTPStatusCode() int } finds the
//     mapped status (never the 200 of the stream's response);
//   - the SDK retryer reads RetryableError() and ErrorCode(), so it retries
//     with the client's own backoff, attempts and retry quota;
//   - Unwrap returns the modeled error (*types.ThrottlingException, ...) where
//     the service is known, or the transport error, so errors.As and
//     errors.Is reach those too.
//
// Fields are exported for logging and tests; treat a StatusError you did not
// create as read-only.
type StatusError struct {
	// Service is the SDK service ID, for example "Bedrock Runtime".
	Service string
	// Operation is the operation name, for example "ConverseStream".
	Operation string
	// Kind says where the failure came from.
	Kind Kind
	// Code is the modeled error code, for example "ThrottlingException"
	// (not the lower-camel :exception-type "throttlingException"), so the
	// SDK's throttle detection recognises it.
	Code string
	// Message is the service's message, as sent.
	Message string
	// Status is the HTTP status the service documents for this failure
	// (HTTPStatusCode returns it; classify.Result.Status and Outcome.Status
	// spell it the same way). It is 0 for transport failures, which have no
	// status.
	Status int
	// Retryable reports whether trying the same request again may succeed.
	Retryable bool
	// Throttle reports whether the failure is a throttle (the SDK spends
	// fewer retry tokens and backs off longer on throttles).
	Throttle bool
	// Fault says whose fault the failure is, as smithy.ErrorFault.
	Fault smithy.ErrorFault
	// RequestID is the x-amzn-RequestId of the response that carried the
	// stream.
	RequestID string
	// Events is the number of events handed to the consumer's stream before
	// the failure. 0 means the failure came before any event.
	Events int
	// Err is the underlying error: the modeled service error, or the
	// transport or framing error. May be nil.
	Err error
}

// Error reads as one line a person can act on, for example
//
//	Bedrock Runtime ConverseStream: ThrottlingException (HTTP 429, retryable, throttle) after 3 events: Too many requests (request id 1a2b)
func (e *StatusError) Error() string {
	var b strings.Builder
	if e.Service != "" {
		b.WriteString(e.Service)
		if e.Operation != "" {
			b.WriteByte(' ')
			b.WriteString(e.Operation)
		}
	} else {
		b.WriteString("event stream")
	}
	b.WriteString(": ")
	b.WriteString(e.ErrorCode())
	b.WriteString(" (")
	if e.Status != 0 {
		fmt.Fprintf(&b, "HTTP %d, ", e.Status)
	} else {
		b.WriteString("no HTTP status, ")
	}
	if e.Retryable {
		b.WriteString("retryable")
	} else {
		b.WriteString("not retryable")
	}
	if e.Throttle {
		b.WriteString(", throttle")
	}
	b.WriteByte(')')
	switch e.Events {
	case 0:
		b.WriteString(" before any event")
	case 1:
		b.WriteString(" after 1 event")
	default:
		fmt.Fprintf(&b, " after %d events", e.Events)
	}
	msg := e.Message
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	if msg != "" {
		b.WriteString(": ")
		b.WriteString(msg)
	}
	if e.RequestID != "" {
		b.WriteString(" (request id ")
		b.WriteString(e.RequestID)
		b.WriteByte(')')
	}
	return b.String()
}

// Unwrap returns the modeled service error or the transport error.
func (e *StatusError) Unwrap() error { return e.Err }

// ErrorCode returns the modeled error code. It satisfies smithy.APIError.
func (e *StatusError) ErrorCode() string {
	if e.Code == "" {
		return "UnknownError"
	}
	return e.Code
}

// ErrorMessage returns the service's message. It satisfies smithy.APIError.
func (e *StatusError) ErrorMessage() string { return e.Message }

// ErrorFault returns whose fault the failure is. It satisfies smithy.APIError.
func (e *StatusError) ErrorFault() smithy.ErrorFault { return e.Fault }

// HTTPStatusCode returns the mapped HTTP status (0 for transport failures).
func (e *StatusError) HTTPStatusCode() int { return e.Status }

// RetryableError reports whether the request may be retried. The SDK's
// retry.RetryableError check asks this before anything else.
func (e *StatusError) RetryableError() bool { return e.Retryable }

// ServiceRequestID returns the x-amzn-RequestId of the streaming response.
func (e *StatusError) ServiceRequestID() string { return e.RequestID }

// EventsDelivered returns how many events the stream handed to the consumer
// before it failed. Only a failure with EventsDelivered() == 0 can be retried
// without the consumer seeing content twice.
func (e *StatusError) EventsDelivered() int { return e.Events }

var _ smithy.APIError = (*StatusError)(nil)
