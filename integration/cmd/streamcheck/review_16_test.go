package main

import "testing"

// Review of issue 16, "Behaviour": "streamcheck uses its slow fault to show
// it (e.g. -first-event-timeout 500ms on the streamstatus side, with stalls
// recovered in the table)". streamcheck has no stall timeout flag at all:
// the slow fault only ever measures a pause the plugin waits out.
func TestDefect_StreamcheckHasNoStallTimeoutFlag(t *testing.T) {
	var cfg checkConfig
	var faults string
	fs := checkFlags(&cfg, &faults)
	for _, name := range []string{"first-event-timeout", "idle-timeout"} {
		if fs.Lookup(name) == nil {
			t.Errorf("streamcheck check has no -%s flag", name)
		}
	}
}
