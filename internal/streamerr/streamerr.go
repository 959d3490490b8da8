// Package streamerr turns what the middlewares meet on a response stream
// (an exception or error message frame, an in-band error envelope, a read
// error, a stall) into a *smithyext.StatusError, using the rows of a
// classify.Classifier. It is the plumbing between classify's tables, which
// users configure, and the middleware package, which reads the streams.
package streamerr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"

	smithy "github.com/aws/smithy-go"

	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/internal/framing"
	"github.com/streamstatus/streamstatus/smithyext"
)

// Classifier is a classify.Classifier with the stream-side classifications.
// It is immutable and safe for concurrent use.
type Classifier struct {
	*classify.Classifier
	envelope func(Stream, *framing.Frame) *smithyext.StatusError // c.chunkEnvelope, bound once
}

// New returns the stream-side classifier over c's rows.
func New(c *classify.Classifier) *Classifier {
	sc := &Classifier{Classifier: c}
	sc.envelope = sc.chunkEnvelope
	return sc
}

// outcome is the rule's outcome for a code, or the unknown outcome when no
// table has the code.
func (c *Classifier) outcome(serviceID, code string) classify.Outcome {
	if r, ok := c.Rule(serviceID, code); ok {
		return r.Outcome
	}
	return unknownOutcome(code)
}

// unknownOutcome is the classification of an exception no table knows.
// Without a modeled type there is no way to tell whether the request is safe
// to send again, so it is not retried; the status is the generic 500.
func unknownOutcome(code string) classify.Outcome {
	return classify.Outcome{Code: code, Status: 500, Fault: smithy.FaultUnknown}
}

// exportedCode turns a wire exception type ("throttlingException") into the
// modeled code ("ThrottlingException").
func exportedCode(t string) string {
	if t == "" || t[0] < 'a' || t[0] > 'z' {
		return t
	}
	return string(t[0]-'a'+'A') + t[1:]
}

// Stream identifies the stream a failure happened on; it fills the
// corresponding StatusError fields.
type Stream struct {
	Service   string // SDK service ID, e.g. "Bedrock Runtime"
	Operation string // e.g. "ConverseStream"
	RequestID string // x-amzn-RequestId of the streaming response
	Events    int    // events handed to the consumer before the failure
}

func (s Stream) statusError(kind smithyext.Kind, o classify.Outcome, msg string, cause error) *smithyext.StatusError {
	return &smithyext.StatusError{
		Service: s.Service, Operation: s.Operation, RequestID: s.RequestID, Events: s.Events,
		Kind: kind, Code: o.Code, Message: msg, Status: o.Status,
		Retryable: o.Retryable, Throttle: o.Throttle, Fault: o.Fault, Err: cause,
	}
}

// Frame classifies an exception or error message frame. It returns nil for
// any other frame (events pass through unclassified).
//
// For an exception, the service's rule decides the outcome; the JSON payload
// is decoded into the rule's modeled error, which becomes StatusError.Err.
// For an error message (:error-code, :error-message), the code is looked up
// like an exception type.
func (c *Classifier) Frame(s Stream, f *framing.Frame) *smithyext.StatusError {
	switch f.MessageType() {
	case framing.MessageTypeException:
		return c.Exception(s, string(f.ExceptionType()), f.Payload())
	case framing.MessageTypeError:
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
		// A copy: payload is the stream's frame buffer, which goes back
		// to a pool shared by all streams when this one ends, and a
		// user's Decode may keep what it is given (Rule.Decode).
		cause = r.Decode(bytes.Clone(payload))
	} else {
		cause = &smithy.GenericAPIError{Code: o.Code, Message: msg, Fault: o.Fault}
	}
	if r.Refine != nil {
		r.Refine(cause, &o)
	}
	return s.statusError(smithyext.KindException, o, msg, cause)
}

// Stalled classifies a stream the plugin closed because it stalled; cause
// says which timeout expired. A stall is retryable, like a dropped
// connection, and has no HTTP status. It is never a context error: the
// caller's own cancellation or deadline is reported by ReadError, as
// RequestCanceled.
func (c *Classifier) Stalled(s Stream, cause error) *smithyext.StatusError {
	return s.statusError(smithyext.KindTransport, classify.Outcome{Code: classify.CodeStreamStalled, Retryable: true, Fault: smithy.FaultServer},
		"the stream stalled and its connection was closed: "+cause.Error(), cause)
}

// ReadError classifies an error met while reading a stream's body (other
// than a clean io.EOF): a transport failure is retryable, a corrupt frame is
// not, and a canceled or expired context is not. ctx is the context of the
// call; its error, when set, wins over the read error it caused.
func (c *Classifier) ReadError(ctx context.Context, s Stream, err error) *smithyext.StatusError {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return s.statusError(smithyext.KindTransport, classify.Outcome{Code: classify.CodeRequestCanceled}, "the call's context ended while the stream was read: "+ctxErr.Error(), errors.Join(ctxErr, err))
	}
	var fe *framing.FrameError
	if errors.As(err, &fe) && !errors.Is(err, framing.ErrTruncated) {
		return s.statusError(smithyext.KindCorrupt, classify.Outcome{Code: classify.CodeCorruptFrame, Fault: smithy.FaultServer},
			"the stream carried a corrupt frame; sending the request again is unlikely to help: "+err.Error(), err)
	}
	return s.statusError(smithyext.KindTransport, classify.Outcome{Code: classify.CodeStreamInterrupted, Retryable: true, Fault: smithy.FaultServer},
		"the connection failed while the stream was read: "+err.Error(), err)
}
