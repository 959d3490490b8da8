package integration_test

import (
	"context"
	"errors"
	"testing"

	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/middleware"
	"github.com/streamstatus/streamstatus/smithyext"
)

// TestDefect_PerCallEmptyNonContentEventsIgnored: a per-call
// WithBedrock(WithNonContentEvents()) ("every event counts as content")
// over a client installed with the defaults (AppendMiddlewares) is silently
// dropped by the merge: over() compares the later []string{} with the
// earlier nil through slices.Equal, which treats them as equal, so the
// merged options keep DefaultNonContentEvents. The exception after
// messageStart is then retried transparently instead of reaching
// stream.Err() as the option's doc says.
func TestDefect_PerCallEmptyNonContentEventsIgnored(t *testing.T) {
	srv := newServer(t)
	clean, _ := converseStream.healthy(2, "ok")
	srv.Enqueue(fake.Response{Steps: []fake.Step{fake.MessageStart(), fake.Exception("throttlingException", "slow down")}},
		fake.Response{Steps: clean})
	c := newClient(srv, configWide, 3) // defaults: messageStart is not content
	res := converseStream.run(context.Background(), c, middleware.WithBedrock(middleware.WithNonContentEvents()))
	var se *smithyext.StatusError
	if res.callErr != nil || srv.CallCount() != 1 || !errors.As(res.streamErr, &se) {
		t.Fatalf("per-call WithNonContentEvents() over AppendMiddlewares(): calls %d, events %q, call err %v, stream err %v; "+
			"want one call whose stream.Err() is the throttle after messageStart", srv.CallCount(), res.events, res.callErr, res.streamErr)
	}
}
