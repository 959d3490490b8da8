package backoff

import (
	"strings"
	"testing"

	"github.com/streamstatus/streamstatus/internal/examplecheck"
)

// Issue 21, point 4: every main entry point has a runnable Example.
// ExampleNewBudget_custom, the one example of a custom budget under
// middleware.WithBudget, has its "// Output:" line right under another
// comment: go test sees no output, compiles it and never runs it, so the
// result it documents ("Hi! <nil> 3 186") is checked by nothing.
func TestDefect_BackoffExampleNeverRuns(t *testing.T) {
	if _, unseen := examplecheck.Examples(t, "."); len(unseen) > 0 {
		t.Errorf("examples with an Output comment that go test never runs: %v", unseen)
	}
}

// Issue 21, point 4. The retryer constructors point 3 lists
// (Budget.NewStandard, Budget.NewAdaptive) have no example go doc attaches
// to them.
func TestDefect_BackoffEntryPointsWithoutExample(t *testing.T) {
	runs, _ := examplecheck.Examples(t, ".")
	for _, name := range []string{"NewBudget", "RetryStream", "NewTokenBucket", "Budget_NewStandard", "Budget_NewAdaptive"} {
		if !examplecheck.Documented(runs, name) {
			t.Errorf("backoff.%s has no runnable Example%s", strings.Replace(name, "_", ".", 1), name)
		}
	}
}
