package fake

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestResetDeliversEverythingWrittenBefore: a Reset after a large write
// reaches a client that is slow to read only after the client's kernel has
// every byte: the client reads all of them, then the reset. Without the
// drain, SO_LINGER 0 throws away what is still in the server's send queue.
func TestResetDeliversEverythingWrittenBefore(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB, more than the socket buffers hold
	srv := newServer(t)
	srv.SetDefault(Response{Steps: []Step{Raw(payload), Reset()}})
	req, _ := http.NewRequest("POST", srv.URL+"/model/m/converse-stream", strings.NewReader(`{"messages":[]}`))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 x")
	req.Header.Set("Content-Type", "application/json")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	time.Sleep(100 * time.Millisecond) // let the buffers fill while the client does not read
	b, err := io.ReadAll(resp.Body)
	if err == nil || !strings.Contains(err.Error(), "reset") {
		t.Errorf("read err = %v, want connection reset by peer", err)
	}
	if len(b) != len(payload) {
		t.Fatalf("read %d of the %d bytes written before the reset", len(b), len(payload))
	}
}
