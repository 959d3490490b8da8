package integration_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/streamstatus/streamstatus/integration/internal/workload"
)

// One client, many goroutines (issue 12). Every call's events are named
// after its own prompt and carry, at frame 6, an event type the SDK does
// not model; the SDK re-encodes such an event, which in smithy-go v1.28.9
// goes through one encoder per client. Run these under -race: a report
// fails the test.

// TestConcurrentStreamsOneClient: 16 goroutines × 40 rounds of each
// operation on one client with WithBedrock; every stream receives exactly
// its own events, in order, the unknown event with its own bytes.
func TestConcurrentStreamsOneClient(t *testing.T) {
	const goroutines, rounds = 16, 40
	srv := newServer(t)
	srv.SetScript(workload.Script(workload.UnknownAt))
	c := workload.NewClient(srv.URL, workload.WithBedrock)
	for _, op := range workload.Ops {
		t.Run(op.Name, func(t *testing.T) {
			got := workload.Run(context.Background(), c, op, goroutines, rounds, "one")
			t.Log(got)
			if got.Streams != goroutines*rounds || got.Wrong != 0 || got.Foreign != 0 || got.Failed != 0 {
				t.Errorf("%v; first wrong stream: %s", got, got.Example)
			}
		})
	}
}

// TestConcurrentStreamsCloseThenNext: 200 calls in sequence per operation,
// each reading 3 events and closing its stream before the next call
// starts. The SDK's EventStreamReader.Close does not wait for its reader
// goroutine, so the closed stream's goroutine still decodes while the next
// stream's starts.
func TestConcurrentStreamsCloseThenNext(t *testing.T) {
	// The unknown event right after the events read: the closed stream's
	// goroutine is then re-encoding it while the next stream starts.
	const calls, read = 200, 3
	const unknownAt = read + 1
	srv := newServer(t)
	srv.SetScript(workload.Script(unknownAt))
	c := workload.NewClient(srv.URL, workload.WithBedrock)
	for _, op := range workload.Ops {
		t.Run(op.Name, func(t *testing.T) {
			var total int
			for i := range calls {
				prompt := fmt.Sprintf("call-close-g00-r%03d", i)
				got, err := op.Call(context.Background(), c, prompt, read)
				if tally := workload.Check(op, prompt, unknownAt, read, got, err); tally.Wrong != 0 {
					t.Fatalf("call %d: %s", i, tally.Example)
				}
				total++
			}
			if total != calls {
				t.Fatalf("%d calls made, want %d", total, calls)
			}
		})
	}
}

// TestConcurrentStreamsBareControl runs the same workload on the bare SDK,
// in a child process (the bare SDK can panic in a goroutine of its own, and
// under -race it reports races), and logs what it saw. It asserts nothing
// about the bare SDK: it is the control the figures in BENCHMARKS.md are
// read against.
func TestConcurrentStreamsBareControl(t *testing.T) {
	const goroutines, rounds = 16, 10
	if os.Getenv("STREAMSTATUS_BARE_CONTROL_CHILD") == "1" {
		srv := newServer(t)
		srv.SetScript(workload.Script(workload.UnknownAt))
		c := workload.NewClient(srv.URL, workload.Bare)
		for _, op := range workload.Ops {
			got := workload.Run(context.Background(), c, op, goroutines, rounds, "bare")
			fmt.Printf("control %s: %v; first wrong stream: %s\n", op.Name, got, got.Example)
		}
		return
	}
	if testing.Short() {
		t.Skip("the control runs the workload in a child process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestConcurrentStreamsBareControl$", "-test.count=1")
	cmd.Env = append(os.Environ(), "STREAMSTATUS_BARE_CONTROL_CHILD=1")
	out, err := cmd.CombinedOutput()
	text := string(out)
	for _, line := range regexp.MustCompile(`(?m)^control .*$`).FindAllString(text, -1) {
		t.Log(line)
	}
	t.Logf("bare SDK control: %d race reports, panicked: %v, child exit: %v",
		strings.Count(text, "WARNING: DATA RACE"), strings.Contains(text, "\npanic:") || strings.HasPrefix(text, "panic:"), err)
}
