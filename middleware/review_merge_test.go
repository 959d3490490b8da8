package middleware

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	smithymiddleware "github.com/aws/smithy-go/middleware"

	"github.com/streamstatus/streamstatus/classify"
)

// TestDefect_MergedCacheGrowsPerCall: an option value built once and
// reused (as WithBedrock's doc recommends for per-call use) caches in its
// merged map one entry per distinct earlier installation, forever. When the
// earlier installation is itself new on each call (a client with
// AppendMiddlewares, plus a per-call WithBedrock(WithIdleTimeout(d)) built
// from the request, plus the shared option), every call adds an entry that
// holds a full resolved options set (classifier included): memory held per
// call, never released while the shared option lives.
func TestDefect_MergedCacheGrowsPerCall(t *testing.T) {
	config := resolve(nil)                                                                 // AppendMiddlewares(&cfg.APIOptions)
	shared := resolve([]Option{WithClassifier(classify.New(classify.DefaultTables()...))}) // built once, passed to every call
	errStop := errors.New("stop before sending")
	c := bedrockruntime.New(bedrockruntime.Options{
		Region: "us-east-1", Credentials: aws.AnonymousCredentials{},
		APIOptions: []func(*smithymiddleware.Stack) error{config.apiOption()},
	})
	call := func(i int) {
		perCall := resolve([]Option{WithIdleTimeout(time.Duration(i+1) * time.Second)}) // built from this request
		stop := func(*smithymiddleware.Stack) error { return errStop }
		_, err := c.ConverseStream(context.Background(), &bedrockruntime.ConverseStreamInput{ModelId: aws.String("m")},
			bedrockruntime.WithAPIOptions(perCall.apiOption(), shared.apiOption(), stop))
		if !errors.Is(err, errStop) {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	const calls = 2000
	call(0)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 1; i <= calls; i++ {
		call(i)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	entries := 0
	if shared.merged.Load() != nil {
		entries = 1 // the cache holds at most the last merge
	}
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if entries > 2 || held > 4<<20 {
		t.Errorf("after %d calls the shared option's merged cache holds %d entries (heap held grew by %d bytes, %d per call); want it bounded",
			calls+1, entries, held, held/calls)
	}
}
