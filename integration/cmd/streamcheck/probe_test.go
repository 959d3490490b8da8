package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// runChild runs streamcheck as a child process (the test binary, see
// TestMain) with exactly the environment env plus HOME set to an empty
// directory: no AWS_* variable of the machine running the test leaks in.
func runChild(t *testing.T, env []string, args ...string) (code int, stdout, stderr string, took time.Duration) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append([]string{asMainEnv + "=1", "HOME=" + t.TempDir()}, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	took = time.Since(start)
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run %v: %v", args, err)
	}
	return code, out.String(), errOut.String(), took
}

func TestProbeWithoutCredentialsFailsFast(t *testing.T) {
	code, stdout, stderr, took := runChild(t, []string{"AWS_EC2_METADATA_DISABLED=true"},
		"probe", "--region", "us-east-1", "--model", rawModel)
	if code != exitFailed {
		t.Errorf("exit %d, want %d", code, exitFailed)
	}
	if took > 10*time.Second {
		t.Errorf("took %v, want well under 10s", took)
	}
	for _, want := range []string{"streamcheck probe: no AWS credentials",
		"configure credentials: AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY", "or run aws configure", "(no call was made)"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if stdout != "" {
		t.Errorf("stdout %q: nothing should be printed before credentials are found", stdout)
	}
}

// TestProbeCredentialLookupIsBounded points the instance metadata service
// at a local server that accepts connections and never answers: the probe
// must give up after --cred-timeout and say how to skip IMDS.
func TestProbeCredentialLookupIsBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	defer func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()

	code, _, stderr, took := runChild(t, []string{"AWS_EC2_METADATA_SERVICE_ENDPOINT=http://" + ln.Addr().String()},
		"probe", "--region", "us-east-1", "--model", rawModel, "--cred-timeout", "1s")
	if code != exitFailed || took > 8*time.Second {
		t.Errorf("exit %d after %v; want %d within a few seconds", code, took, exitFailed)
	}
	for _, want := range []string{"no AWS credentials found within 1s", "set AWS_EC2_METADATA_DISABLED=true", "configure credentials:"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func TestProbeUsageErrors(t *testing.T) {
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"model is required", nil, []string{"probe", "--region", "us-east-1"}, "streamcheck probe: --model is required"},
		{"no region anywhere", []string{"AWS_EC2_METADATA_DISABLED=true"}, []string{"probe", "--model", rawModel},
			"no region: pass --region, or set AWS_REGION"},
		{"zero attempts", nil, []string{"probe", "--model", rawModel, "--max-attempts", "0"}, "--max-attempts 0: want 1 or more"},
		{"unknown flag", nil, []string{"probe", "--modle", rawModel}, "flag provided but not defined: -modle"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr, _ := runChild(t, c.env, c.args...)
			if code != exitUsage || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, exitUsage, c.want)
			}
		})
	}
}

// probeEnv is an environment with made-up static credentials: the probe
// talks to a local fake endpoint, never to AWS.
var probeEnv = []string{"AWS_ACCESS_KEY_ID=AKIDPROBETEST", "AWS_SECRET_ACCESS_KEY=probe-test-secret", "AWS_EC2_METADATA_DISABLED=true"}

func TestProbeReportsRetries(t *testing.T) {
	ep, err := startEndpoint(endpointConfig{spec: mustSpec(t, "throttling@1:call=1"), events: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	code, stdout, stderr, _ := runChild(t, probeEnv,
		"probe", "--region", "us-east-1", "--model", rawModel, "--endpoint-url", ep.URL(), "--max-backoff", "1ms")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"probe: ConverseStream to " + rawModel + " in us-east-1 via " + ep.URL() + ", credentials from EnvConfigCredentials, through streamstatus",
		"attempt 1 failed: Bedrock Runtime ConverseStream: ThrottlingException (HTTP 429, retryable, throttle) before any event",
		"[retryable]", "retrying in", "(attempt 2 of 3)",
		"stream opened on attempt 2",
		"reply: Streams0 fail1 inside2",
		"done: 7 events", "stop reason end_turn", "tokens 12 in / 3 out",
		"retries: 1, by the SDK's retryer (ThrottlingException); 2 attempts",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout+stderr, "AKIDPROBETEST") || strings.Contains(stdout+stderr, "probe-test-secret") {
		t.Errorf("the probe printed the credentials:\n%s\n%s", stdout, stderr)
	}
}

func TestProbeReportsAFailureAfterContent(t *testing.T) {
	ep, err := startEndpoint(endpointConfig{spec: mustSpec(t, "serviceUnavailable@3:call=1"), events: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	code, stdout, stderr, _ := runChild(t, probeEnv,
		"probe", "--region", "us-east-1", "--model", rawModel, "--endpoint-url", ep.URL(), "--max-backoff", "1ms")
	if code != exitFailed {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitFailed, stdout, stderr)
	}
	for _, want := range []string{
		"probe: the stream failed after 3 events (not retried: the reply had started)",
		"ServiceUnavailableException (HTTP 503, retryable) after 3 events",
		"status 503, code ServiceUnavailableException, retryable true",
		"retries: none (1 attempt)",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}
