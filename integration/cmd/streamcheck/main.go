// Command streamcheck shows what streamstatus does, with no AWS account.
//
// With no arguments it starts a fake Bedrock Runtime endpoint in-process,
// injects a realistic mix of in-stream faults (first-frame throttles,
// mid-stream 500/503, model stream errors, Anthropic overloaded envelopes,
// connection resets, a slow first token), runs the same batch of
// ConverseStream and InvokeModelWithResponseStream calls through the bare
// SDK and through the plugin, and prints the two sides next to each other:
//
//	go run ./integration/cmd/streamcheck
//	go run ./integration/cmd/streamcheck -calls 500 -seed 7 -json
//	go run ./integration/cmd/streamcheck -faults 'throttling@0:p=0.5, reset@3:p=0.1'
//
// It exits 0 when the plugin side kept its promises: every retryable fault
// before content was recovered transparently, no event was delivered twice
// or missed, and every failure carried a typed status.
//
// Two subcommands go further:
//
//	streamcheck serve --addr 127.0.0.1:8080 --faults SPEC
//
// runs only the fault-injecting endpoint, so any SDK in any language can
// point its endpoint URL at it, and
//
//	streamcheck probe --region us-east-1 --model MODEL
//
// makes one real ConverseStream call through the plugin with the default
// AWS credential chain and prints what was retried and why.
//
// "streamcheck -h" documents the flags and the fault SPEC language.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK           = 0   // the check passed, serve stopped cleanly, the probe succeeded
	exitFailed       = 1   // invariants broken, the probe's call failed, or a runtime error
	exitUsage        = 2   // bad flags, arguments or SPEC
	exitInconclusive = 3   // no violation, but streamcheck's own timeout ended calls it could not check
	exitInterrupted  = 130 // SIGINT or SIGTERM during a check
)

// run is main without the process: it dispatches to the subcommands and
// returns the exit status. ctx ends on SIGINT/SIGTERM.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "serve":
			return runServe(ctx, args[1:], stdout, stderr)
		case "probe":
			return runProbe(ctx, args[1:], stdout, stderr)
		case "fleet":
			return runFleet(ctx, args[1:], stdout, stderr) // fleet.go
		case "check":
			args = args[1:]
		case "help":
			writeHelp(stdout)
			return exitOK
		default:
			return usageError(stderr, "streamcheck", fmt.Sprintf("unknown command %q (commands: serve, probe, help; no command runs the check)", args[0]))
		}
	}
	return runCheck(ctx, args, stdout, stderr)
}

// parseFlags parses args with fs. It prints -h help to stdout (exit 0)
// and errors to stderr (exit 2); ok is false when run should return code.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	fs.SetOutput(io.Discard) // errors are printed below, once, without the whole usage
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		writeHelp(stdout)
		return exitOK, false
	case err != nil:
		return usageError(stderr, fs.Name(), err.Error()), false
	case fs.NArg() > 0:
		return usageError(stderr, fs.Name(), fmt.Sprintf("unexpected argument %q (flags come as -name value)", fs.Arg(0))), false
	}
	return 0, true
}

// usageError prints a usage error and returns exitUsage.
func usageError(stderr io.Writer, cmd, msg string) int {
	fmt.Fprintf(stderr, "%s: %s\nrun 'streamcheck -h' for usage\n", cmd, msg)
	return exitUsage
}

// checkFlags defines the check's flags on a new FlagSet.
func checkFlags(cfg *checkConfig, faults *string) *flag.FlagSet {
	fs := flag.NewFlagSet("streamcheck", flag.ContinueOnError)
	fs.IntVar(&cfg.calls, "calls", 200, "calls per side, alternately ConverseStream and InvokeModelWithResponseStream")
	fs.IntVar(&cfg.concurrency, "concurrency", 8, "calls in flight at once on each side (one SDK client per call in flight)")
	fs.Int64Var(&cfg.seed, "seed", 1, "seed of the fault draws: the same seed gives the same faults to the same calls")
	fs.IntVar(&cfg.events, "events", 20, "content events (text deltas) per healthy stream")
	fs.StringVar(faults, "faults", "default", "the fault SPEC (see below): default, none, or rules")
	fs.BoolVar(&cfg.json, "json", false, "print the result as JSON on stdout instead of the table")
	fs.BoolVar(&cfg.progress, "progress", false, "show the progress line even when stderr is not a terminal")
	fs.DurationVar(&cfg.firstEventTimeout, "first-event-timeout", 0, "streamstatus side only: middleware.WithFirstEventTimeout; "+
		"pauses (slow faults) before the first content event that add up to more fail the attempt as a StreamStalled stall the "+
		"retryer retries (0: off; the bare SDK waits them out); pauses within max(D/4, 50ms) of D are refused as unpredictable")
	fs.DurationVar(&cfg.idleTimeout, "idle-timeout", 0, "streamstatus side only: middleware.WithIdleTimeout; a pause longer "+
		"than 1.25 × this fails the stream as a StreamStalled stall: retried before content, stream.Err() after it, "+
		"with the events before the pause (0: off); pauses from D - max(D/4, 50ms) to 1.25 × D + max(D/4, 50ms) are refused as unpredictable")
	return fs
}

// runCheck runs the side-by-side check.
func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfg checkConfig
	var faults string
	fs := checkFlags(&cfg, &faults)
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	switch {
	case cfg.calls < 1 || cfg.calls > 100_000:
		return usageError(stderr, "streamcheck", fmt.Sprintf("-calls %d: want 1 to 100000", cfg.calls))
	case cfg.concurrency < 1 || cfg.concurrency > 256:
		return usageError(stderr, "streamcheck", fmt.Sprintf("-concurrency %d: want 1 to 256", cfg.concurrency))
	case cfg.events < 1 || cfg.events > 10_000:
		return usageError(stderr, "streamcheck", fmt.Sprintf("-events %d: want 1 to 10000", cfg.events))
	case cfg.firstEventTimeout < 0:
		return usageError(stderr, "streamcheck", fmt.Sprintf("-first-event-timeout %v: want a positive duration, or 0 for none", cfg.firstEventTimeout))
	case cfg.idleTimeout < 0:
		return usageError(stderr, "streamcheck", fmt.Sprintf("-idle-timeout %v: want a positive duration, or 0 for none", cfg.idleTimeout))
	}
	spec, err := parseSpec(faults)
	if err != nil {
		return usageError(stderr, "streamcheck", "-faults: "+err.Error())
	}
	if err := spec.checkPlan(cfg.calls); err != nil {
		return usageError(stderr, "streamcheck", "-faults: "+err.Error())
	}
	cfg.spec = spec
	if err := checkStallPlan(cfg); err != nil {
		return usageError(stderr, "streamcheck", "-faults with the timeouts: "+err.Error())
	}
	return check(ctx, cfg, stdout, stderr)
}

// check runs both sides of a parsed check and prints the result.
func check(ctx context.Context, cfg checkConfig, stdout, stderr io.Writer) int {
	prog := newProgress(stderr, cfg.progress || isTerminal(stderr))

	bare, err := runSide(ctx, cfg, false, prog)
	if err == nil {
		var plugin *sideRun
		plugin, err = runSide(ctx, cfg, true, prog)
		if err == nil {
			r := buildReport(cfg, bare, plugin)
			if cfg.json {
				if err := r.writeJSON(stdout); err != nil {
					fmt.Fprintf(stderr, "streamcheck: write the JSON result: %v\n", err)
					return exitFailed
				}
			} else {
				r.writeTable(stdout)
			}
			switch {
			case !r.PluginInvariants.Met:
				return exitFailed
			case r.ToolTimeouts.Both > 0:
				return exitInconclusive
			}
			return exitOK
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "streamcheck: interrupted; no result")
		return exitInterrupted
	}
	fmt.Fprintf(stderr, "streamcheck: %v\n", err)
	return exitFailed
}

// writeHelp prints the usage of every command and the SPEC language.
func writeHelp(w io.Writer) {
	fmt.Fprint(w, `streamcheck: what streamstatus does to failures inside AWS event streams, with no AWS account.

Usage:
  streamcheck [flags]         the check: the same calls, with the same injected faults, through the
                              bare SDK and through streamstatus, against an in-process fake Bedrock
                              Runtime endpoint on 127.0.0.1; prints a side-by-side table
  streamcheck serve [flags]   only the fault-injecting endpoint, for any SDK in any language
  streamcheck probe [flags]   one real ConverseStream call through streamstatus with your AWS
                              credentials; prints what was retried and why
  streamcheck help            this text

Exit status: 0 when the check's streamstatus side met every invariant below, serve stopped on
SIGINT/SIGTERM, or the probe's call succeeded; 1 when an invariant was broken (each violation names
it, a streamstatus call that streamcheck's own timeout ended while the bare SDK finished it
included: [hang]) or on other failures; 2 for usage errors; 3 when nothing was broken but
streamcheck's own per-call timeout (sized from -events, -concurrency and the planned pauses) ended
calls on both sides, which were not checked (a timeout on the bare side only is noted, exit 0).

Invariants of the check (a violation names the one it breaks):
`+invariantHelp+`
Rows of the check's table:
`+rowDefsText()+`

Check flags:
`)
	var cfg checkConfig
	var s string
	printDefaults(w, checkFlags(&cfg, &s))
	fmt.Fprint(w, "\nServe flags:\n")
	printDefaults(w, serveFlags(&serveConfig{}))
	fmt.Fprint(w, serveHelp)
	fmt.Fprint(w, "\nProbe flags:\n")
	printDefaults(w, probeFlags(&probeConfig{}))
	fmt.Fprint(w, "\n"+specHelp)
}

// printDefaults prints a FlagSet's flags to w.
func printDefaults(w io.Writer, fs *flag.FlagSet) {
	fs.SetOutput(w)
	fs.PrintDefaults()
}
