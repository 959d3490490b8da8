package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	smithymiddleware "github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/streamstatus/streamstatus/classify"
	"github.com/streamstatus/streamstatus/middleware"
)

// These tests break the library on purpose, through the hooks of the
// check's streamstatus side, and show the check fails naming the
// invariant: a check that cannot fail is worse than none.

// retryVerdict wraps an attempt's error with a different RetryableError.
type retryVerdict struct {
	error
	retryable bool
}

func (e retryVerdict) RetryableError() bool { return e.retryable }
func (e retryVerdict) Unwrap() error        { return e.error }

// overrideRetry is a finalize middleware inside the retry loop that gives
// the attempt errors for which when is true the verdict retryable.
func overrideRetry(retryable bool, when func(error) bool) func(*smithymiddleware.Stack) error {
	mw := smithymiddleware.FinalizeMiddlewareFunc("mutation.Retry", func(ctx context.Context, in smithymiddleware.FinalizeInput, next smithymiddleware.FinalizeHandler) (
		smithymiddleware.FinalizeOutput, smithymiddleware.Metadata, error) {
		out, md, err := next.HandleFinalize(ctx, in)
		if err != nil && when(err) {
			err = retryVerdict{err, retryable}
		}
		return out, md, err
	})
	return func(s *smithymiddleware.Stack) error {
		return s.Finalize.Insert(mw, (&retry.Attempt{}).ID(), smithymiddleware.After)
	}
}

// cutAfter is a deserialize middleware between the SDK's event-stream
// deserializer and streamstatus's that ends every stream cleanly after n
// frames.
func cutAfter(n int) func(*smithymiddleware.Stack) error {
	mw := smithymiddleware.DeserializeMiddlewareFunc("mutation.Cut", func(ctx context.Context, in smithymiddleware.DeserializeInput, next smithymiddleware.DeserializeHandler) (
		smithymiddleware.DeserializeOutput, smithymiddleware.Metadata, error) {
		out, md, err := next.HandleDeserialize(ctx, in)
		if resp, ok := out.RawResponse.(*smithyhttp.Response); ok && err == nil && resp.StatusCode == 200 {
			resp.Body = &frameLimit{ReadCloser: resp.Body, left: n}
		}
		return out, md, err
	})
	return func(s *smithymiddleware.Stack) error {
		return s.Deserialize.Insert(mw, middleware.DeserializeID, smithymiddleware.Before)
	}
}

// frameLimit passes whole event-stream frames until left runs out, then
// says io.EOF.
type frameLimit struct {
	io.ReadCloser
	left int
	buf  bytes.Buffer
}

func (f *frameLimit) Read(p []byte) (int, error) {
	for f.buf.Len() == 0 {
		if f.left == 0 {
			return 0, io.EOF
		}
		var prelude [4]byte
		if _, err := io.ReadFull(f.ReadCloser, prelude[:]); err != nil {
			return 0, err
		}
		frame := make([]byte, binary.BigEndian.Uint32(prelude[:]))
		copy(frame, prelude[:])
		if _, err := io.ReadFull(f.ReadCloser, frame[4:]); err != nil {
			return 0, err
		}
		f.buf.Write(frame)
		f.left--
	}
	return f.buf.Read(p)
}

// wrongTables is the default classifier with overloaded_error made a 400
// that is not retried and throttlingException a 503.
func wrongTables() *classify.Classifier {
	tables := classify.DefaultTables()
	for ti := range tables {
		for ri, r := range tables[ti].Rules {
			switch {
			case tables[ti].ServiceID == classify.AnthropicServiceID && r.Type == "overloaded_error":
				r.Outcome.Status, r.Outcome.Retryable, r.Outcome.Throttle = 400, false, false
			case tables[ti].ServiceID == "Bedrock Runtime" && r.Type == "throttlingException":
				r.Outcome.Status = 503
			}
			tables[ti].Rules[ri] = r
		}
	}
	return classify.New(tables...)
}

func TestCheckFailsAgainstBrokenLibraries(t *testing.T) {
	isHTTPError := func(err error) bool {
		st := statusOf(err)
		return st >= 400 && !strings.Contains(err.Error(), "StatusError")
	}
	always := func(error) bool { return true }
	cases := []struct {
		name   string
		faults string
		calls  int // 20 unless set
		opts   []middleware.Option
		api    []func(*smithymiddleware.Stack) error
		want   []string // in the violations
	}{
		{name: "HTTP error answers never retried", faults: "http503",
			api:  []func(*smithymiddleware.Stack) error{overrideRetry(false, isHTTPError)},
			want: []string{"[recovered] should have completed", "[server calls] 1 server calls, want 2"}},
		{name: "every failure retried: validation", faults: "validation@0",
			api:  []func(*smithymiddleware.Stack) error{overrideRetry(true, always)},
			want: []string{"[server calls] 2 server calls, want 1 (not retryable", "[typed status] ended without an error; want HTTP 400, not retryable"}},
		{name: "every failure retried: corrupt frame", faults: "corrupt@0",
			api:  []func(*smithymiddleware.Stack) error{overrideRetry(true, always)},
			want: []string{"[server calls] 2 server calls, want 1 (not retryable", "[typed status] ended without an error; want a StatusError of kind corrupt frame"}},
		{name: "every failure retried: http400", faults: "http400",
			api:  []func(*smithymiddleware.Stack) error{overrideRetry(true, always)},
			want: []string{"[server calls] 2 server calls, want 1 (not retryable"}},
		{name: "wrong tables: overloaded_error", faults: "anthropicError@0:op=invoke",
			opts: []middleware.Option{middleware.WithClassifier(wrongTables())},
			want: []string{"[recovered] should have completed", "[server calls] 1 server calls, want 2"}},
		{name: "wrong tables: overloaded_error on every attempt", faults: "anthropicError@0:op=invoke:attempts=all",
			opts: []middleware.Option{middleware.WithClassifier(wrongTables())},
			want: []string{"[typed status] failure has HTTP 400, want HTTP 529, retryable", "[server calls] 1 server calls, want 3",
				"[retryable] RetryableError() = false, want HTTP 529, retryable"}},
		{name: "wrong tables: throttling", faults: "throttling@0:attempts=all",
			opts: []middleware.Option{middleware.WithClassifier(wrongTables())},
			want: []string{"[typed status] failure has HTTP 503, want HTTP 429, retryable"}},
		{name: "wrong tables: default run", faults: "default", calls: 200,
			opts: []middleware.Option{middleware.WithClassifier(wrongTables())},
			want: []string{"anthropicError@0:p=0.05:op=invoke; attempts: anthropicError@0:p=0.05:op=invoke): [recovered] should have completed"}},
		{name: "every stream cut after 3 events", faults: "reset@10",
			api:  []func(*smithymiddleware.Stack) error{cutAfter(3)},
			want: []string{"[typed status] ended without an error; want a StatusError of kind transport", "with exactly 10 events before it"}},
		{name: "every stream cut after 3 events, no faults", faults: "none",
			api:  []func(*smithymiddleware.Stack) error{cutAfter(3)},
			want: []string{"[events] completed with 3 of"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := mustSpec(t, c.faults)
			cfg := checkConfig{calls: max(c.calls, 20), concurrency: 4, events: 20, seed: 1, spec: spec, json: true,
				pluginOpts: c.opts, pluginAPIOptions: c.api}
			var stdout, stderr bytes.Buffer
			code := check(context.Background(), cfg, &stdout, &stderr)
			if code != exitFailed {
				t.Errorf("exit %d, want %d (invariants broken):\n%s", code, exitFailed, stdout.String())
			}
			for _, w := range c.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("violations lack %q:\n%s", w, stdout.String())
				}
			}
		})
	}
}

// TestCheckPassesTheUnbrokenLibrary runs the same faults without a
// mutation: each must pass, so the failures above are the mutations'.
func TestCheckPassesTheUnbrokenLibrary(t *testing.T) {
	for _, faults := range []string{"http503", "validation@0", "corrupt@0", "http400", "anthropicError@0:op=invoke",
		"throttling@0:attempts=all", "reset@10", "none"} {
		cfg := checkConfig{calls: 20, concurrency: 4, events: 20, seed: 1, spec: mustSpec(t, faults), json: true}
		var stdout, stderr bytes.Buffer
		if code := check(context.Background(), cfg, &stdout, &stderr); code != exitOK {
			t.Errorf("-faults %s: exit %d:\n%s%s", faults, code, stdout.String(), stderr.String())
		}
	}
}
