package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"
)

// This file is the serve command: the fault-injecting endpoint alone, for
// clients that are not ours.

// serveConfig is what serve's flags say.
type serveConfig struct {
	addr   string
	faults string
	seed   int64
	events int
	delay  time.Duration
	quiet  bool
}

// serveFlags defines serve's flags on a new FlagSet.
func serveFlags(cfg *serveConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("streamcheck serve", flag.ContinueOnError)
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:0", "loopback host:port to listen on (port 0: a free port, printed at start)")
	fs.StringVar(&cfg.faults, "faults", "default", "the fault SPEC (see below): default, none (a healthy endpoint), or rules")
	fs.Int64Var(&cfg.seed, "seed", 1, "seed of the fault draws")
	fs.IntVar(&cfg.events, "events", 20, "content events (text deltas) per healthy stream")
	fs.DurationVar(&cfg.delay, "delay", 0, "wait this long before each answer (stands in for service latency)")
	fs.BoolVar(&cfg.quiet, "quiet", false, "do not log one line per request on stderr")
	return fs
}

// serveHelp follows serve's flags in --help.
const serveHelp = `
  serve prints its URL on stdout, logs one line per request on stderr (call, attempt,
  operation, model and the fault injected; never headers or bodies), and runs until
  SIGINT or SIGTERM. It answers ConverseStream, InvokeModelWithResponseStream, Converse
  and InvokeModel with the real event-stream framing; requests need a SigV4
  Authorization header (any credentials: the signature is not checked). Point any AWS
  SDK at it with its endpoint URL setting, for example
    AWS_ENDPOINT_URL_BEDROCK_RUNTIME=URL (most AWS SDKs and the AWS CLI)
    boto3.client("bedrock-runtime", endpoint_url=URL, region_name="us-east-1")
    bedrockruntime.NewFromConfig(cfg, func(o *bedrockruntime.Options) { o.BaseEndpoint = aws.String(URL) })
`

// runServe runs the serve command until ctx ends.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfg serveConfig
	fs := serveFlags(&cfg)
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if err := checkLoopback(cfg.addr); err != nil {
		return usageError(stderr, fs.Name(), "--addr "+err.Error())
	}
	if cfg.events < 1 || cfg.events > 10_000 {
		return usageError(stderr, fs.Name(), fmt.Sprintf("--events %d: want 1 to 10000", cfg.events))
	}
	if cfg.delay < 0 {
		return usageError(stderr, fs.Name(), fmt.Sprintf("--delay %v: want 0 or more", cfg.delay))
	}
	spec, err := parseSpec(cfg.faults)
	if err != nil {
		return usageError(stderr, fs.Name(), "--faults: "+err.Error())
	}
	ecfg := endpointConfig{addr: cfg.addr, spec: spec, seed: cfg.seed, events: cfg.events, delay: cfg.delay, forgetAfter: maxTracked}
	if !cfg.quiet {
		ecfg.log = stderr
	}
	ep, err := startEndpoint(ecfg)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return exitFailed
	}
	fmt.Fprintln(stdout, ep.URL())
	fmt.Fprintf(stderr, "%s: fake Bedrock Runtime endpoint at %s, faults %q, seed %d; stop with Ctrl-C\n",
		fs.Name(), ep.URL(), spec.String(), cfg.seed)
	<-ctx.Done()
	ep.Close()
	fmt.Fprintf(stderr, "%s: stopped after %d requests\n", fs.Name(), ep.ServerCalls())
	return exitOK
}
