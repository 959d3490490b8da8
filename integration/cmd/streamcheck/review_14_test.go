package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	smithymiddleware "github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/middleware"
	"github.com/streamstatus/streamstatus/smithyext"
)

// These tests break the library through the check's hooks in ways the
// author's mutation test does not, and assert the check notices (exit 1).

// runBroken runs the check with a broken streamstatus side.
func runBroken(t *testing.T, faults string, opts []middleware.Option, api ...func(*smithymiddleware.Stack) error) (int, string) {
	t.Helper()
	cfg := checkConfig{calls: 20, concurrency: 4, events: 20, seed: 1, spec: mustSpec(t, faults), json: true,
		pluginOpts: opts, pluginAPIOptions: api}
	var stdout, stderr bytes.Buffer
	code := check(context.Background(), cfg, &stdout, &stderr)
	return code, stdout.String() + stderr.String()
}

// mutateStatus changes every StatusError the library produces: from the
// call (before content), in a finalize middleware right inside Retry, and
// from stream.Err() (after content), in a deserialize middleware outside
// streamstatus's that wraps the response body. (A failure before content
// is the attempt's error from streamstatus.AwaitReadAhead, outside the
// SDK's event-stream deserializer, outward: the body wrapper, inside it,
// sees only the reader's side.)
func mutateStatus(fn func(*smithyext.StatusError)) func(*smithymiddleware.Stack) error {
	call := smithymiddleware.FinalizeMiddlewareFunc("review.MutateCallStatus", func(ctx context.Context, in smithymiddleware.FinalizeInput, next smithymiddleware.FinalizeHandler) (
		smithymiddleware.FinalizeOutput, smithymiddleware.Metadata, error) {
		out, md, err := next.HandleFinalize(ctx, in)
		var se *smithyext.StatusError
		if errors.As(err, &se) {
			fn(se)
		}
		return out, md, err
	})
	body := smithymiddleware.DeserializeMiddlewareFunc("review.MutateStatus", func(ctx context.Context, in smithymiddleware.DeserializeInput, next smithymiddleware.DeserializeHandler) (
		smithymiddleware.DeserializeOutput, smithymiddleware.Metadata, error) {
		out, md, err := next.HandleDeserialize(ctx, in)
		if resp, ok := out.RawResponse.(*smithyhttp.Response); ok && err == nil && resp.Body != nil {
			resp.Body = &statusBody{ReadCloser: resp.Body, fn: fn}
		}
		return out, md, err
	})
	return func(s *smithymiddleware.Stack) error {
		if err := s.Finalize.Insert(call, "Retry", smithymiddleware.After); err != nil {
			return err
		}
		return s.Deserialize.Insert(body, middleware.DeserializeID, smithymiddleware.Before)
	}
}

type statusBody struct {
	io.ReadCloser
	fn func(*smithyext.StatusError)
}

func (b *statusBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var se *smithyext.StatusError
	if errors.As(err, &se) {
		b.fn(se)
	}
	return n, err
}

// TestDefect_CheckMissesWrongRequestID: the README promises
// ServiceRequestID() is the response's x-amzn-RequestId; a library that
// reports another passes the check.
func TestDefect_CheckMissesWrongRequestID(t *testing.T) {
	code, out := runBroken(t, "throttling@0:attempts=all:p=0.5, internalServer@8:p=0.5", nil,
		mutateStatus(func(se *smithyext.StatusError) { se.RequestID = "not-the-response-request-id" }))
	if code != exitFailed {
		t.Errorf("every StatusError carries a wrong RequestID; check exit %d, want %d:\n%.600s", code, exitFailed, out)
	}
}

// TestDefect_CheckMissesWrongThrottleFlag: DESIGN §2 / README: a
// modelStreamErrorException with originalStatusCode 429 is a throttle, a
// throttlingException is one; a library with the flag inverted passes.
func TestDefect_CheckMissesWrongThrottleFlag(t *testing.T) {
	code, out := runBroken(t, "modelStreamError@0:orig=429:attempts=all:p=0.5, throttling@5:p=0.5", nil,
		mutateStatus(func(se *smithyext.StatusError) { se.Throttle = !se.Throttle }))
	if code != exitFailed {
		t.Errorf("every StatusError has its throttle flag inverted; check exit %d, want %d:\n%.600s", code, exitFailed, out)
	}
}

// TestDefect_CheckMissesWrongErrorCode: DESIGN §2: ErrorCode() is the
// modeled code (ThrottlingException), so the SDK's throttle detection
// recognises it; a library that gives the wire name passes.
func TestDefect_CheckMissesWrongErrorCode(t *testing.T) {
	code, out := runBroken(t, "throttling@0:attempts=all:p=0.5, serviceUnavailable@6:p=0.5", nil,
		mutateStatus(func(se *smithyext.StatusError) { se.Code = "wrong" + se.Code }))
	if code != exitFailed {
		t.Errorf("every StatusError has a wrong ErrorCode(); check exit %d, want %d:\n%.600s", code, exitFailed, out)
	}
}

// TestDefect_CheckMissesLostModeledType: README: errors.As to
// *types.ThrottlingException "still works"; a library that drops the
// modeled error passes.
func TestDefect_CheckMissesLostModeledType(t *testing.T) {
	code, out := runBroken(t, "throttling@0:attempts=all:p=0.5, modelTimeout@7:p=0.5", nil,
		mutateStatus(func(se *smithyext.StatusError) { se.Err = nil }))
	if code != exitFailed {
		t.Errorf("no StatusError unwraps to its modeled type; check exit %d, want %d:\n%.600s", code, exitFailed, out)
	}
}

// leakBodies is a deserialize middleware inside streamstatus's: every
// response body the library is handed (error answers and streams) ignores
// Close, as a library that never closes them would leave them.
func leakBodies(leaked *atomic.Int64) func(*smithymiddleware.Stack) error {
	mw := smithymiddleware.DeserializeMiddlewareFunc("review.LeakBodies", func(ctx context.Context, in smithymiddleware.DeserializeInput, next smithymiddleware.DeserializeHandler) (
		smithymiddleware.DeserializeOutput, smithymiddleware.Metadata, error) {
		out, md, err := next.HandleDeserialize(ctx, in)
		if resp, ok := out.RawResponse.(*smithyhttp.Response); ok && resp.Body != nil {
			leaked.Add(1)
			resp.Body = noClose{resp.Body}
		}
		return out, md, err
	})
	return func(s *smithymiddleware.Stack) error {
		return s.Deserialize.Insert(mw, middleware.DeserializeID, smithymiddleware.After)
	}
}

type noClose struct{ io.ReadCloser }

func (noClose) Close() error { return nil }

// TestDefect_CheckMissesUnclosedBodies: DESIGN §5.2 "every response body is
// closed"; a library that closes none (HTTP error answers included, which
// the library closes itself because the SDK does not) passes the check.
func TestDefect_CheckMissesUnclosedBodies(t *testing.T) {
	var leaked atomic.Int64
	code, out := runBroken(t, "http503:p=0.3, http400:p=0.2, throttling@0:p=0.2, internalServer@6:p=0.2", nil, leakBodies(&leaked))
	if leaked.Load() == 0 {
		t.Fatal("the mutation saw no response")
	}
	if code != exitFailed {
		t.Errorf("%d response bodies never closed; check exit %d, want %d:\n%.600s", leaked.Load(), code, exitFailed, out)
	}
}

// dropBeforeReset is a deserialize middleware outside streamstatus's that
// holds each frame back until the next one arrives and, when the stream
// ends in a transport failure, drops the held frame (and counts it out of
// EventsDelivered, so the error stays consistent): a library that loses the
// last event before a connection reset.
func dropBeforeReset(dropped *atomic.Int64) func(*smithymiddleware.Stack) error {
	mw := smithymiddleware.DeserializeMiddlewareFunc("review.DropBeforeReset", func(ctx context.Context, in smithymiddleware.DeserializeInput, next smithymiddleware.DeserializeHandler) (
		smithymiddleware.DeserializeOutput, smithymiddleware.Metadata, error) {
		out, md, err := next.HandleDeserialize(ctx, in)
		if resp, ok := out.RawResponse.(*smithyhttp.Response); ok && err == nil && resp.StatusCode == 200 {
			resp.Body = &holdLast{ReadCloser: resp.Body, dropped: dropped}
		}
		return out, md, err
	})
	return func(s *smithymiddleware.Stack) error {
		return s.Deserialize.Insert(mw, middleware.DeserializeID, smithymiddleware.Before)
	}
}

type holdLast struct {
	io.ReadCloser
	held    []byte
	out     bytes.Buffer
	err     error
	dropped *atomic.Int64
}

func (h *holdLast) Read(p []byte) (int, error) {
	for h.out.Len() == 0 && h.err == nil {
		var prelude [4]byte
		_, err := io.ReadFull(h.ReadCloser, prelude[:])
		var frame []byte
		if err == nil {
			frame = make([]byte, binary.BigEndian.Uint32(prelude[:]))
			copy(frame, prelude[:])
			_, err = io.ReadFull(h.ReadCloser, frame[4:])
		}
		if err != nil {
			var se *smithyext.StatusError
			if errors.As(err, &se) && se.Kind == smithyext.KindTransport && h.held != nil {
				h.held = nil
				se.Events--
				h.dropped.Add(1)
			}
			if errors.Is(err, io.ErrUnexpectedEOF) && se == nil {
				err = io.EOF
			}
			h.out.Write(h.held)
			h.held, h.err = nil, err
			break
		}
		h.out.Write(h.held)
		h.held = frame
	}
	if h.out.Len() > 0 {
		return h.out.Read(p)
	}
	return 0, h.err
}

// TestDefect_CheckMissesEventLostBeforeReset: after reset@10 the consumer
// must get the 10 events before the fault (the unbroken library delivers
// all 10 on every call: 4000 of 4000 in a 400-call run); a library that
// loses the last event before every reset passes, and the check prints
// "no event was delivered twice or missed".
func TestDefect_CheckMissesEventLostBeforeReset(t *testing.T) {
	var dropped atomic.Int64
	code, out := runBroken(t, "reset@10", nil, dropBeforeReset(&dropped))
	if dropped.Load() == 0 {
		t.Fatal("the mutation dropped no event")
	}
	if code != exitFailed {
		t.Errorf("%d events lost before a reset; check exit %d, want %d:\n%.600s", dropped.Load(), code, exitFailed, out)
	}
}

// TestDefect_EndpointLogsNoLineForBadCallHeader: README/serve -h: "logs one
// line per request". A request whose x-streamcheck-call is not a number is
// answered 400 by the endpoint's script and logged nowhere (logRejected
// only sees the fake server's own rejections).
func TestDefect_EndpointLogsNoLineForBadCallHeader(t *testing.T) {
	var log syncBuffer
	ep, err := startEndpoint(endpointConfig{spec: mustSpec(t, "none"), seed: 1, events: 1, log: &log})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	client := rawClient(t)
	for _, call := range []string{"1", "abc"} {
		req, _ := http.NewRequest(http.MethodPost, ep.URL()+"/model/m/invoke-with-response-stream", strings.NewReader(`{"prompt":"hi"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/x, Signature=00")
		req.Header.Set(callHeader, call)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	client.CloseIdleConnections()
	ep.Close()
	got := log.String()
	if lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n"); len(lines) != 2 {
		t.Errorf("%d log lines for 2 requests, want 2:\n%s", len(lines), got)
	}
}

// hangAtEnd is a deserialize middleware outside streamstatus's whose
// stream, instead of ending, blocks until the call's context ends: a
// library that hangs its consumers.
func hangAtEnd() func(*smithymiddleware.Stack) error {
	mw := smithymiddleware.DeserializeMiddlewareFunc("review.Hang", func(ctx context.Context, in smithymiddleware.DeserializeInput, next smithymiddleware.DeserializeHandler) (
		smithymiddleware.DeserializeOutput, smithymiddleware.Metadata, error) {
		out, md, err := next.HandleDeserialize(ctx, in)
		if resp, ok := out.RawResponse.(*smithyhttp.Response); ok && err == nil && resp.StatusCode == 200 {
			resp.Body = &hangBody{ReadCloser: resp.Body, ctx: ctx}
		}
		return out, md, err
	})
	return func(s *smithymiddleware.Stack) error {
		return s.Deserialize.Insert(mw, middleware.DeserializeID, smithymiddleware.Before)
	}
}

type hangBody struct {
	io.ReadCloser
	ctx context.Context
}

func (h *hangBody) Read(p []byte) (int, error) {
	n, err := h.ReadCloser.Read(p)
	if n == 0 && err != nil {
		<-h.ctx.Done()
		return 0, h.ctx.Err()
	}
	return n, err
}

// TestDefect_LibraryHangIsInconclusive: a library that hangs every stream
// (the bare side finishes the same calls in milliseconds) is reported as
// "INCONCLUSIVE ... rerun with fewer -concurrency or -events on a less
// loaded machine", exit 3, "met its invariants on every call the check
// could finish": a hang (DESIGN §5.2/§5.4) can never fail the check.
// Takes callTimeoutBase (30 s): the tool's floor cannot be lowered.
func TestDefect_LibraryHangIsInconclusive(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out streamcheck's 30 s per-call timeout")
	}
	cfg := checkConfig{calls: 2, concurrency: 2, events: 1, seed: 1, spec: mustSpec(t, "none"),
		pluginAPIOptions: []func(*smithymiddleware.Stack) error{hangAtEnd()}}
	var stdout, stderr bytes.Buffer
	code := check(context.Background(), cfg, &stdout, &stderr)
	if code != exitFailed {
		t.Errorf("every streamstatus stream hangs; check exit %d, want %d:\n%s", code, exitFailed, stdout.String()[strings.Index(stdout.String(), "\n\n"):])
	}
}

// TestDefect_ExpectThrottleCodesNotAsDocumented: expect.go says its error
// codes include "the SDK's throttle codes (aws/retry
// DefaultThrottleErrorCodes) as 429", but only two of the fourteen are
// there; the rest are expected as unknown (500, not retried).
func TestDefect_ExpectThrottleCodesNotAsDocumented(t *testing.T) {
	for code := range retry.DefaultThrottleErrorCodes {
		spec := mustSpec(t, "error@0:code="+code)
		if d := documentedOutcome(spec.rules[0]); d.status != 429 || !d.retryable {
			t.Errorf("error code %s (aws/retry DefaultThrottleErrorCodes): expected {%d, retryable %v} from %q, want {429, retryable}",
				code, d.status, d.retryable, d.source)
		}
	}
}

// TestDefect_UnbrokenLibraryFailsOnSDKThrottleCode: with the library as it
// is, the check reports violations for an error frame whose code is an SDK
// throttle code (classify's generic table retries it, as its source says;
// expect.go's table leaves it out).
func TestDefect_UnbrokenLibraryFailsOnSDKThrottleCode(t *testing.T) {
	code, out := runBroken(t, "error@0:code=TooManyRequestsException", nil)
	if code != exitOK {
		t.Errorf("unbroken library: check exit %d, want %d:\n%.900s", code, exitOK, out[strings.Index(out, `"violations"`):])
	}
}

// TestDefect_ParserAcceptsLeadingZeros: issue 14 names http0429 as lax
// input; the same leading zeros are still accepted everywhere else.
func TestDefect_ParserAcceptsLeadingZeros(t *testing.T) {
	for _, spec := range []string{"modelStreamError:orig=0429", "throttling@03", "throttling:call=02", "throttling:attempts=02"} {
		if _, err := parseSpec(spec); err == nil {
			t.Errorf("parseSpec(%q) accepted", spec)
		}
	}
}

// TestDefect_ServerCallsUncheckedOnLongRuns: -calls takes up to 100,000,
// but the endpoint forgets all but the last maxTracked (65,536) calls, and
// violations() skips the [server calls] invariant of a call whose attempts
// are nil ("none arrived"): on a 100,000-call run the first 34,464 calls
// are never checked for extra or missing retries.
func TestDefect_ServerCallsUncheckedOnLongRuns(t *testing.T) {
	ep, err := startEndpoint(endpointConfig{spec: mustSpec(t, "none"), seed: 1, events: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	for n := 1; n <= maxTracked+1; n++ {
		ep.answer(fake.Call{Operation: opOf(n), ModelID: checkModel, Header: http.Header{callHeader: {strconv.Itoa(n)}}})
	}
	if ep.Attempts(1) == nil {
		t.Errorf("after %d calls (the check allows -calls 100000) the endpoint no longer knows call 1's attempts: "+
			"its [server calls] invariant is silently skipped", maxTracked+1)
	}
}
