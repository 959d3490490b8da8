package integration_test

import (
	"context"
	"testing"

	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/middleware"
)

// WithReadAheadLimit's docs: "0 for the default" (its error message) and
// "Zero means DefaultReadAheadLimit" (Options.ReadAheadLimit); APIOption's:
// what a later, more specific installation sets takes precedence. Per call,
// WithReadAheadLimit(0) over a client built with WithReadAheadLimit(1) is
// silently ignored: the call keeps the client's 1-byte limit, so an
// exception after messageStart reaches the consumer instead of being
// retried under the default 64 KiB read-ahead. (The stall options record
// that they were set, so a per-call 0 does override; this one does not.)
func TestDefect_PerCallReadAheadLimitZeroIgnored(t *testing.T) {
	srv := newServer(t)
	c := newClient(srv, clientOption, 3, middleware.WithReadAheadLimit(1))
	ok, want := converseStream.healthy(1, "ok")
	srv.Enqueue(
		fake.Response{Steps: []fake.Step{fake.MessageStart(), fake.Exception("internalServerException", "boom")}},
		fake.Response{Steps: ok},
	)
	res := converseStream.run(context.Background(), c, middleware.WithBedrock(middleware.WithReadAheadLimit(0)))
	if res.callErr != nil || res.streamErr != nil || !equalStrings(res.events, want) || srv.CallCount() != 2 {
		t.Fatalf("per-call WithReadAheadLimit(0) over the client's 1: call %v, stream %v, events %q, %d requests; "+
			"want the default limit: the exception before content retried, events %q, 2 requests",
			res.callErr, res.streamErr, res.events, srv.CallCount(), want)
	}
}
