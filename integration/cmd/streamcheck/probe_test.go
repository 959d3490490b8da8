package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// lockedBuffer is a bytes.Buffer safe for the endpoint's log goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// probeEndpoint starts a streamcheck endpoint with faults spec that logs
// to the returned buffer.
func probeEndpoint(t *testing.T, spec string) (*endpoint, *lockedBuffer) {
	t.Helper()
	log := &lockedBuffer{}
	ep, err := startEndpoint(endpointConfig{spec: mustSpec(t, spec), events: 3, log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ep.Close)
	return ep, log
}

var callNumber = regexp.MustCompile(`the endpoint logs this call as call (\d+) \(header X-Streamcheck-Call\)`)

// TestProbeReportsRetries runs the probe as a new user would against serve:
// an empty HOME and no AWS_* variable at all. It needs no credentials,
// prints nothing on stderr (no IMDS warning), and its attempts carry the
// names serve's log gives them.
func TestProbeReportsRetries(t *testing.T) {
	ep, log := probeEndpoint(t, "throttling@1:p=1")
	code, stdout, stderr, _ := runChild(t, nil,
		"probe", "--model", rawModel, "--endpoint-url", ep.URL(), "--max-backoff", "1ms")
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr (want none):\n%s", code, stdout, stderr)
	}
	m := callNumber.FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("stdout does not say how the endpoint logs the call:\n%s", stdout)
	}
	call := "call " + m[1]
	for _, want := range []string{
		"probe: ConverseStream to " + rawModel + " in us-east-1 via " + ep.URL() + ", credentials from made-up static credentials (the endpoint is local), through streamstatus",
		call + " attempt 1 failed: Bedrock Runtime ConverseStream: ThrottlingException (HTTP 429, retryable, throttle) before any event",
		"; the retryer retries it\n", "retrying in", "(attempt 2 of 3)",
		"stream opened on attempt 2",
		"reply: Streams0 fail1 inside2",
		"done: 7 events", "stop reason end_turn", "tokens 12 in / 3 out",
		"retries: 1, by the SDK's retryer (ThrottlingException); 2 attempts",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Count(stdout, "retryable") != 1 {
		t.Errorf("stdout says \"retryable\" %d times, want once (in the error's own line):\n%s", strings.Count(stdout, "retryable"), stdout)
	}
	for _, want := range []string{call + " attempt 1 ConverseStream", call + " attempt 2 ConverseStream"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the endpoint's log lacks %q:\n%s", want, log.String())
		}
	}
	if strings.Contains(stdout, dummySecretKey) {
		t.Errorf("the probe printed the secret key:\n%s", stdout)
	}
}

// TestProbeWithACABundle: with AWS_CA_BUNDLE set (common behind corporate
// proxies) the config loader must be able to add the bundle to the probe's
// HTTP client. A loopback endpoint loads the configuration only for an
// explicit --profile, so the test names one.
func TestProbeWithACABundle(t *testing.T) {
	ep, _ := probeEndpoint(t, "none")
	dir := t.TempDir()
	bundle, cfgFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "config")
	if err := os.WriteFile(bundle, selfSignedPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgFile, []byte("[profile probe]\nregion = us-east-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr, _ := runChild(t, []string{"AWS_CA_BUNDLE=" + bundle, "AWS_CONFIG_FILE=" + cfgFile},
		"probe", "--profile", "probe", "--model", rawModel, "--endpoint-url", ep.URL())
	if code != exitOK || stderr != "" || !strings.Contains(stdout, "done: 7 events") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// selfSignedPEM returns a freshly made self-signed CA certificate in PEM.
func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "streamcheck test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestProbeReportsAFailureAfterContent(t *testing.T) {
	ep, _ := probeEndpoint(t, "serviceUnavailable@3:p=1")
	code, stdout, stderr, _ := runChild(t, nil,
		"probe", "--model", rawModel, "--endpoint-url", ep.URL(), "--max-backoff", "1ms")
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

// TestProbeOnLoopbackReadsNoProfile: README says a loopback endpoint needs
// no AWS setup at all; an AWS_PROFILE naming a profile this machine lacks
// (or a broken shared config file) must not stop the probe, and
// AWS_REGION still applies.
func TestProbeOnLoopbackReadsNoProfile(t *testing.T) {
	ep, _ := probeEndpoint(t, "none")
	broken := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(broken, []byte("[profile x\nregion = \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr, _ := runChild(t, []string{"AWS_PROFILE=nowhere", "AWS_CONFIG_FILE=" + broken, "AWS_REGION=eu-west-3"},
		"probe", "--model", rawModel, "--endpoint-url", ep.URL())
	if code != exitOK || stderr != "" || !strings.Contains(stdout, "done: 7 events") || !strings.Contains(stdout, " in eu-west-3 via ") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}
