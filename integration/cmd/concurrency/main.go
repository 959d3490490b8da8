// Command concurrency measures, for every way of installing streamstatus and
// for the bare SDK, what concurrent streams of one bedrockruntime client
// receive (issue 12): each call's events are named after its own prompt,
// with an event type the SDK does not model at frame 6. The corruption
// depends on timing, so it runs the workload in separate processes (a
// panic in an SDK goroutine kills only its process, and is counted):
//
//	go run ./integration/cmd/concurrency                        # every path, 20 processes × 160 streams per operation
//	go run ./integration/cmd/concurrency -install APIOption -procs 5
//
// Nothing is asserted: the figures are printed, one line per path.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/integration/internal/workload"
)

func main() {
	install := flag.String("install", "all", `install path: "all", or one of bare, WithBedrock, WithBedrock-per-call, APIOption, AppendMiddlewares`)
	procs := flag.Int("procs", 20, "processes per install path")
	parallel := flag.Int("parallel", 2, "processes at a time")
	goroutines := flag.Int("goroutines", 16, "goroutines per process, sharing one client")
	rounds := flag.Int("rounds", 5, "calls per goroutine and operation")
	child := flag.Bool("child", false, "run the workload once in this process and print its tally (used by the parent)")
	flag.Parse()

	paths, err := selectPaths(*install)
	if err != nil {
		fmt.Fprintln(os.Stderr, "concurrency:", err)
		os.Exit(2)
	}
	if *child {
		if err := runChild(paths[0], *goroutines, *rounds); err != nil {
			fmt.Fprintln(os.Stderr, "concurrency:", err)
			os.Exit(2)
		}
		return
	}
	fmt.Printf("%d processes × %d goroutines × %d rounds × %d operations per path; unknown event type at frame %d\n",
		*procs, *goroutines, *rounds, len(workload.Ops), workload.UnknownAt)
	for _, how := range paths {
		s := measure(how, *procs, *parallel, *goroutines, *rounds)
		fmt.Printf("%-22s %s\n", how, s)
		if s.example != "" {
			fmt.Printf("%-22s first wrong stream: %.300s\n", "", s.example)
		}
	}
}

func selectPaths(name string) ([]workload.Install, error) {
	if name == "all" {
		return workload.Installs, nil
	}
	for _, how := range workload.Installs {
		if how.String() == name {
			return []workload.Install{how}, nil
		}
	}
	return nil, fmt.Errorf("unknown install path %q: use all, bare, WithBedrock, WithBedrock-per-call, APIOption or AppendMiddlewares", name)
}

// runChild runs the workload once on one client and prints one tally line
// per operation.
func runChild(how workload.Install, goroutines, rounds int) error {
	srv, err := fake.NewServer()
	if err != nil {
		return err
	}
	defer srv.Close()
	srv.SetScript(workload.Script(workload.UnknownAt))
	c := workload.NewClient(srv.URL, how)
	for _, op := range workload.Ops {
		t := workload.Run(context.Background(), c, op, goroutines, rounds, "c")
		fmt.Printf("tally %d %d %d %d\n", t.Streams, t.Wrong, t.Foreign, t.Failed)
		if t.Example != "" {
			fmt.Printf("example %s\n", t.Example)
		}
	}
	return nil
}

// summary is what the processes of one install path saw.
type summary struct {
	streams, wrong, foreign, failed int
	procs, panicked, incomplete     int
	example                         string
}

func (s summary) String() string {
	return fmt.Sprintf("%5d streams: %4d wrong, %4d with another call's content, %3d failed; processes panicked: %d of %d (incomplete: %d)",
		s.streams, s.wrong, s.foreign, s.failed, s.panicked, s.procs, s.incomplete)
}

var tallyLine = regexp.MustCompile(`(?m)^tally (\d+) (\d+) (\d+) (\d+)$`)

func measure(how workload.Install, procs, parallel, goroutines, rounds int) summary {
	var (
		mu  sync.Mutex
		s   summary
		wg  sync.WaitGroup
		sem = make(chan struct{}, max(parallel, 1))
	)
	for range procs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cmd := exec.Command(os.Args[0], "-child", "-install", how.String(),
				"-goroutines", strconv.Itoa(goroutines), "-rounds", strconv.Itoa(rounds))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			text := out.String()
			mu.Lock()
			defer mu.Unlock()
			s.procs++
			if strings.Contains(text, "panic:") {
				s.panicked++
			}
			lines := tallyLine.FindAllStringSubmatch(text, -1)
			if err != nil || len(lines) != len(workload.Ops) {
				s.incomplete++
			}
			for _, m := range lines {
				n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
				s.streams += n(1)
				s.wrong += n(2)
				s.foreign += n(3)
				s.failed += n(4)
			}
			if i := strings.Index(text, "example "); s.example == "" && i >= 0 {
				s.example, _, _ = strings.Cut(text[i+len("example "):], "\n")
			}
		}()
	}
	wg.Wait()
	return s
}
