package backoff_test

import (
	"testing"

	"github.com/streamstatus/streamstatus/backoff"
	"github.com/streamstatus/streamstatus/internal/redistest"
)

// TestRedisTakeSettlement pins the take records that make a take
// idempotent and undoable by a process that never saw its answer, in every
// order the server may see a take and its settlement.
func TestRedisTakeSettlement(t *testing.T) {
	srv := redistest.StartT(t)
	b := backoff.NewRedisBucket(newRedis(t, srv), testKey(t), 100)
	type step struct {
		name       string
		run        func(*backoff.RedisBucket, string, uint) (int64, uint, error)
		status     int64
		tokensLeft uint
	}
	take, release, cancel := backoff.TakeScript, backoff.ReleaseScript, backoff.CancelScript
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"a resent take takes once; its release refunds once", []step{
			{"take", take, 1, 90}, {"take again", take, 1, 90},
			{"release", release, 1, 100}, {"release again", release, 0, 100},
			{"take after its release", take, -1, 100},
		}},
		{"a take cancelled after it ran is refunded once", []step{
			{"take", take, 1, 90}, {"cancel", cancel, 1, 100}, {"cancel again", cancel, 0, 100},
			{"the take resent", take, -1, 100},
		}},
		{"a take cancelled before it ran never takes", []step{
			{"cancel", cancel, 0, 100}, {"the late take", take, -1, 100}, {"cancel again", cancel, 0, 100},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Another take keeps the bucket below full, so a refund shows.
			other := "other:" + t.Name()
			if s, n, err := take(b, other, 10); err != nil || s != 1 || n != 90 {
				t.Fatalf("other take: %d %d %v", s, n, err)
			}
			defer release(b, other, 10)
			for _, st := range tc.steps {
				s, n, err := st.run(b, t.Name(), 10)
				if err != nil {
					t.Fatalf("%s: %v", st.name, err)
				}
				if s != st.status || n+10 != st.tokensLeft {
					t.Fatalf("%s: status %d, %d tokens left besides the other take, want %d and %d",
						st.name, s, n+10, st.status, st.tokensLeft)
				}
			}
		})
	}
}
