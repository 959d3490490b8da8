package classify_test

import (
	"testing"

	"github.com/streamstatus/streamstatus/internal/examplecheck"
)

// Issue 21, point 4: every main entry point has a runnable Example.
// ExampleNew (custom tables: the one example of building a Classifier for a
// new service) has its "// Output:" line right under another comment: go
// test sees no output, compiles it and never runs it.
func TestDefect_ClassifyExampleNeverRuns(t *testing.T) {
	if _, unseen := examplecheck.Examples(t, "."); len(unseen) > 0 {
		t.Errorf("examples with an Output comment that go test never runs: %v", unseen)
	}
}

// Issue 21, point 4. DefaultTables, listed in point 3 and the replacement
// for Default and the five per-service table funcs this change removed, has
// no example go doc attaches to it.
func TestDefect_ClassifyEntryPointsWithoutExample(t *testing.T) {
	runs, _ := examplecheck.Examples(t, ".")
	for _, name := range []string{"Classify", "New", "DefaultTables"} {
		if !examplecheck.Documented(runs, name) {
			t.Errorf("classify.%s has no runnable Example%s", name, name)
		}
	}
}
