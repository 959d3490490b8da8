package main

// This file is the fleet command: the same throttle storm from several OS
// processes, once with a retry bucket per process and once with one bucket
// in Redis (backoff.RedisBucket), side by side.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/redis/go-redis/v9"

	"github.com/streamstatus/streamstatus/backoff"
	"github.com/streamstatus/streamstatus/integration/fake"
	"github.com/streamstatus/streamstatus/internal/redistest"
	"github.com/streamstatus/streamstatus/middleware"
)

// fleetConfig is what fleet's flags say.
type fleetConfig struct {
	processes, streams, attempts int
	redis                        string
	// worker mode: this process is one member of the fleet.
	worker        bool
	endpoint, key string
}

func fleetFlags(cfg *fleetConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("streamcheck fleet", flag.ContinueOnError)
	fs.IntVar(&cfg.processes, "processes", 4, "OS processes in the fleet, each with its own SDK client and Redis connection")
	fs.IntVar(&cfg.streams, "streams", 50, "concurrent streams per process")
	fs.IntVar(&cfg.attempts, "attempts", 3, "max attempts per call")
	fs.StringVar(&cfg.redis, "redis", "", "Redis host:port for the shared bucket; empty starts a redis-server on a free loopback port for this run")
	fs.BoolVar(&cfg.worker, "worker", false, "internal: run as one process of the fleet")
	fs.StringVar(&cfg.endpoint, "endpoint", "", "internal: the fake endpoint's URL (worker)")
	fs.StringVar(&cfg.key, "key", "", "internal: the Redis key of the shared bucket (worker; empty: a bucket per process)")
	return fs
}

const fleetHelp = `streamcheck fleet: the retry quota of a fleet, with no AWS account.

Runs -processes copies of this program, each with its own bedrockruntime client, against one
fake endpoint on 127.0.0.1 that throttles every first frame; first with a retry bucket per
process (the SDK's default), then with one backoff.RedisBucket that every process shares.
Bucket capacity C = 500 and throttle retry cost K = 5 (the SDK's), no backoff delays. The
shared side makes at most N + floor(C/K) server calls for N streams; the per-process side
makes up to N + P*floor(C/K). Exit status 0 when the shared side kept its bound.

Flags:
`

// fleetWorkerResult is what one worker prints, as one JSON line.
type fleetWorkerResult struct {
	Quota       int    `json:"quota"`
	MaxAttempts int    `json:"max_attempts"`
	Other       int    `json:"other"`
	FellBack    bool   `json:"fell_back"`
	FirstOther  string `json:"first_other,omitempty"`
}

// runFleet runs the fleet command.
func runFleet(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfg fleetConfig
	fs := fleetFlags(&cfg)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, fleetHelp)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintf(stderr, "%s: %v\nrun 'streamcheck fleet -h' for usage\n", fs.Name(), err)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "%s: unexpected argument %q (flags come as -name value)\n", fs.Name(), fs.Arg(0))
		return 2
	case cfg.processes < 1 || cfg.processes > 64:
		fmt.Fprintf(stderr, "%s: -processes %d: want 1 to 64\n", fs.Name(), cfg.processes)
		return 2
	case cfg.streams < 1 || cfg.streams > 1000:
		fmt.Fprintf(stderr, "%s: -streams %d: want 1 to 1000\n", fs.Name(), cfg.streams)
		return 2
	case cfg.attempts < 1 || cfg.attempts > 10:
		fmt.Fprintf(stderr, "%s: -attempts %d: want 1 to 10\n", fs.Name(), cfg.attempts)
		return 2
	}
	if cfg.worker {
		return fleetWorker(ctx, cfg, stdout, stderr)
	}

	redisAddr, started := cfg.redis, ""
	if redisAddr == "" {
		srv, err := redistest.Start()
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v; or pass -redis host:port\n", fs.Name(), err)
			return 1
		}
		defer srv.Close()
		redisAddr, started = srv.Addr(), " (started for this run)"
	}
	key := "streamstatus:streamcheck:fleet:" + strconv.FormatInt(time.Now().UnixNano(), 36)
	sides := []struct {
		name, key string
		calls     int
		results   []fleetWorkerResult
	}{{name: "per-process buckets"}, {name: "one shared Redis bucket", key: key}}
	for i := range sides {
		calls, results, err := runFleetSide(ctx, cfg, redisAddr, sides[i].key)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %s: %v\n", fs.Name(), sides[i].name, err)
			return 1
		}
		sides[i].calls, sides[i].results = calls, results
	}
	if rdb := redis.NewClient(&redis.Options{Addr: redisAddr}); rdb != nil {
		rdb.Del(context.Background(), key) // leave a user's Redis as it was
		rdb.Close()
	}

	n := cfg.processes * cfg.streams
	perBucket := min(n*(cfg.attempts-1), backoff.DefaultBucketCapacity/backoff.DefaultThrottleRetryCost)
	bound := n + perBucket
	row := func(label string, f func(calls int, rs []fleetWorkerResult) string) {
		fmt.Fprintf(stdout, "%-34s %22s %26s\n", label, f(sides[0].calls, sides[0].results), f(sides[1].calls, sides[1].results))
	}
	sum := func(rs []fleetWorkerResult, f func(fleetWorkerResult) int) int {
		t := 0
		for _, r := range rs {
			t += f(r)
		}
		return t
	}
	fmt.Fprintf(stdout, "streamcheck fleet: %d processes x %d streams (N = %d), every first frame throttled\n", cfg.processes, cfg.streams, n)
	fmt.Fprintf(stdout, "retry quota C = %d, throttle retry K = %d, %d attempts, no backoff delays; Redis %s%s\n\n",
		backoff.DefaultBucketCapacity, backoff.DefaultThrottleRetryCost, cfg.attempts, redisAddr, started)
	fmt.Fprintf(stdout, "%-34s %22s %26s\n", "", sides[0].name, sides[1].name)
	row("server calls", func(c int, _ []fleetWorkerResult) string { return strconv.Itoa(c) })
	row("retries", func(c int, _ []fleetWorkerResult) string { return strconv.Itoa(c - n) })
	row("calls stopped by the retry quota", func(_ int, rs []fleetWorkerResult) string {
		return strconv.Itoa(sum(rs, func(r fleetWorkerResult) int { return r.Quota }))
	})
	row("calls stopped by max attempts", func(_ int, rs []fleetWorkerResult) string {
		return strconv.Itoa(sum(rs, func(r fleetWorkerResult) int { return r.MaxAttempts }))
	})
	fmt.Fprintf(stdout, "%-34s %22s %26s\n", "bound on server calls",
		fmt.Sprintf("N + P*floor(C/K) = %d", n+cfg.processes*min(cfg.streams*(cfg.attempts-1), perBucket)),
		fmt.Sprintf("N + floor(C/K) = %d", bound))
	fellBack, other := false, 0
	for _, s := range sides {
		for _, r := range s.results {
			fellBack = fellBack || (s.key != "" && r.FellBack)
			other += r.Other
			if r.FirstOther != "" {
				fmt.Fprintf(stderr, "%s: a call ended unexpectedly: %s\n", fs.Name(), r.FirstOther)
			}
		}
	}
	switch {
	case fellBack:
		fmt.Fprintf(stdout, "\nFAIL: a process fell back to its local bucket (Redis too slow or down); the shared figure is not the fleet's\n")
		return 1
	case other > 0:
		fmt.Fprintf(stdout, "\nFAIL: %d calls ended with an error other than the quota or max attempts\n", other)
		return 1
	case sides[1].calls > bound:
		fmt.Fprintf(stdout, "\nFAIL: the shared bucket let %d server calls through, above N + floor(C/K) = %d\n", sides[1].calls, bound)
		return 1
	}
	fmt.Fprintf(stdout, "\nOK: the shared bucket held the fleet to %d server calls (bound %d); per-process buckets made %d\n",
		sides[1].calls, bound, sides[0].calls)
	return 0
}

// runFleetSide runs the storm once against a new endpoint and returns its
// server calls and the workers' results.
func runFleetSide(ctx context.Context, cfg fleetConfig, redisAddr, key string) (int, []fleetWorkerResult, error) {
	srv, err := fake.NewServer()
	if err != nil {
		return 0, nil, err
	}
	defer srv.Close()
	srv.SetDefault(fake.Response{Steps: []fake.Step{fake.Exception("throttlingException", "Too many requests")}})
	exe, err := os.Executable()
	if err != nil {
		return 0, nil, fmt.Errorf("find this program to start the fleet: %w", err)
	}
	results := make([]fleetWorkerResult, cfg.processes)
	errs := make([]error, cfg.processes)
	var wg sync.WaitGroup
	for i := 0; i < cfg.processes; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.CommandContext(ctx, exe, "fleet", "-worker", "-endpoint", srv.URL, "-redis", redisAddr, "-key", key,
				"-streams", strconv.Itoa(cfg.streams), "-attempts", strconv.Itoa(cfg.attempts))
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			if err := cmd.Run(); err != nil {
				errs[i] = fmt.Errorf("process %d: %v: %s", i, err, bytes.TrimSpace(errOut.Bytes()))
				return
			}
			sc := bufio.NewScanner(&out)
			for sc.Scan() {
				if json.Unmarshal(sc.Bytes(), &results[i]) == nil {
					return
				}
			}
			errs[i] = fmt.Errorf("process %d printed no result: %s", i, bytes.TrimSpace(out.Bytes()))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, nil, err
	}
	return srv.CallCount(), results, nil
}

// fleetWorker is one process of the fleet: -streams concurrent calls, one
// JSON line of outcomes on stdout.
func fleetWorker(ctx context.Context, cfg fleetConfig, stdout, stderr io.Writer) int {
	var bucket backoff.Bucket = backoff.NewTokenBucket(backoff.DefaultBucketCapacity)
	var rb *backoff.RedisBucket
	if cfg.key != "" {
		rdb := redis.NewClient(&redis.Options{Addr: cfg.redis})
		defer rdb.Close()
		// A generous deadline: the demo is about sharing, and a loaded
		// laptop must not push it onto the fallback.
		rb = backoff.NewRedisBucket(rdb, cfg.key, backoff.DefaultBucketCapacity,
			func(o *backoff.RedisOptions) { o.OperationTimeout = 2 * time.Second })
		bucket = rb
	}
	budget := backoff.NewBudget(func(b *backoff.Budget) {
		b.MaxAttempts = cfg.attempts
		b.Bucket = bucket
		b.Transient, b.Throttle = backoff.Immediate, backoff.Immediate
	})
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := bedrockruntime.NewFromConfig(aws.Config{
		HTTPClient:   &http.Client{Transport: tr},
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDSTREAMCHECKFLEET", "streamcheck-fleet-secret", ""),
		BaseEndpoint: aws.String(cfg.endpoint),
		Retryer:      func() aws.Retryer { return budget.NewStandard() },
	}, middleware.WithBedrock(middleware.WithBudget(budget)))

	var mu sync.Mutex
	var res fleetWorkerResult
	var wg sync.WaitGroup
	for i := 0; i < cfg.streams; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := client.InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{
				ModelId:     aws.String("anthropic.claude-fleet"),
				Body:        []byte(`{"prompt":"hello"}`),
				ContentType: aws.String("application/json"),
			})
			if err == nil {
				stream := out.GetStream()
				for range stream.Events() {
				}
				err = stream.Err()
				stream.Close()
			}
			var qe *backoff.QuotaExceededError
			var me *retry.MaxAttemptsError
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.As(err, &qe):
				res.Quota++
			case errors.As(err, &me):
				res.MaxAttempts++
			default:
				res.Other++
				if res.FirstOther == "" {
					res.FirstOther = fmt.Sprint(err)
				}
			}
		}()
	}
	wg.Wait()
	res.FellBack = rb != nil && rb.Outages() > 0 // ever, not only at the end: a recovered outage skews the figures too
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		fmt.Fprintf(stderr, "streamcheck fleet: %v\n", err)
		return 1
	}
	return 0
}
