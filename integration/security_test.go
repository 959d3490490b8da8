package integration_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go/logging"

	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/internal/framing"
	"github.com/streamstatus/streamstatus/middleware"
	"github.com/streamstatus/streamstatus/smithyext"
)

// Security (issue 8, DESIGN.md §5 invariants 3 and 5): nothing about the
// request's credentials appears in an error message or, at the default log
// level, in a log line; a frame prelude claiming a huge length is refused
// without allocating it.

// testSessionToken completes the recognisable fake credentials of the
// harness (testAccessKey, testSecretKey).
const testSessionToken = "streamstatus-test-session-token-IQoJb3JpZ2luX2VjEXAMPLE"

// credentialMarks are the strings no error message or default-level log
// line may contain: the credentials, and the pieces of the Authorization
// header that only a signed request has.
var credentialMarks = []string{testAccessKey, testSecretKey, testSessionToken, "AWS4-HMAC-SHA256", "Signature=", "X-Amz-Security-Token"}

// containsSecret reports whether s shows any credential mark.
func containsSecret(s string) bool {
	for _, m := range credentialMarks {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// logLines is an aws.Config.Logger that keeps every line.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logger() logging.Logger {
	return logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, string(c)+" "+fmt.Sprintf(format, v...))
	})
}

func (l *logLines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// securityConfig is a config with session credentials, a body-counting HTTP
// client and a logger collecting every line.
func securityConfig(srv *fake.Server, mode aws.ClientLogMode) (aws.Config, *logLines) {
	cfg, _ := countingConfig(srv, 3)
	cfg.Credentials = credentials.NewStaticCredentialsProvider(testAccessKey, testSecretKey, testSessionToken)
	logs := &logLines{}
	cfg.Logger = logs.logger()
	cfg.ClientLogMode = mode
	return cfg, logs
}

// securityScripts are answers that exercise every error path: each kind of
// stream failure before and after content (before content most are retried
// and then fail for good), HTTP errors, and a cancel.
func securityScripts(op mop) map[string]fake.Response {
	sent, _ := op.healthy(3, "s")
	scripts := map[string]fake.Response{}
	faults := append(exceptionFaults(op), transportFaults()...)
	for _, f := range faults {
		scripts["first/"+f.name] = fake.Response{Steps: f.steps}
		scripts["after/"+f.name] = fake.Response{Steps: steps(sent, f.steps)}
	}
	for _, hf := range httpFaults {
		scripts[hf.name] = fake.Response{Status: hf.status, ErrorType: hf.errorType, ErrorMessage: "http says no"}
	}
	scripts["hang"] = fake.Response{Steps: steps(sent, []fake.Step{fake.Hang()})}
	return scripts
}

// TestNoCredentialsInErrorsOrLogs: with recognisable fake credentials
// (access key, secret, session token), no error of any fault kind, and no
// log line at the default log level, shows a credential or the
// Authorization header (its value as the server received it, or its
// signature).
func TestNoCredentialsInErrorsOrLogs(t *testing.T) {
	var checked, lines int
	for _, op := range matrixOps {
		for name, script := range securityScripts(op) {
			t.Run(op.name+"/"+name, func(t *testing.T) {
				srv := newServer(t, fake.WithSigV4Check(testAccessKey, testSecretKey))
				srv.SetDefault(script)
				cfg, logs := securityConfig(srv, 0)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				c := consumer{}
				if name == "hang" {
					c.cancelAfter = 3
				}
				var opts []middleware.Option
				if strings.HasSuffix(name, "/"+stallFault().name) {
					opts = stallFault().opts // a stall is one only with the timeouts on
				}
				res := op.open(cfg, configWide, opts...)(ctx, c)
				calls := srv.Calls()
				if len(calls) == 0 {
					t.Fatal("no request reached the server")
				}
				marks := credentialMarks
				for _, call := range calls {
					auth := call.Header.Get("Authorization")
					if !strings.Contains(auth, testAccessKey) || call.Header.Get("X-Amz-Security-Token") != testSessionToken || !call.SignatureVerified {
						t.Fatalf("the request was not signed with the test credentials (verified %v): %q", call.SignatureVerified, auth)
					}
					sig := auth[strings.LastIndex(auth, "Signature=")+len("Signature="):]
					marks = append(marks, auth, sig)
				}
				errs := []error{res.callErr, res.streamErr}
				if res.callErr == nil && res.streamErr == nil {
					t.Fatalf("no error from a faulty stream")
				}
				for _, err := range errs {
					for e := err; e != nil; e = errors.Unwrap(e) {
						checked++
						for _, m := range marks {
							if strings.Contains(e.Error(), m) || strings.Contains(fmt.Sprintf("%+v", e), m) {
								t.Errorf("error (%T) shows %q: %v", e, m, e)
							}
						}
					}
				}
				for _, line := range logs.all() {
					lines++
					for _, m := range marks {
						if strings.Contains(line, m) {
							t.Errorf("default-level log line shows %q: %s", m, line)
						}
					}
				}
			})
		}
	}
	t.Logf("%d errors (with their wrapped causes) and %d default-level log lines checked", checked, lines)
}

// TestVerboseLogsShowNoCredentials: at the default log level neither the
// SDK nor the plugin logs anything on these paths (see
// TestNoCredentialsInErrorsOrLogs), so also turn on every SDK log mode that
// does not dump the request (retries, responses with bodies, event-stream
// messages): none of those lines may show a credential either.
//
// aws.LogRequest (the request dump, Authorization and X-Amz-Security-Token
// included) and aws.LogSigning (the canonical request, with the session
// token) make the SDK itself print request credentials: opt-in SDK debug
// output, outside the plugin's control, so only counted.
func TestVerboseLogsShowNoCredentials(t *testing.T) {
	run := func(mode aws.ClientLogMode, script fake.Response) []string {
		srv := newServer(t)
		srv.SetDefault(script)
		cfg, logs := securityConfig(srv, mode)
		matrixInvoke.open(cfg, clientOption)(context.Background(), readAll)
		return logs.all()
	}
	sent, _ := matrixInvoke.healthy(2, "s")
	scripts := map[string]fake.Response{
		"retried exception":       {Steps: []fake.Step{fake.Exception("throttlingException", "slow down")}},
		"exception after content": {Steps: steps(sent, []fake.Step{fake.Exception("validationException", "bad")})},
		"truncated":               {Steps: steps(sent, []fake.Step{fake.Raw(claimPrelude(100)), fake.Cut()})},
		"HTTP 500":                {Status: 500, ErrorType: "InternalServerException", ErrorMessage: "boom"},
	}
	verbose := aws.LogRetries | aws.LogResponse | aws.LogResponseWithBody | aws.LogResponseEventMessage | aws.LogDeprecatedUsage
	lines := 0
	for name, script := range scripts {
		for _, line := range run(verbose, script) {
			lines++
			if containsSecret(line) {
				t.Errorf("%s: log line shows a credential: %s", name, line)
			}
		}
	}
	if lines == 0 {
		t.Fatal("verbose logging produced no lines: the test checks nothing")
	}
	for _, mode := range []struct {
		name string
		mode aws.ClientLogMode
	}{{"aws.LogRequest", aws.LogRequest}, {"aws.LogSigning", aws.LogSigning}} {
		all := run(mode.mode, scripts["retried exception"])
		leaks := 0
		for _, line := range all {
			if containsSecret(line) {
				leaks++
			}
		}
		t.Logf("%s: %d of %d SDK log lines show request credentials (SDK behaviour, opt-in)", mode.name, leaks, len(all))
	}
	t.Logf("%d verbose log lines checked", lines)
}

// TestHugePreludeClaimEndToEnd: a frame prelude claiming up to 4 GiB (with
// a valid prelude CRC) inside a stream, before or after content, fails the
// stream with a clear, typed, non-retryable error and is never allocated;
// a claim within the format's limits costs at most the claimed length.
func TestHugePreludeClaimEndToEnd(t *testing.T) {
	cases := []struct {
		claim   uint32
		code    string
		is      error
		maxHeap uint64 // bytes the call may allocate in all
	}{
		{framing.MaxFrameLen + 1, codeCorrupt, framing.ErrPreludeLength, 4 << 20},
		{1 << 30, codeCorrupt, framing.ErrPreludeLength, 4 << 20},
		{0xffffffff, codeCorrupt, framing.ErrPreludeLength, 4 << 20},
		{framing.MaxFrameLen, codeInterrupted, framing.ErrTruncated, framing.MaxFrameLen + 4<<20},
		{1 << 20, codeInterrupted, framing.ErrTruncated, 1<<20 + 4<<20},
	}
	for _, tc := range cases {
		for _, after := range []int{0, 3} {
			t.Run(fmt.Sprintf("claim=%d/after=%d", tc.claim, after), func(t *testing.T) {
				srv := newServer(t)
				sent, _ := matrixInvoke.healthy(after, "s")
				srv.SetDefault(fake.Response{Steps: steps(sent, []fake.Step{fake.Raw(claimPrelude(tc.claim)), fake.Cut()})})
				cfg, bodies := countingConfig(srv, 1)
				run := matrixInvoke.open(cfg, clientOption)
				var before, afterStats runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				res := run(context.Background(), readAll)
				runtime.ReadMemStats(&afterStats)
				err := res.callErr
				if after > 0 {
					err = res.streamErr
				}
				var se *smithyext.StatusError
				if !errors.As(err, &se) || se.Code != tc.code || !errors.Is(err, tc.is) || se.Events != after {
					t.Fatalf("want %s (%v) after %d events, got %v", tc.code, tc.is, after, err)
				}
				if tc.code == codeCorrupt && (se.Retryable || !strings.Contains(err.Error(), fmt.Sprintf("total length %d exceeds %d", tc.claim, framing.MaxFrameLen))) {
					t.Errorf("the error must say the claim exceeds the limit and not be retried: %v", err)
				}
				if d := afterStats.TotalAlloc - before.TotalAlloc; d > tc.maxHeap {
					t.Errorf("the call allocated %d bytes, want at most %d", d, tc.maxHeap)
				}
				if opened, closed, ok := bodies.balanced(); !ok {
					t.Errorf("%d response bodies opened, %d closed", opened, closed)
				}
			})
		}
	}
}
