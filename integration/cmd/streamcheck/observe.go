package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/smithy-go/metrics"
)

// failureCounter is the smithy-go MeterProvider the plugin side's clients
// get: it keeps the plugin's streamstatus.stream.failures counter per
// exception type and position, and drops every other instrument. It shows
// that what the check sees is what a client's metrics see.
type failureCounter struct {
	metrics.NopMeter
	mu     sync.Mutex
	counts map[string]int64
}

func newFailureCounter() *failureCounter { return &failureCounter{counts: map[string]int64{}} }

// Meter implements metrics.MeterProvider.
func (c *failureCounter) Meter(string, ...metrics.MeterOption) metrics.Meter { return c }

// Int64Counter implements metrics.Meter.
func (c *failureCounter) Int64Counter(name string, opts ...metrics.InstrumentOption) (metrics.Int64Counter, error) {
	if name != "streamstatus.stream.failures" {
		return c.NopMeter.Int64Counter(name, opts...)
	}
	return failureInstrument{c}, nil
}

type failureInstrument struct{ c *failureCounter }

func (i failureInstrument) Add(_ context.Context, v int64, opts ...metrics.RecordMetricOption) {
	var o metrics.RecordMetricOptions
	for _, fn := range opts {
		fn(&o)
	}
	key := fmt.Sprintf("%v %v", o.Properties.Get("exception.type"), o.Properties.Get("streamstatus.position"))
	i.c.mu.Lock()
	i.c.counts[key] += v
	i.c.mu.Unlock()
}

// clientOption puts the counter on a client (nil: the bare side records
// nothing).
func (c *failureCounter) clientOption() func(*bedrockruntime.Options) {
	return func(o *bedrockruntime.Options) {
		if c != nil {
			o.MeterProvider = c
		}
	}
}

// snapshot returns the counts, keyed "<exception.type> <position>"; nil
// when nothing was recorded.
func (c *failureCounter) snapshot() map[string]int64 {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.counts) == 0 {
		return nil
	}
	out := make(map[string]int64, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// writeRecorded prints what the plugin side's clients recorded through
