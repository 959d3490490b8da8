package middleware

import (
	"strings"
	"testing"

	"github.com/streamstatus/streamstatus/classify"
)

// Every Options field has the With option of the same name, and the option
// does what the field does.
func TestReadAheadLimitOption(t *testing.T) {
	if r := resolve([]Option{WithReadAheadLimit(100)}); r.readAheadLimit != 100 || r.err != nil {
		t.Fatalf("WithReadAheadLimit(100): limit %d, err %v", r.readAheadLimit, r.err)
	}
	if r := resolve([]Option{WithReadAheadLimit(0)}); r.readAheadLimit != DefaultReadAheadLimit || r.err != nil {
		t.Fatalf("WithReadAheadLimit(0): limit %d, err %v; want the default", r.readAheadLimit, r.err)
	}
	r := resolve([]Option{WithReadAheadLimit(-1)})
	if r.err == nil || !strings.Contains(r.err.Error(), "WithReadAheadLimit(-1)") {
		t.Fatalf("WithReadAheadLimit(-1): err %v; want an error naming the option", r.err)
	}
	// A later installation (per call) that sets it wins over the client's.
	if m := resolve([]Option{WithReadAheadLimit(7)}).over(resolve([]Option{WithReadAheadLimit(100)})); m.readAheadLimit != 7 {
		t.Fatalf("per-call WithReadAheadLimit(7) over the client's 100: limit %d", m.readAheadLimit)
	}
	// ... also when it sets 0, the default; a later one that does not set
	// it keeps the client's.
	if m := resolve([]Option{WithReadAheadLimit(0)}).over(resolve([]Option{WithReadAheadLimit(1)})); m.readAheadLimit != DefaultReadAheadLimit {
		t.Fatalf("per-call WithReadAheadLimit(0) over the client's 1: limit %d; want DefaultReadAheadLimit", m.readAheadLimit)
	}
	if m := resolve([]Option{WithIdleTimeout(0)}).over(resolve([]Option{WithReadAheadLimit(1)})); m.readAheadLimit != 1 {
		t.Fatalf("per-call WithIdleTimeout(0) over the client's WithReadAheadLimit(1): limit %d; want 1", m.readAheadLimit)
	}
	if m := resolve([]Option{WithReadAheadLimit(-1)}).over(resolve(nil)); m.err == nil {
		t.Fatal("per-call WithReadAheadLimit(-1): no error")
	}
}

func TestDisableErrorEnvelopesOption(t *testing.T) {
	if r := resolve(nil); !r.envelopes {
		t.Fatal("envelope detection off by default")
	}
	if r := resolve([]Option{WithDisableErrorEnvelopes()}); r.envelopes || !r.given.DisableErrorEnvelopes {
		t.Fatal("WithDisableErrorEnvelopes left detection on")
	}
}

// TestDefaultClassifierIsShared: installations that name no classifier
// share one built from the default tables, so a new client builds no
// tables; one that names its own keeps it.
func TestDefaultClassifierIsShared(t *testing.T) {
	a, b := resolve(nil), resolve([]Option{WithReadAheadLimit(1 << 10)})
	if a.classifier.Classifier != b.classifier.Classifier {
		t.Fatal("two installations without a classifier built two default classifiers")
	}
	if r, ok := a.classifier.Rule("Bedrock Runtime", "throttlingException"); !ok || r.Status != 429 || !r.Throttle {
		t.Fatalf("the shared default classifier's throttlingException row is %+v (found %v); want 429, a throttle", r, ok)
	}
	own := classify.New(classify.DefaultTables()...)
	if c := resolve([]Option{WithClassifier(own)}); c.classifier.Classifier != own {
		t.Fatal("WithClassifier's classifier was replaced")
	}
	if allocs := testing.AllocsPerRun(20, func() { resolve(nil) }); allocs > 20 {
		t.Fatalf("resolving default options made %.0f allocations; building the tables takes about 90", allocs)
	}
}
