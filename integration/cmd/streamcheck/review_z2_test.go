package main

// Review z2 (the re-fixes bf24ee4 and de6f362): each test below fails on
// the code at 1434854.

import (
	"context"
	"io"
	"testing"
)

// TestDefect_RecordedCodeIgnoresTablesCaseInsensitiveLookup: an error
// message whose :error-code a table knows under another case, e.g.
// throttlingException (the :exception-type spelling of the README's own
// Bedrock table) or internalfailure. The tables' lookups ignore case
// (classify.Rule), so the library classifies the message by that row and
// records its code as the row has it (README: an error code is "recorded
// if a table knows it"; observe.go code): ThrottlingException,
// InternalFailure. recordedCode returns an error message's code as sent
// whenever it looks modeled, so [recorded failures] reports the unchanged
// library: "got 0 ... of throttlingException after_content; the faults
// the endpoint sent make N" and "got N ... of ThrottlingException". Run on
// the streamstatus side alone, the check's own recordedViolations.
func TestDefect_RecordedCodeIgnoresTablesCaseInsensitiveLookup(t *testing.T) {
	for _, spec := range []string{"error@3:code=throttlingException", "error@3:code=internalfailure"} {
		t.Run(spec, func(t *testing.T) {
			cfg := checkConfig{calls: 8, concurrency: 2, events: 8, seed: 3, spec: mustSpec(t, spec)}
			s, err := runSide(context.Background(), cfg, true, newProgress(io.Discard, false))
			if err != nil {
				t.Fatal(err)
			}
			if v := recordedViolations(cfg, s); len(v) > 0 {
				t.Fatalf("the unchanged library recorded %v; [recorded failures] reports %q", s.recorded.snapshot(), v)
			}
		})
	}
}
