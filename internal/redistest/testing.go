package redistest

import (
	"errors"
	"os"
	"testing"
)

// StartT starts a server for a test and stops it when the test ends. Without
// redis-server the test is skipped, except under CI (CI set in the
// environment), where .ci/run installs it and a skip would hide a gap: there
// it fails.
func StartT(t testing.TB) *Server {
	t.Helper()
	s, err := Start()
	if errors.Is(err, ErrNotInstalled) && os.Getenv("CI") == "" {
		t.Skipf("%v; the Redis tests need it", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}
