package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go/eventstream"
)

// The tests in this file play a client that is not ours: plain net/http
// requests with a SigV4-looking Authorization header, and smithy-go's
// event-stream decoder on the response body.

const rawModel = "anthropic.claude-3-haiku-20240307-v1:0"

// rawClient is an HTTP client whose connections the test closes.
func rawClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// rawPost sends what an AWS SDK would send for op, with hdr added.
func rawPost(t *testing.T, c *http.Client, base, op, body string, hdr map[string]string) *http.Response {
	t.Helper()
	path := map[string]string{opInvokeStream: "invoke-with-response-stream", opConverseStream: "converse-stream"}[op]
	req, err := http.NewRequest(http.MethodPost, base+"/model/"+url.PathEscape(rawModel)+"/"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Amz-Date", "20250101T000000Z")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/bedrock/aws4_request, "+
		"SignedHeaders=content-type;host;x-amz-date, Signature=0123456789abcdef")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", op, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// frames decodes a response body until it ends; err is nil at a clean end.
func frames(body io.Reader) (msgs []eventstream.Message, err error) {
	dec := eventstream.NewDecoder()
	for {
		m, err := dec.Decode(body, nil)
		if errors.Is(err, io.EOF) {
			return msgs, nil
		}
		if err != nil {
			return msgs, err
		}
		msgs = append(msgs, m)
	}
}

func header(m eventstream.Message, name string) string {
	if v := m.Headers.Get(name); v != nil {
		return v.String()
	}
	return ""
}

// chunkBytes returns the bytes of an InvokeModelWithResponseStream chunk.
func chunkBytes(t *testing.T, m eventstream.Message) string {
	t.Helper()
	var c struct {
		Bytes []byte `json:"bytes"`
	}
	if header(m, ":event-type") != "chunk" || json.Unmarshal(m.Payload, &c) != nil {
		t.Fatalf("not a chunk event: headers %v payload %s", m.Headers, m.Payload)
	}
	return string(c.Bytes)
}

func TestServeAnswersARawClientWithTheSpecsFaults(t *testing.T) {
	const events = 4 // a healthy InvokeModelWithResponseStream answer is events+5 chunks
	cases := []struct {
		fault string
		check func(t *testing.T, resp *http.Response, msgs []eventstream.Message, err error, took time.Duration)
	}{
		{"throttling", exceptionAfter3("throttlingException", "")},
		{"internalServer", exceptionAfter3("internalServerException", "")},
		{"serviceUnavailable", exceptionAfter3("serviceUnavailableException", "")},
		{"modelStreamError:orig=429", exceptionAfter3("modelStreamErrorException", `"originalStatusCode":429`)},
		{"modelTimeout", exceptionAfter3("modelTimeoutException", "")},
		{"validation", exceptionAfter3("validationException", "")},
		{"error:code=ModelNotReady", func(t *testing.T, _ *http.Response, msgs []eventstream.Message, err error, _ time.Duration) {
			if err != nil || len(msgs) != 4 || header(msgs[3], ":message-type") != "error" || header(msgs[3], ":error-code") != "ModelNotReady" {
				t.Errorf("want 3 events and an error frame with :error-code ModelNotReady; got %d frames (%v), err %v", len(msgs), lastHeaders(msgs), err)
			}
		}},
		{"anthropicError:type=rate_limit_error", func(t *testing.T, _ *http.Response, msgs []eventstream.Message, err error, _ time.Duration) {
			if err != nil || len(msgs) != 4 {
				t.Fatalf("got %d frames, err %v; want 3 events and the envelope chunk", len(msgs), err)
			}
			if b := chunkBytes(t, msgs[3]); !strings.HasPrefix(b, `{"type":"error","error":{"type":"rate_limit_error"`) {
				t.Errorf("4th chunk %s: want an Anthropic rate_limit_error envelope", b)
			}
		}},
		{"reset", brokenAfter3},
		{"cut", brokenAfter3},
		{"corrupt", func(t *testing.T, _ *http.Response, msgs []eventstream.Message, err error, _ time.Duration) {
			if len(msgs) != 3 || err == nil || !strings.Contains(strings.ToLower(err.Error()), "checksum") {
				t.Errorf("want 3 events and a checksum error; got %d frames, err %v", len(msgs), err)
			}
		}},
		{"slow:for=60ms", func(t *testing.T, _ *http.Response, msgs []eventstream.Message, err error, took time.Duration) {
			if err != nil || len(msgs) != events+5 || took < 60*time.Millisecond {
				t.Errorf("want the whole stream (%d frames) after at least 60ms; got %d frames, err %v, in %v", events+5, len(msgs), err, took)
			}
		}},
		{"http429", func(t *testing.T, resp *http.Response, _ []eventstream.Message, _ error, _ time.Duration) {
			if resp.StatusCode != 429 || resp.Header.Get("X-Amzn-Errortype") != "ThrottlingException" {
				t.Errorf("status %d, x-amzn-ErrorType %q; want 429 ThrottlingException", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.fault, func(t *testing.T) {
			name, opts, _ := strings.Cut(c.fault, ":")
			spec := name
			if !strings.HasPrefix(name, "http") {
				spec += "@3"
			}
			if opts != "" {
				spec += ":" + opts
			}
			ep, err := startEndpoint(endpointConfig{spec: mustSpec(t, spec+":call=1"), events: events})
			if err != nil {
				t.Fatal(err)
			}
			defer ep.Close()
			client := rawClient(t)
			body := `{"anthropic_version":"bedrock-2023-05-31","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`

			start := time.Now()
			resp := rawPost(t, client, ep.URL(), opInvokeStream, body, nil)
			var msgs []eventstream.Message
			if resp.StatusCode == 200 {
				if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.amazon.eventstream" {
					t.Errorf("Content-Type %q", ct)
				}
				msgs, err = frames(resp.Body)
				for i := 0; i < min(3, len(msgs)); i++ {
					if header(msgs[i], ":message-type") != "event" {
						t.Errorf("frame %d is not an event: %v", i, msgs[i].Headers)
					}
				}
				if len(msgs) > 0 && !strings.HasPrefix(chunkBytes(t, msgs[0]), `{"type":"message_start"`) {
					t.Errorf("first chunk is not message_start: %s", chunkBytes(t, msgs[0]))
				}
			}
			c.check(t, resp, msgs, err, time.Since(start))

			// The same request again is the call's second attempt: healthy.
			again := rawPost(t, client, ep.URL(), opInvokeStream, body, nil)
			msgs, err = frames(again.Body)
			if again.StatusCode != 200 || err != nil || len(msgs) != events+5 {
				t.Errorf("second attempt: status %d, %d frames, err %v; want 200 and the whole stream", again.StatusCode, len(msgs), err)
			}
			if got := ep.Attempts(1); len(got) != 2 || got[0] == "" || got[1] != "" {
				t.Errorf("endpoint's attempts of call 1 = %q; want the fault, then healthy", got)
			}
		})
	}
}

// exceptionAfter3 checks for three events, then an exception frame of the
// given type whose payload contains payloadPart, then a clean end.
func exceptionAfter3(exceptionType, payloadPart string) func(*testing.T, *http.Response, []eventstream.Message, error, time.Duration) {
	return func(t *testing.T, _ *http.Response, msgs []eventstream.Message, err error, _ time.Duration) {
		t.Helper()
		if err != nil || len(msgs) != 4 {
			t.Fatalf("got %d frames (%v), err %v; want 3 events and an exception", len(msgs), lastHeaders(msgs), err)
		}
		ex := msgs[3]
		if header(ex, ":message-type") != "exception" || header(ex, ":exception-type") != exceptionType {
			t.Errorf("4th frame headers %v; want exception %s", ex.Headers, exceptionType)
		}
		if !strings.Contains(string(ex.Payload), `"message":`) || !strings.Contains(string(ex.Payload), payloadPart) {
			t.Errorf("exception payload %s; want a message and %s", ex.Payload, payloadPart)
		}
	}
}

// brokenAfter3 checks for three events, then a broken connection.
func brokenAfter3(t *testing.T, _ *http.Response, msgs []eventstream.Message, err error, _ time.Duration) {
	t.Helper()
	if len(msgs) != 3 || err == nil {
		t.Errorf("got %d frames, err %v; want 3 events and a broken body", len(msgs), err)
	}
}

func lastHeaders(msgs []eventstream.Message) string {
	if len(msgs) == 0 {
		return "no frames"
	}
	return fmt.Sprint(msgs[len(msgs)-1].Headers)
}

func TestServeCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--faults", "throttling@1:call=1", "--events", "2"}, &stdout, &stderr)
	}()
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == "" && time.Now().Before(deadline); {
		if line, _, ok := strings.Cut(stdout.String(), "\n"); ok {
			base = line
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		cancel()
		t.Fatalf("serve printed %q, stderr %q; want its URL", stdout.String(), stderr.String())
	}

	// Retries of one call share amz-sdk-invocation-id, as AWS SDKs send it.
	client := rawClient(t)
	body := `{"messages":[{"role":"user","content":[{"text":"hi"}]}]}`
	id := map[string]string{"Amz-Sdk-Invocation-Id": "5f1c7a2e-0000-4000-8000-000000000001"}
	msgs, err := frames(rawPost(t, client, base, opConverseStream, body, id).Body)
	if err != nil || len(msgs) != 2 || header(msgs[0], ":event-type") != "messageStart" || header(msgs[1], ":exception-type") != "throttlingException" {
		t.Errorf("attempt 1: %d frames, err %v; want messageStart and throttlingException", len(msgs), err)
	}
	msgs, err = frames(rawPost(t, client, base, opConverseStream, body, id).Body)
	if err != nil || len(msgs) != 2+4 || header(msgs[5], ":event-type") != "metadata" {
		t.Errorf("attempt 2: %d frames, err %v; want the whole stream", len(msgs), err)
	}
	client.CloseIdleConnections()

	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("serve exited %d, want 0; stderr %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop after its context ended")
	}
	log := stderr.String()
	for _, want := range []string{
		"call 1 attempt 1 ConverseStream \"" + rawModel + "\": throttling@1:call=1",
		"call 1 attempt 2 ConverseStream \"" + rawModel + "\": healthy",
		"stopped after 2 requests",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("serve's log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "AWS4-HMAC") || strings.Contains(log, "AKIDEXAMPLE") || strings.Contains(log, "Signature") {
		t.Errorf("serve's log shows request credentials:\n%s", log)
	}
}

func TestServeRejects(t *testing.T) {
	busy, err := startEndpoint(endpointConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyAddr := strings.TrimPrefix(busy.URL(), "http://")

	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"all interfaces", []string{"--addr", "0.0.0.0:8080"}, exitUsage, `--addr "0.0.0.0:8080" is not a loopback address: the endpoint answers anyone without checking credentials`},
		{"a LAN address", []string{"--addr", "192.168.1.10:8080"}, exitUsage, "is not a loopback address"},
		{"a host name", []string{"--addr", "example.com:8080"}, exitUsage, "is not a loopback address"},
		{"no port", []string{"--addr", "127.0.0.1"}, exitUsage, `"127.0.0.1" is not host:port (e.g. 127.0.0.1:8080)`},
		{"port out of range", []string{"--addr", "127.0.0.1:99999"}, exitUsage, `port "99999" is not a number from 0 to 65535`},
		{"bad spec", []string{"--faults", "reset@2:p=2"}, exitUsage, `--faults: "reset@2:p=2": p=2: want a share of calls`},
		{"zero events", []string{"--events", "0"}, exitUsage, "--events 0: want 1 to 10000"},
		{"negative delay", []string{"--delay", "-1s"}, exitUsage, "--delay -1s: want 0 or more"},
		{"stray argument", []string{"now"}, exitUsage, `unexpected argument "now"`},
		{"port in use", []string{"--addr", busyAddr}, exitFailed, "address already in use"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, append([]string{"serve"}, c.args...)...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, c.code, c.want)
			}
			if !strings.HasPrefix(stderr, "streamcheck serve: ") {
				t.Errorf("stderr %q does not name the command", stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}

// TestEndpointLogQuotesAndLogsEveryRequest: a model id with %0A and an
// escape sequence cannot forge a log line or reach the terminal, and
// requests the fake server rejects itself get their line too.
func TestEndpointLogQuotesAndLogsEveryRequest(t *testing.T) {
	var log syncBuffer
	ep, err := startEndpoint(endpointConfig{spec: mustSpec(t, "none"), seed: 1, events: 1, log: &log})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	client := rawClient(t)
	post := func(path string, auth bool) {
		req, _ := http.NewRequest(http.MethodPost, ep.URL()+path, strings.NewReader(`{"prompt":"hi"}`))
		req.Header.Set("Content-Type", "application/json")
		if auth {
			req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/x, Signature=00")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	post("/model/evil%0A12:00:00.000%20call%201%20forged%1B%5B31m/invoke-with-response-stream", true)
	post("/model/m/invoke-with-response-stream", false)
	post("/nowhere", true)
	client.CloseIdleConnections()
	ep.Close()
	got := log.String()
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 3 {
		t.Errorf("%d log lines for 3 requests, want 3:\n%s", len(lines), got)
	}
	if strings.Contains(got, "\x1b") || !strings.Contains(got, `"evil\n12:00:00.000 call 1 forged\x1b[31m"`) {
		t.Errorf("the model id is not quoted:\n%s", got)
	}
	for _, want := range []string{`rejected POST "/model/m/invoke-with-response-stream": HTTP 400 "missing Authorization header`,
		`rejected POST "/nowhere": HTTP 400 "unknown operation path`} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %s:\n%s", want, got)
		}
	}
}
