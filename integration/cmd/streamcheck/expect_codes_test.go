package main

import (
	"bytes"
	"context"
	"sort"
	"testing"
)

// TestErrorCodeRowsPassUnbroken: every :error-code row of expect.go (AWS
// common errors, the SDK's throttle and retryable codes) and one unknown
// code pass the check with the library as it is.
func TestErrorCodeRowsPassUnbroken(t *testing.T) {
	codes := []string{"NoTableListsThisCode"}
	for c := range awsErrorCodes {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	for _, c := range codes {
		cfg := checkConfig{calls: 2, concurrency: 2, events: 2, seed: 1, spec: mustSpec(t, "error@0:code="+c)}
		var stdout, stderr bytes.Buffer
		if code := check(context.Background(), cfg, &stdout, &stderr); code != exitOK {
			t.Errorf("error@0:code=%s: check exit %d, want %d:\n%s%s", c, code, exitOK, stdout.String(), stderr.String())
		}
	}
}
