package main

import "testing"

// TestRecordedFailuresMatchTheOutcomes: the plugin side's MeterProvider
// counts each converted failure once, before content (each retried attempt)
// and after content (each failed call), and the bare side records nothing.
func TestRecordedFailuresMatchTheOutcomes(t *testing.T) {
	code, r, stderr := runJSON(t, "-calls", "20", "-faults", "throttling@0:p=0.5, internalServer@3:p=0.5")
	if code != exitOK {
		t.Fatalf("exit %d; stderr: %s", code, stderr)
	}
	if r.Bare.Recorded != nil {
		t.Errorf("bare side recorded %v, want nothing", r.Bare.Recorded)
	}
	p := r.Plugin
	if got, want := p.Recorded["InternalServerException after_content"], int64(p.Failed["500 InternalServerException"]); got != want || want == 0 {
		t.Errorf("recorded %d InternalServerException after content, %d calls failed with it", got, want)
	}
	if got, want := p.Recorded["ThrottlingException before_content"], int64(r.PlannedFaults["throttling@0:p=0.5"]); got != want || want == 0 {
		t.Errorf("recorded %d first-frame throttles, %d planned", got, want)
	}
	if len(p.Recorded) != 2 {
		t.Errorf("recorded %v, want only the two injected faults", p.Recorded)
	}
}
