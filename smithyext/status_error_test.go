package smithyext_test

import (
	"errors"
	"io"
	"testing"

	smithy "github.com/aws/smithy-go"

	"github.com/streamstatus/streamstatus/smithyext"
)

func TestStatusErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  *smithyext.StatusError
		want string
	}{
		{"exception before any event",
			&smithyext.StatusError{Service: "Bedrock Runtime", Operation: "InvokeModelWithResponseStream", Code: "ValidationException", Message: "bad", Status: 400},
			"Bedrock Runtime InvokeModelWithResponseStream: ValidationException (HTTP 400, not retryable) before any event: bad"},
		{"one event, singular",
			&smithyext.StatusError{Service: "Bedrock Runtime", Code: "InternalServerException", Status: 500, Retryable: true, Events: 1, Message: "m"},
			"Bedrock Runtime: InternalServerException (HTTP 500, retryable) after 1 event: m"},
		{"transport failure has no status and shows its cause",
			&smithyext.StatusError{Code: "StreamInterrupted", Retryable: true, Events: 7, Err: io.ErrUnexpectedEOF},
			"event stream: StreamInterrupted (no HTTP status, retryable) after 7 events: unexpected EOF"},
		{"missing code",
			&smithyext.StatusError{Status: 500},
			"event stream: UnknownError (HTTP 500, not retryable) before any event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Fatalf("\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestStatusErrorInterfaces(t *testing.T) {
	cause := &smithy.GenericAPIError{Code: "X"}
	se := &smithyext.StatusError{Code: "X", Message: "m", Status: 503, Retryable: true, Fault: smithy.FaultServer, RequestID: "r", Events: 4, Err: cause}
	var api smithy.APIError = se
	if api.ErrorCode() != "X" || api.ErrorMessage() != "m" || api.ErrorFault() != smithy.FaultServer {
		t.Fatal("smithy.APIError methods")
	}
	if se.HTTPStatusCode() != 503 || !se.RetryableError() || se.ServiceRequestID() != "r" || se.EventsDelivered() != 4 {
		t.Fatal("status methods")
	}
	if !errors.Is(se, cause) {
		t.Fatal("Unwrap does not reach the cause")
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[smithyext.Kind]string{
		smithyext.KindException: "exception", smithyext.KindErrorMessage: "error message", smithyext.KindTransport: "transport",
		smithyext.KindCorrupt: "corrupt frame", smithyext.KindEnvelope: "error envelope", smithyext.Kind(99): "Kind(99)",
	} {
		if k.String() != want {
			t.Errorf("%d: %q, want %q", k, k.String(), want)
		}
	}
}
