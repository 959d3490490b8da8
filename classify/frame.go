package classify

import (
	"context"
	"encoding/json"
	"errors"

	smithy "github.com/aws/smithy-go"
	"github.com/streamstatus/streamstatus/smithyext"
)

// Stream identifies the stream a failure happened on; it fills the
// corresponding StatusError fields.
type Stream struct {
	Service   string // SDK service ID, e.g. "Bedrock Runtime"
	Operation string // e.g. "ConverseStream"
	RequestID string // x-amzn-RequestId of the streaming response
	Events    int    // events handed to the consumer before the failure
}

func (s Stream) statusError(kind Kind, o Outcome, msg string, cause error) *smithyext.StatusError {
	return &smithyext.StatusError{
		Service: s.Service, Operation: s.Operation, RequestID: s.RequestID, Events: s.Events,
		Kind: kind, Code: o.Code, Message: msg, StatusCode: o.Status,
		Retryable: o.Retryable, Throttle: o.Throttle, Fault: o.Fault, Err: cause,
	}
}

// Kind is an alias of smithyext.Kind, so callers of this package need not
// import smithyext to switch on it.
type Kind = smithyext.Kind

// Frame classifies an exception or error message frame. It returns nil for
// any other frame (events pass through unclassified).
//
// For an exception, the service's rule decides the outcome; the JSON payload
// is decoded into the rule's modeled error, which becomes StatusError.Err.
// For an error message (:error-code, :error-message), the code is looked up
// like an exception type.
func (c *Classifier) Frame(s Stream, f *smithyext.Frame) *smithyext.StatusError {
	switch f.MessageType() {
	case smithyext.MessageTypeException:
		return c.Exception(s, string(f.ExceptionType()), f.Payload())
	case smithyext.MessageTypeError:
		code := string(f.ErrorCode())
		if code == "" {
			code = "UnknownError"
		}
		o := c.outcome(s.Service, code)
		msg := string(f.ErrorMessage())
		return s.statusError(smithyext.KindErrorMessage, o, msg, &smithy.GenericAPIError{Code: code, Message: msg, Fault: o.Fault})
	}
	return nil
}

// Exception classifies an exception of the given wire type with its JSON
// payload.
func (c *Classifier) Exception(s Stream, exceptionType string, payload []byte) *smithyext.StatusError {
	var body struct {
		Message      string `json:"message"`
		MessageUpper string `json:"Message"`
	}
	_ = json.Unmarshal(payload, &body) // a payload that is not JSON leaves the message empty
	msg := body.Message
	if msg == "" {
		msg = body.MessageUpper
	}
	r, ok := c.Rule(s.Service, exceptionType)
	if !ok {
		code := exportedCode(exceptionType)
		if code == "" {
			code = "UnknownError"
		}
		o := unknownOutcome(code)
		return s.statusError(smithyext.KindException, o, msg, &smithy.GenericAPIError{Code: code, Message: msg, Fault: o.Fault})
	}
	o := r.Outcome
	var cause error
	if r.Decode != nil {
		cause = r.Decode(payload)
	} else {
		cause = &smithy.GenericAPIError{Code: o.Code, Message: msg, Fault: o.Fault}
	}
	if r.Refine != nil {
		r.Refine(cause, &o)
	}
	return s.statusError(smithyext.KindException, o, msg, cause)
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

// Stalled classifies a stream the plugin closed because it stalled; cause
// says which timeout expired. A stall is retryable, like a dropped
// connection, and has no HTTP status. It is never a context error: the
// caller's own cancellation or deadline is reported by ReadError, as
// RequestCanceled.
func (c *Classifier) Stalled(s Stream, cause error) *smithyext.StatusError {
	return s.statusError(smithyext.KindTransport, Outcome{Code: CodeStreamStalled, Retryable: true, Fault: smithy.FaultServer},
		"the stream stalled and its connection was closed: "+cause.Error(), cause)
}

// ReadError classifies an error met while reading a stream's body (other
// than a clean io.EOF): a transport failure is retryable, a corrupt frame is
// not, and a canceled or expired context is not. ctx is the context of the
// call; its error, when set, wins over the read error it caused.
func (c *Classifier) ReadError(ctx context.Context, s Stream, err error) *smithyext.StatusError {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return s.statusError(smithyext.KindTransport, Outcome{Code: CodeRequestCanceled}, "the call's context ended while the stream was read: "+ctxErr.Error(), errors.Join(ctxErr, err))
	}
	var fe *smithyext.FrameError
	if errors.As(err, &fe) && !errors.Is(err, smithyext.ErrTruncated) {
		return s.statusError(smithyext.KindCorrupt, Outcome{Code: CodeCorruptFrame, Fault: smithy.FaultServer},
			"the stream carried a corrupt frame; sending the request again is unlikely to help: "+err.Error(), err)
	}
	return s.statusError(smithyext.KindTransport, Outcome{Code: CodeStreamInterrupted, Retryable: true, Fault: smithy.FaultServer},
		"the connection failed while the stream was read: "+err.Error(), err)
}
