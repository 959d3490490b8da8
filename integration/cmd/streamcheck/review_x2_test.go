package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	smithymiddleware "github.com/aws/smithy-go/middleware"

	"github.com/streamstatus/streamstatus/middleware"
)

// TestDefect_X2CheckPassesWithFailureMetricsBroken: streamcheck is "the
// main job" and shows, under its table, what the streamstatus side's
// clients recorded through their MeterProvider. With the library's
// observation removed from every stack (so no streamstatus.stream.failures
// is ever recorded), a run full of converted failures still exits 0 and
// says "streamstatus met its invariants": the failures it counts itself are
// never held against what the library recorded, so broken metrics pass.
func TestDefect_X2CheckPassesWithFailureMetricsBroken(t *testing.T) {
	noObserver := func(stack *smithymiddleware.Stack) error {
		_, err := stack.Initialize.Remove(middleware.ObserveID)
		return err
	}
	cfg := checkConfig{calls: 40, concurrency: 4, events: 20, seed: 1, spec: mustSpec(t, "throttling@0:p=0.5, internalServer@8:p=0.5"),
		pluginAPIOptions: []func(*smithymiddleware.Stack) error{noObserver}}
	var stdout, stderr bytes.Buffer
	code := check(context.Background(), cfg, &stdout, &stderr)
	if code == exitOK {
		t.Fatalf("no failure metric recorded at all, yet exit %d (%q)", code, lastLine(stdout.String()))
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
