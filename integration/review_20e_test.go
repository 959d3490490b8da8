package integration_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	smithymiddleware "github.com/aws/smithy-go/middleware"

	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/middleware"
	"github.com/streamstatus/streamstatus/smithyext"
)

// failingCreds is a credentials provider that fails, and counts how often
// it was asked.
type failingCreds struct{ asked atomic.Int64 }

func (c *failingCreds) Retrieve(context.Context) (aws.Credentials, error) {
	c.asked.Add(1)
	return aws.Credentials{}, errors.New("review20e: no credentials here (IMDS unreachable)")
}

// TestReview20e_BudgetCheckMaskedByIdentity: README: "WithBudget on a
// client whose retryer is not built from the budget fails the call before
// it is sent, saying how to fix it." The check must run right inside
// Retry, before identity is resolved: a draft of the deferred read-ahead
// moved the finalize middleware after GetIdentity and Signing, and a
// failing credential chain then hid errRetryerNotBudget.
//
// SDK releases that resolve identity before the retry loop (bedrockruntime
// v1.17.0 inserts Retry before Signing, after GetIdentity) ask for
// credentials before any middleware inside Retry runs: there the test is
// skipped.
func TestReview20e_BudgetCheckMaskedByIdentity(t *testing.T) {
	if identityBeforeRetry(t) {
		t.Skip("this bedrockruntime resolves identity before its Retry middleware")
	}
	for _, how := range []install{apiOption, configWide} {
		t.Run(how.String(), func(t *testing.T) {
			srv := newServer(t)
			b := immediateBudget()
			creds := &failingCreds{}
			cfg := testConfig(srv, 3) // retryer not from the budget
			cfg.Credentials = creds
			var c *bedrockruntime.Client
			if how == apiOption {
				c = bedrockruntime.NewFromConfig(cfg, bedrockruntime.WithAPIOptions(middleware.APIOption(middleware.WithBudget(b))))
			} else {
				middleware.AppendMiddlewares(&cfg.APIOptions, middleware.WithBudget(b))
				c = bedrockruntime.NewFromConfig(cfg)
			}
			err := invokeStream.run(context.Background(), c).callErr
			if err == nil || !strings.Contains(err.Error(), "NewStandard") || creds.asked.Load() != 0 {
				t.Fatalf("budget with a foreign retryer and failing credentials: credentials asked %d times, err %v;\n"+
					"want the retryer-not-budget error naming budget.NewStandard before any identity is resolved", creds.asked.Load(), err)
			}
		})
	}
}

// identityBeforeRetry reports whether this SDK's InvokeModelWithResponseStream
// stack has GetIdentity before Retry in its finalize step.
func identityBeforeRetry(t *testing.T) bool {
	t.Helper()
	var order []string
	stop := errors.New("stop before sending")
	record := func(s *smithymiddleware.Stack) error { order = s.Finalize.List(); return stop }
	c := bedrockruntime.New(bedrockruntime.Options{Region: "us-east-1", Credentials: aws.AnonymousCredentials{}})
	_, err := c.InvokeModelWithResponseStream(context.Background(), &bedrockruntime.InvokeModelWithResponseStreamInput{ModelId: aws.String("m")},
		func(o *bedrockruntime.Options) { o.APIOptions = append(o.APIOptions, record) })
	if !errors.Is(err, stop) {
		t.Fatalf("recording the stack: %v", err)
	}
	identity, retry := slices.Index(order, "GetIdentity"), slices.Index(order, "Retry")
	return identity >= 0 && retry >= 0 && identity < retry
}

// attemptRecorder is a finalize middleware, added the usual way
// (stack.Finalize.Add(mw, After)) by an API option applied after
// streamstatus's (a per-call option here), that records each attempt's
// error as it sees it.
func attemptRecorder(seen *[]error) func(*bedrockruntime.Options) {
	mw := smithymiddleware.FinalizeMiddlewareFunc("review20e.AttemptRecorder", func(ctx context.Context, in smithymiddleware.FinalizeInput, next smithymiddleware.FinalizeHandler) (
		smithymiddleware.FinalizeOutput, smithymiddleware.Metadata, error) {
		out, md, err := next.HandleFinalize(ctx, in)
		*seen = append(*seen, err)
		return out, md, err
	})
	return func(o *bedrockruntime.Options) {
		o.APIOptions = append(o.APIOptions, func(s *smithymiddleware.Stack) error { return s.Finalize.Add(mw, smithymiddleware.After) })
	}
}

// TestReview20e_LaterFinalizeMiddlewareSeesThrottleAsSuccess: a finalize
// middleware inside Retry sees a failure before content as its attempt's
// error, wherever it sits: the read-ahead's failure leaves the deserialize
// step (streamstatus.AwaitReadAhead, right outside the SDK's event-stream
// deserializer), as it did when the read-ahead ran inside it. A draft
// returned it from the finalize middleware instead, and every finalize
// middleware inside that one saw the throttled attempt succeed.
func TestReview20e_LaterFinalizeMiddlewareSeesThrottleAsSuccess(t *testing.T) {
	for _, how := range installs {
		t.Run(how.String(), func(t *testing.T) {
			srv := newServer(t)
			clean, want := invokeStream.healthy(2, "ok")
			srv.Enqueue(fake.Response{Steps: []fake.Step{fake.Exception("throttlingException", "slow down")}}, fake.Response{Steps: clean})
			var seen []error
			res := invokeStream.run(context.Background(), newClient(srv, how, 3), attemptRecorder(&seen))
			if res.callErr != nil || !equalStrings(res.events, want) {
				t.Fatalf("call: %v %q", res.callErr, res.events)
			}
			if len(seen) != 2 || !as[*smithyext.StatusError](seen[0]) || seen[1] != nil {
				t.Fatalf("a finalize middleware inside Retry saw the attempts end with %v; want the throttle's StatusError, then nil", seen)
			}
		})
	}
}

// TestReview20e_UnreadBodyHangsPastDeadline: when another middleware took
// the stream body's place, the SDK's reader may never read it, so the
// attempt must not wait for the reader's first read: the call returns the
// substituted stream, as it did when the read-ahead ran before the body was
// handed on. (A draft waited for ever, past the context's deadline.)
func TestReview20e_UnreadBodyHangsPastDeadline(t *testing.T) {
	srv := newServer(t)
	healthy, _ := invokeStream.healthy(2, "real")
	srv.SetDefault(fake.Response{Steps: healthy})
	canned := cannedStream()
	c := newClient(srv, clientOption, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	done := make(chan result, 1)
	go func() { done <- invokeStream.run(ctx, c, substituteBody(canned, false)) }()
	select {
	case res := <-done:
		if res.callErr != nil || len(res.events) != 2 {
			t.Fatalf("call: %v %q", res.callErr, res.events)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the call did not return 4.5 s after its context's 500 ms deadline: the finalize middleware waits for a read-ahead nobody runs")
	}
}
