package integration_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/smithyext"
)

// row is one line of the Bedrock status table (DESIGN.md §2), written out
// here independently of package classify so a wrong table fails the tests.
type row struct {
	exceptionType string
	payload       string // JSON payload of the exception
	code          string
	status        int
	retryable     bool
	throttle      bool
	modeled       func(error) bool
}

var bedrockRows = []row{
	{"internalServerException", `{"message":"internal"}`, "InternalServerException", 500, true, false, as[*types.InternalServerException]},
	{"serviceUnavailableException", `{"message":"unavailable"}`, "ServiceUnavailableException", 503, true, false, as[*types.ServiceUnavailableException]},
	{"throttlingException", `{"message":"Too many requests"}`, "ThrottlingException", 429, true, true, as[*types.ThrottlingException]},
	{"modelStreamErrorException", `{"message":"provider failed","originalStatusCode":500,"originalMessage":"boom"}`, "ModelStreamErrorException", 424, true, false, as[*types.ModelStreamErrorException]},
	{"modelTimeoutException", `{"message":"timed out"}`, "ModelTimeoutException", 408, true, false, as[*types.ModelTimeoutException]},
	{"validationException", `{"message":"bad input"}`, "ValidationException", 400, false, false, as[*types.ValidationException]},
}

func (r row) step() fake.Step { return fake.ExceptionPayload(r.exceptionType, []byte(r.payload)) }

// checkStatusError pins everything a user may ask of an error from these paths.
func checkStatusError(t *testing.T, err error, r row, events int, requestID string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want a %s error, got nil", r.code)
	}
	checkNoSecrets(t, err)
	if got, ok := statusOf(err); !ok || got != r.status {
		t.Errorf("errors.As HTTPStatusCode = %d (found %v), want %d; err: %v", got, ok, r.status, err)
	}
	var se *smithyext.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("errors.As *smithyext.StatusError failed; err (%T): %v", err, err)
	}
	if se.RetryableError() != r.retryable || se.ErrorCode() != r.code || se.Throttle != r.throttle {
		t.Errorf("retryable=%v code=%s throttle=%v, want %v %s %v", se.RetryableError(), se.ErrorCode(), se.Throttle, r.retryable, r.code, r.throttle)
	}
	var api interface{ ErrorCode() string }
	if errors.As(err, &api) && api.ErrorCode() != r.code {
		t.Errorf("first ErrorCode() in chain = %s, want %s", api.ErrorCode(), r.code)
	}
	if se.ServiceRequestID() != requestID || requestID == "" {
		t.Errorf("ServiceRequestID = %q, want the response's x-amzn-RequestId %q", se.ServiceRequestID(), requestID)
	}
	if se.EventsDelivered() != events {
		t.Errorf("EventsDelivered = %d, want %d", se.EventsDelivered(), events)
	}
	if !r.modeled(err) {
		t.Errorf("errors.As to the modeled %s type failed; Unwrap = %T", r.code, se.Unwrap())
	}
}

// TestStatusTable covers every row of the table, before and after content,
// for both operations, installed each of the three ways.
func TestStatusTable(t *testing.T) {
	for _, how := range installs {
		for _, op := range ops {
			for _, r := range bedrockRows {
				t.Run(how.String()+"/"+op.name+"/"+r.exceptionType, func(t *testing.T) {
					t.Parallel()
					testBeforeContentOnce(t, how, op, r)
					testBeforeContentPersistent(t, how, op, r)
					testAfterContent(t, how, op, r)
				})
			}
		}
	}
}

// An exception before content: retryable ones are retried by the SDK
// retryer and the consumer sees exactly the clean attempt; others fail the
// call at once after one server call.
func testBeforeContentOnce(t *testing.T, how install, op streamOp, r row) {
	srv := newServer(t)
	c := newClient(srv, how, 3)
	clean, want := op.healthy(3, "clean")
	srv.Enqueue(
		fake.Response{Steps: steps(op.preamble, []fake.Step{r.step()})},
		fake.Response{Steps: clean},
	)
	res := op.run(context.Background(), c)
	calls := srv.Calls()
	if !r.retryable {
		if len(calls) != 1 {
			t.Fatalf("non-retryable %s: %d server calls, want 1", r.exceptionType, len(calls))
		}
		checkStatusError(t, res.callErr, r, 0, calls[0].RequestID)
		return
	}
	if res.callErr != nil || res.streamErr != nil {
		t.Fatalf("retryable %s before content: call error %v, stream error %v; want a transparent retry", r.exceptionType, res.callErr, res.streamErr)
	}
	if len(calls) != 2 {
		t.Fatalf("%d server calls, want 2 (one failed attempt, one clean)", len(calls))
	}
	if !equalStrings(res.events, want) {
		t.Fatalf("consumer saw %q, want exactly the clean attempt's %q", res.events, want)
	}
}

// Persistent failures: MaxAttempts server calls, then the SDK's
// *retry.MaxAttemptsError wrapping the typed error.
func testBeforeContentPersistent(t *testing.T, how install, op streamOp, r row) {
	if !r.retryable {
		return
	}
	srv := newServer(t)
	c := newClient(srv, how, 3)
	srv.SetDefault(fake.Response{Steps: steps(op.preamble, []fake.Step{r.step()})})
	res := op.run(context.Background(), c)
	calls := srv.Calls()
	if len(calls) != 3 {
		t.Fatalf("%d server calls, want MaxAttempts = 3", len(calls))
	}
	var maxErr *retry.MaxAttemptsError
	if !errors.As(res.callErr, &maxErr) || maxErr.Attempt != 3 {
		t.Fatalf("want *retry.MaxAttemptsError after 3 attempts, got %T: %v", res.callErr, res.callErr)
	}
	checkStatusError(t, res.callErr, r, 0, calls[2].RequestID)
}

// An exception after N content events: one server call, the consumer gets
// the N events, stream.Err() is the typed error with EventsDelivered() == N.
func testAfterContent(t *testing.T, how install, op streamOp, r row) {
	srv := newServer(t)
	c := newClient(srv, how, 3)
	content, want := op.content(3, "part")
	if len(op.preamble) > 0 {
		want = append([]string{"start"}, want...)
	}
	srv.Enqueue(fake.Response{Steps: steps(op.preamble, content, []fake.Step{r.step()})})
	res := op.run(context.Background(), c)
	calls := srv.Calls()
	if res.callErr != nil {
		t.Fatalf("call failed after content was available: %v", res.callErr)
	}
	if len(calls) != 1 {
		t.Fatalf("%d server calls, want 1: nothing may be re-sent behind the consumer's back", len(calls))
	}
	if !equalStrings(res.events, want) {
		t.Fatalf("consumer saw %q, want %q", res.events, want)
	}
	checkStatusError(t, res.streamErr, r, len(want), calls[0].RequestID)
}

// TestBareSDKDoesNotRetryFirstFrameThrottle is the control: against the same
// fake endpoint, the SDK as shipped returns the call successfully, does not
// retry, and reports a throttle with no status from stream.Err(). So the
// other tests prove the plugin, not the fake.
func TestBareSDKDoesNotRetryFirstFrameThrottle(t *testing.T) {
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			srv := serverFor(t, bare)
			c := newClient(srv, bare, 3)
			clean, _ := op.healthy(2, "clean")
			srv.Enqueue(
				fake.Response{Steps: steps(op.preamble, []fake.Step{fake.Exception("throttlingException", "Too many requests")})},
				fake.Response{Steps: clean},
			)
			res := op.run(context.Background(), c)
			if res.callErr != nil {
				t.Fatalf("bare SDK call failed: %v (the fake is expected to answer 200 first)", res.callErr)
			}
			if n := srv.CallCount(); n != 1 {
				t.Fatalf("bare SDK made %d calls, want 1 (no retry)", n)
			}
			if !as[*types.ThrottlingException](res.streamErr) {
				t.Fatalf("bare stream error %T %v, want *types.ThrottlingException", res.streamErr, res.streamErr)
			}
			if status, ok := statusOf(res.streamErr); ok && status == 429 {
				t.Fatalf("bare SDK unexpectedly reports status %d", status)
			}
			if as[*smithyext.StatusError](res.streamErr) {
				t.Fatal("bare SDK produced a StatusError: the plugin is installed where it should not be")
			}
		})
	}
}

// TestModelStreamErrorOriginal429IsThrottle: the provider's own 429 inside a
// modelStreamErrorException counts as a throttle, and originalStatusCode and
// originalMessage stay reachable through the modeled type.
func TestModelStreamErrorOriginal429IsThrottle(t *testing.T) {
	srv := newServer(t)
	c := newClient(srv, clientOption, 1)
	content, _ := invokeStream.content(2, "x")
	srv.Enqueue(fake.Response{Steps: steps(content, []fake.Step{fake.ExceptionPayload("modelStreamErrorException",
		[]byte(`{"message":"model failed","originalStatusCode":429,"originalMessage":"rate limited upstream"}`))})})
	res := invokeStream.run(context.Background(), c)
	var se *smithyext.StatusError
	if !errors.As(res.streamErr, &se) || !se.Throttle || se.Status != 424 || !se.Retryable {
		t.Fatalf("want a retryable throttle with status 424, got %v", res.streamErr)
	}
	var mse *types.ModelStreamErrorException
	if !errors.As(res.streamErr, &mse) || mse.OriginalStatusCode == nil || *mse.OriginalStatusCode != 429 ||
		mse.OriginalMessage == nil || *mse.OriginalMessage != "rate limited upstream" {
		t.Fatalf("modeled error lost its original status or message: %+v", mse)
	}
	if !(classify.StatusThrottle{}).IsErrorThrottle(res.streamErr).Bool() {
		t.Fatal("classify.StatusThrottle does not see the throttle")
	}
}

// TestMessageStartIsNotContent: on ConverseStream an exception right after
// messageStart is retried transparently; with every event counted as
// content, the same exception reaches stream.Err() instead.
func TestMessageStartIsNotContent(t *testing.T) {
	srv := newServer(t)
	clean, want := converseStream.healthy(2, "ok")
	throttled := fake.Response{Steps: []fake.Step{fake.MessageStart(), fake.Exception("throttlingException", "slow down")}}

	srv.Enqueue(throttled, fake.Response{Steps: clean})
	res := converseStream.run(context.Background(), newClient(srv, clientOption, 3))
	if res.callErr != nil || res.streamErr != nil || !equalStrings(res.events, want) || srv.CallCount() != 2 {
		t.Fatalf("default: events %q call %v stream %v calls %d; want a transparent retry", res.events, res.callErr, res.streamErr, srv.CallCount())
	}

	srv2 := newServer(t)
	srv2.Enqueue(throttled, fake.Response{Steps: clean})
	res = converseStream.run(context.Background(), newClient(srv2, clientOption, 3, middlewareAllContent()))
	if res.callErr != nil || srv2.CallCount() != 1 || !equalStrings(res.events, []string{"start"}) {
		t.Fatalf("all-content: events %q call %v calls %d; want one call delivering messageStart", res.events, res.callErr, srv2.CallCount())
	}
	checkStatusError(t, res.streamErr, bedrockRows[2], 1, srv2.Calls()[0].RequestID)
}

// TestErrorMessageFrames: a :message-type error message is classified by its
// :error-code like an exception.
func TestErrorMessageFrames(t *testing.T) {
	srv := newServer(t)
	c := newClient(srv, configWide, 3)
	clean, want := invokeStream.healthy(1, "ok")
	srv.Enqueue(fake.Response{Steps: []fake.Step{fake.ErrorMsg("InternalFailure", "try again")}}, fake.Response{Steps: clean})
	res := invokeStream.run(context.Background(), c)
	if res.callErr != nil || !equalStrings(res.events, want) || srv.CallCount() != 2 {
		t.Fatalf("error message before content: %v %q calls=%d; want a transparent retry", res.callErr, res.events, srv.CallCount())
	}

	content, _ := invokeStream.content(2, "x")
	srv.Enqueue(fake.Response{Steps: steps(content, []fake.Step{fake.ErrorMsg("InternalFailure", "broke")})})
	res = invokeStream.run(context.Background(), c)
	var se *smithyext.StatusError
	if !errors.As(res.streamErr, &se) || se.Status != 500 || !se.Retryable || se.Code != "InternalFailure" ||
		se.Events != 2 || se.Message != "broke" || se.Kind != smithyext.KindErrorMessage {
		t.Fatalf("error message after content: %#v", se)
	}
}

// TestUnknownExceptionIsNotRetried: an exception type no table knows fails
// the call after one server call, with status 500 and its code kept.
func TestUnknownExceptionIsNotRetried(t *testing.T) {
	srv := newServer(t)
	c := newClient(srv, clientOption, 3)
	srv.SetDefault(fake.Response{Steps: []fake.Step{fake.Exception("brandNewException", "what is this")}})
	res := invokeStream.run(context.Background(), c)
	var se *smithyext.StatusError
	if !errors.As(res.callErr, &se) || se.Code != "BrandNewException" || se.Status != 500 || se.Retryable || se.Message != "what is this" {
		t.Fatalf("unknown exception: %v", res.callErr)
	}
	if srv.CallCount() != 1 {
		t.Fatalf("%d calls, want 1", srv.CallCount())
	}
}

// TestHealthyAndHTTPErrorsMatchBareSDK: healthy streams and HTTP 4xx/5xx
// answers behave exactly as without the plugin (same events, same calls,
// same error types and statuses).
func TestHealthyAndHTTPErrorsMatchBareSDK(t *testing.T) {
	type outcome struct {
		events  []string
		calls   int
		status  int
		code    string
		errType string
	}
	runWith := func(how install, op streamOp, script []fake.Response) outcome {
		srv := serverFor(t, how)
		srv.Enqueue(script...)
		res := op.run(context.Background(), newClient(srv, how, 3))
		err := res.callErr
		if err == nil {
			err = res.streamErr
		}
		o := outcome{events: res.events, calls: srv.CallCount()}
		if err != nil {
			o.status, _ = statusOf(err)
			o.code = classify.Classify(err).Code
			o.errType = strings.TrimPrefix(errTypeChain(err), "")
		}
		return o
	}
	for _, op := range ops {
		healthy, _ := op.healthy(20, "h")
		scripts := map[string][]fake.Response{
			"healthy":  {{Steps: healthy}},
			"empty":    {{Steps: nil}},
			"http-429": {{Status: 429, ErrorType: "ThrottlingException", ErrorMessage: "slow"}, {Status: 429, ErrorType: "ThrottlingException", ErrorMessage: "slow"}, {Status: 429, ErrorType: "ThrottlingException", ErrorMessage: "slow"}},
			"http-400": {{Status: 400, ErrorType: "ValidationException", ErrorMessage: "bad"}},
			"http-500": {{Status: 500, ErrorType: "InternalServerException", ErrorMessage: "oops"}, {Steps: healthy}},
		}
		for name, script := range scripts {
			t.Run(op.name+"/"+name, func(t *testing.T) {
				want := runWith(bare, op, script)
				for _, how := range installs {
					got := runWith(how, op, script)
					if !equalStrings(got.events, want.events) || got.calls != want.calls || got.status != want.status || got.code != want.code || got.errType != want.errType {
						t.Errorf("%s: got %+v, bare SDK %+v", how, got, want)
					}
				}
			})
		}
	}
}

// errTypeChain renders the types in an error chain (first branch only).
func errTypeChain(err error) string {
	var b strings.Builder
	for err != nil {
		b.WriteString(strings.TrimPrefix(typeName(err), "*"))
		b.WriteByte('>')
		err = errors.Unwrap(err)
	}
	return b.String()
}

// TestCancelStopsWaitingForContent: a stream that stalls before content is
// ended by the call's context, promptly, after one server call.
func TestCancelStopsWaitingForContent(t *testing.T) {
	srv := newServer(t)
	c := newClient(srv, clientOption, 3)
	srv.SetDefault(fake.Response{Steps: []fake.Step{fake.Hang()}})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := invokeStream.run(ctx, c)
	if !errors.Is(res.callErr, context.DeadlineExceeded) {
		t.Fatalf("want context.DeadlineExceeded, got %v", res.callErr)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("took %v to notice the deadline", elapsed)
	}
	if srv.CallCount() != 1 {
		t.Fatalf("%d calls after the deadline, want 1", srv.CallCount())
	}
	if classify.Classify(res.callErr).Retryable {
		t.Fatal("a canceled call classifies as retryable")
	}
}

// TestCancelStopsRetries: cancellation during the retryer's backoff ends the
// call at once.
func TestCancelStopsRetries(t *testing.T) {
	srv := newServer(t)
	cfg := testConfig(srv, 5)
	cfg.Retryer = testRetryer(5, retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Minute, nil }))
	c := newClientFromConfig(cfg)
	srv.SetDefault(fake.Response{Steps: []fake.Step{fake.Exception("throttlingException", "slow down")}})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for srv.CallCount() < 1 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	start := time.Now()
	res := invokeStream.run(ctx, c)
	if !errors.Is(res.callErr, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", res.callErr)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("took %v to stop retrying", elapsed)
	}
	if srv.CallCount() != 1 {
		t.Fatalf("%d calls, want 1", srv.CallCount())
	}
}
