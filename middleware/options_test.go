package middleware

import (
	"strings"
	"testing"
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
