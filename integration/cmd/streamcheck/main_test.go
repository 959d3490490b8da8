package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// asMainEnv makes the test binary behave as the streamcheck command, so a
// test can run it as a child process with an environment of its choosing.
const asMainEnv = "STREAMCHECK_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of handler
// goroutines (serve's request log) and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runCmd runs streamcheck in-process with args and returns its exit
// status, stdout and stderr.
func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr syncBuffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"unknown command", []string{"bogus"}, `unknown command "bogus" (commands: serve, probe, help`},
		{"unknown flag", []string{"-bogus"}, "flag provided but not defined: -bogus"},
		{"stray argument after flags", []string{"-calls", "3", "extra"}, `unexpected argument "extra"`},
		{"zero calls", []string{"-calls", "0"}, "-calls 0: want 1 to 100000"},
		{"zero concurrency", []string{"-concurrency", "0"}, "-concurrency 0: want 1 to 256"},
		{"zero events", []string{"-events", "0"}, "-events 0: want 1 to 10000"},
		{"bad spec names the rule", []string{"-faults", "throttling@0:p=0.1, throtle@0"},
			`streamcheck: -faults: "throtle@0": unknown fault "throtle" (did you mean "throttling"?)`},
		{"calls not a number", []string{"-calls", "many"}, `invalid value "many" for flag -calls`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, c.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if !strings.Contains(stderr, c.want) {
				t.Errorf("stderr %q\nwant it to contain %q", stderr, c.want)
			}
			if !strings.Contains(stderr, "run 'streamcheck -h' for usage") {
				t.Errorf("stderr %q does not point to -h", stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}

func TestHelpDocumentsEveryFaultAndCommand(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"help"}, {"serve", "-h"}, {"probe", "--help"}} {
		code, stdout, _ := runCmd(t, args...)
		if code != exitOK {
			t.Fatalf("%v: exit %d", args, code)
		}
		for _, k := range faultKinds {
			if !strings.Contains(stdout, "\n  "+k.name+" ") {
				t.Errorf("%v: help has no row for fault %q", args, k.name)
			}
		}
		for _, want := range []string{"httpNNN", "streamcheck serve", "streamcheck probe", "-addr", "-model", "-faults", "-json", "attempts=N"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("%v: help lacks %q", args, want)
			}
		}
	}
}
