package fake

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
)

// signedHeaders is the minimum a request needs to pass the server's checks.
var signedHeaders = map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=AKID/x", "Content-Type": "application/json"}

// TestMaxRecordedCallsWithScriptedRequestID: with a bounded record and a
// scripted x-amzn-RequestId, the server once indexed its record by call
// number while holding its lock, panicked out of range, and every later
// request and Close hung on that lock.
func TestMaxRecordedCallsWithScriptedRequestID(t *testing.T) {
	srv, err := NewServer(WithMaxRecordedCalls(2))
	if err != nil {
		t.Fatal(err)
	}
	srv.SetScript(func(c Call) Response {
		return Response{Body: []byte(`{}`), Header: http.Header{"x-amzn-RequestId": {fmt.Sprintf("scripted-%d", c.N)}}}
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := bedrockruntime.New(bedrockruntime.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
			Credentials: staticCreds{}, Retryer: aws.NopRetryer{}})
		for i := 0; i < 5; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := c.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{ModelId: aws.String("m"), Body: []byte(`{}`)})
			cancel()
			if err != nil {
				t.Errorf("call %d: %v", i+1, err)
				return
			}
		}
		srv.Close()
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the server hung (calls or Close never returned)")
	}
	calls := srv.Calls()
	if len(calls) != 2 || calls[0].RequestID != "scripted-4" || calls[1].RequestID != "scripted-5" {
		t.Errorf("recorded %+v, want calls 4 and 5 with their scripted request ids", calls)
	}
}

type staticCreds struct{}

func (staticCreds) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "AKIDFAKE", SecretAccessKey: "secret", Source: "test"}, nil
}

// TestBodyIsBounded: a body over the limit is answered 413 without being
// read whole, and WithoutBodies keeps the hash, not the bytes.
func TestBodyIsBounded(t *testing.T) {
	srv := newServer(t, WithMaxBodyBytes(1024), WithoutBodies())
	srv.SetDefault(Response{Body: []byte(`{}`)})
	status, _, body := rawPost(t, "POST", srv.URL+"/model/m/invoke", signedHeaders, strings.Repeat("x", 4096))
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(body, "1024 bytes") {
		t.Errorf("over the limit: %d %s, want 413 naming the limit", status, body)
	}
	status, _, _ = rawPost(t, "POST", srv.URL+"/model/m/invoke", signedHeaders, `{"prompt":"hi"}`)
	if status != http.StatusOK {
		t.Errorf("under the limit: %d", status)
	}
	calls := srv.Calls()
	if len(calls) != 2 || calls[1].Body != nil || len(calls[1].BodySHA256) != 64 {
		t.Errorf("recorded %+v: want no body bytes, the hash only", calls)
	}
	if calls[0].Rejected == "" || calls[1].Rejected != "" {
		t.Errorf("Rejected = %q, %q: want the 413's reason on the first call only", calls[0].Rejected, calls[1].Rejected)
	}
}

// TestDefaultBodyLimit: without an option the body limit is DefaultMaxBodyBytes, not unlimited.
func TestDefaultBodyLimit(t *testing.T) {
	srv := newServer(t)
	srv.SetDefault(Response{Body: []byte(`{}`)})
	status, _, _ := rawPost(t, "POST", srv.URL+"/model/m/invoke", signedHeaders, strings.Repeat("x", DefaultMaxBodyBytes+1))
	if status != http.StatusRequestEntityTooLarge {
		t.Errorf("a body of DefaultMaxBodyBytes+1: %d, want 413", status)
	}
}

// TestSlowClientsAreDropped: a client that never finishes its headers or
// its body, or keeps an idle connection, is disconnected after the
// configured timeout.
func TestSlowClientsAreDropped(t *testing.T) {
	srv := newServer(t, WithReadTimeout(200*time.Millisecond), WithIdleTimeout(200*time.Millisecond))
	srv.SetDefault(Response{Body: []byte(`{}`)})
	addr := strings.TrimPrefix(srv.URL, "http://")
	cases := map[string]string{
		"headers never end": "POST /model/m/invoke HTTP/1.1\r\nHost: x\r\n",
		"body never ends": "POST /model/m/invoke HTTP/1.1\r\nHost: x\r\nAuthorization: AWS4-HMAC-SHA256 x\r\n" +
			"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
		"idle after a request": "POST /model/m/invoke HTTP/1.1\r\nHost: x\r\nAuthorization: AWS4-HMAC-SHA256 x\r\n" +
			"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
	}
	var wg sync.WaitGroup
	for name, req := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, req); err != nil {
				t.Error(err)
				return
			}
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			start := time.Now()
			_, err = io.Copy(io.Discard, bufio.NewReader(conn))
			if err != nil || time.Since(start) > 3*time.Second {
				t.Errorf("%s: connection still open after %v (%v); want it closed after the 200ms timeout", name, time.Since(start), err)
			}
		}()
	}
	wg.Wait()
}

// TestCallHookSeesEveryRequest: rejected requests (no Authorization, an
// unknown path) reach the hook too, with the reason.
func TestCallHookSeesEveryRequest(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := newServer(t, WithCallHook(func(c Call, r Response) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, fmt.Sprintf("%d %s %q", r.Status, c.Path, c.Rejected))
	}))
	srv.SetDefault(Response{Body: []byte(`{}`)})
	rawPost(t, "POST", srv.URL+"/model/m/invoke", nil, `{}`)
	rawPost(t, "POST", srv.URL+"/nowhere", signedHeaders, `{}`)
	rawPost(t, "POST", srv.URL+"/model/m/invoke", signedHeaders, `{}`)
	mu.Lock()
	defer mu.Unlock()
	got := strings.Join(seen, "\n")
	for _, want := range []string{`400 /model/m/invoke "missing Authorization header`, `400 /nowhere "unknown operation path`, `0 /model/m/invoke ""`} {
		if !strings.Contains(got, want) {
			t.Errorf("hook saw\n%s\nwant a line with %s", got, want)
		}
	}
	if len(seen) != 3 {
		t.Errorf("hook called %d times for 3 requests", len(seen))
	}
}
