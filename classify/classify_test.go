package classify_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	smithy "github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/streamstatus/streamstatus/classify"

	"github.com/streamstatus/streamstatus/internal/framing"
	"github.com/streamstatus/streamstatus/internal/streamerr"
	"github.com/streamstatus/streamstatus/smithyext"
)

var bedrock = streamerr.Stream{Service: "Bedrock Runtime", Operation: "ConverseStream", RequestID: "req-1", Events: 2}

func TestExceptionRows(t *testing.T) {
	c := streamerr.New(classify.New(classify.DefaultTables()...))
	tests := []struct {
		name, exceptionType, payload string
		code                         string
		status                       int
		retryable, throttle          bool
		modeled                      func(error) bool
	}{
		{"internal is a retryable 500", "internalServerException", `{"message":"m"}`, "InternalServerException", 500, true, false, is[*types.InternalServerException]},
		{"unavailable is a retryable 503", "serviceUnavailableException", `{"message":"m"}`, "ServiceUnavailableException", 503, true, false, is[*types.ServiceUnavailableException]},
		{"throttling is a retryable 429 throttle", "throttlingException", `{"message":"m"}`, "ThrottlingException", 429, true, true, is[*types.ThrottlingException]},
		{"model stream error is a retryable 424", "modelStreamErrorException", `{"message":"m","originalStatusCode":500}`, "ModelStreamErrorException", 424, true, false, is[*types.ModelStreamErrorException]},
		{"model stream error with original 429 is a throttle", "modelStreamErrorException", `{"message":"m","originalStatusCode":429}`, "ModelStreamErrorException", 424, true, true, is[*types.ModelStreamErrorException]},
		{"model timeout is a retryable 408", "modelTimeoutException", `{"message":"m"}`, "ModelTimeoutException", 408, true, false, is[*types.ModelTimeoutException]},
		{"validation is a permanent 400", "validationException", `{"message":"m"}`, "ValidationException", 400, false, false, is[*types.ValidationException]},
		{"lookup ignores case", "ThrottlingException", `{"message":"m"}`, "ThrottlingException", 429, true, true, is[*types.ThrottlingException]},
		{"capitalised Message is read", "throttlingException", `{"Message":"m"}`, "ThrottlingException", 429, true, true, is[*types.ThrottlingException]},
		{"unknown type is a permanent 500 with its code kept", "somethingNewException", `{"message":"m"}`, "SomethingNewException", 500, false, false, is[*smithy.GenericAPIError]},
		{"generic row applies to a service without its own", "internalFailure", `{"message":"m"}`, "InternalFailure", 500, true, false, is[*smithy.GenericAPIError]},
		{"non-JSON payload keeps the classification", "throttlingException", `not json`, "ThrottlingException", 429, true, true, is[*types.ThrottlingException]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			se := c.Exception(bedrock, tt.exceptionType, []byte(tt.payload))
			if se.Code != tt.code || se.Status != tt.status || se.Retryable != tt.retryable || se.Throttle != tt.throttle {
				t.Fatalf("got code=%s status=%d retryable=%v throttle=%v", se.Code, se.Status, se.Retryable, se.Throttle)
			}
			if !tt.modeled(se) {
				t.Fatalf("Unwrap = %T", se.Unwrap())
			}
			if tt.payload != "not json" && se.Message != "m" {
				t.Fatalf("message %q, want m", se.Message)
			}
			if se.Service != bedrock.Service || se.Operation != bedrock.Operation || se.RequestID != "req-1" || se.Events != 2 || se.Kind != smithyext.KindException {
				t.Fatalf("stream fields not carried: %+v", se)
			}
		})
	}
}

func is[T error](err error) bool {
	var t T
	return errors.As(err, &t)
}

func TestOverrideRows(t *testing.T) {
	permanentThrottle := classify.Table{ServiceID: "Bedrock Runtime", Source: "test", Rules: []classify.Rule{
		{Type: "throttlingException", Outcome: classify.Outcome{Code: "ThrottlingException", Status: 429}},
	}}
	c := streamerr.New(classify.New(append(classify.DefaultTables(), permanentThrottle)...))
	if se := c.Exception(bedrock, "throttlingException", nil); se.Retryable || se.Throttle {
		t.Fatalf("override ignored: %+v", se)
	}
	if se := c.Exception(bedrock, "internalServerException", nil); !se.Retryable || se.Status != 500 {
		t.Fatalf("rows not overridden were lost: %+v", se)
	}
	if se := streamerr.New(classify.New(classify.DefaultTables()...)).Exception(bedrock, "throttlingException", nil); !se.Retryable {
		t.Fatal("an override changed the defaults")
	}
}

func TestReadError(t *testing.T) {
	c := streamerr.New(classify.New(classify.DefaultTables()...))
	truncated := &framing.FrameError{Err: framing.ErrTruncated, Cause: io.ErrUnexpectedEOF}
	corrupt := &framing.FrameError{Err: framing.ErrMessageCRC}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}

	se := c.ReadError(context.Background(), bedrock, truncated)
	if !se.Retryable || se.Code != classify.CodeStreamInterrupted || se.Kind != smithyext.KindTransport || !errors.Is(se, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated: %+v", se)
	}
	se = c.ReadError(context.Background(), bedrock, reset)
	if !se.Retryable || se.Status != 0 || !errors.Is(se, reset) {
		t.Fatalf("reset: %+v", se)
	}
	se = c.ReadError(context.Background(), bedrock, corrupt)
	if se.Retryable || se.Code != classify.CodeCorruptFrame || se.Kind != smithyext.KindCorrupt || !errors.Is(se, framing.ErrMessageCRC) {
		t.Fatalf("corrupt: %+v", se)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	se = c.ReadError(ctx, bedrock, reset)
	if se.Retryable || se.Code != classify.CodeRequestCanceled || !errors.Is(se, context.Canceled) {
		t.Fatalf("canceled: %+v", se)
	}
}

func TestClassify(t *testing.T) {
	streamErr := streamerr.New(classify.New(classify.DefaultTables()...)).Exception(bedrock, "throttlingException", []byte(`{"message":"slow"}`))
	httpErr := &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 503}},
			Err:      &types.ServiceUnavailableException{Message: ptr("busy")},
		},
		RequestID: "req-503",
	}
	tests := []struct {
		name string
		err  error
		want classify.Result
	}{
		{"nil is the zero result", nil, classify.Result{}},
		{"stream error", streamErr, classify.Result{Source: classify.SourceStream, Status: 429, Code: "ThrottlingException", Message: "slow", Retryable: true, Throttle: true, RequestID: "req-1", Events: 2}},
		{"stream error behind the SDK's wrappers", &smithy.OperationError{ServiceID: "Bedrock Runtime", OperationName: "ConverseStream",
			Err: &retry.MaxAttemptsError{Attempt: 3, Err: streamErr}},
			classify.Result{Source: classify.SourceStream, Status: 429, Code: "ThrottlingException", Message: "slow", Retryable: true, Throttle: true, RequestID: "req-1", Events: 2, Attempts: 3}},
		{"HTTP error", httpErr, classify.Result{Source: classify.SourceHTTP, Status: 503, Code: "ServiceUnavailableException", Message: "busy", Retryable: true, RequestID: "req-503"}},
		{"HTTP throttle", &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 429}}, Err: &types.ThrottlingException{Message: ptr("slow")}}},
			classify.Result{Source: classify.SourceHTTP, Status: 429, Code: "ThrottlingException", Message: "slow", Retryable: true, Throttle: true}},
		{"transport error", &smithyhttp.RequestSendError{Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}},
			classify.Result{Source: classify.SourceTransport, Message: "request send failed, dial tcp: connection refused", Retryable: true}},
		{"canceled context", &smithy.CanceledError{Err: context.Canceled},
			classify.Result{Source: classify.SourceCanceled, Code: classify.CodeRequestCanceled, Message: "canceled, context canceled"}},
		{"deadline", fmt.Errorf("op: %w", context.DeadlineExceeded),
			classify.Result{Source: classify.SourceCanceled, Code: classify.CodeRequestCanceled, Message: "op: context deadline exceeded"}},
		{"plain error", errors.New("bad parameter"), classify.Result{Message: "bad parameter"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify.Classify(tt.err); got != tt.want {
				t.Fatalf("\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestRetryRulesPlugIntoTheSDK(t *testing.T) {
	mse := streamerr.New(classify.New(classify.DefaultTables()...)).Exception(bedrock, "modelStreamErrorException", []byte(`{"originalStatusCode":429}`))
	wrapped := fmt.Errorf("wrapped: %w", mse)
	std := retry.NewStandard(func(o *retry.StandardOptions) {
		o.Throttles = append([]retry.IsErrorThrottle{classify.StatusThrottle{}}, o.Throttles...)
		o.Retryables = append([]retry.IsErrorRetryable{classify.StatusRetryable{}}, o.Retryables...)
	})
	if !std.IsErrorRetryable(wrapped) {
		t.Fatal("standard retryer with StatusRetryable does not retry a wrapped retryable StatusError")
	}
	if got := (retry.IsErrorThrottles(retry.DefaultThrottles)).IsErrorThrottle(mse); got.Bool() {
		t.Fatal("precondition: the SDK's own rules should not know ModelStreamErrorException is a throttle")
	}
	if !(classify.StatusThrottle{}).IsErrorThrottle(wrapped).Bool() {
		t.Fatal("StatusThrottle misses a wrapped throttle")
	}
	if got := (classify.StatusThrottle{}).IsErrorThrottle(errors.New("x")); got.Bool() {
		t.Fatal("StatusThrottle claims an unrelated error")
	}
	perm := streamerr.New(classify.New(classify.DefaultTables()...)).Exception(bedrock, "validationException", nil)
	if got := (classify.StatusRetryable{}).IsErrorRetryable(perm); got.Bool() || got.String() == "unknown" {
		t.Fatalf("StatusRetryable on a permanent error = %v, want false", got)
	}
}

func ptr(s string) *string { return &s }
