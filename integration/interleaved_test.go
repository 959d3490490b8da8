package integration_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime/pprof"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"

	"github.com/streamstatus/streamstatus/integration/fake"
)

// BenchmarkOneEventInterleaved: 1-event streams on the race-free bare
// baseline (side=baresafe, scale_test.go) and on the plugin (WithBedrock)
// in one process, in alternating blocks of interleaveBlock streams, the
// side that goes first alternating too, so that a shared machine's slow
// spells hit both sides alike. Each side has a fake endpoint of its own.
// It reports both sides' wall time per stream and the ratios baseline /
// plugin of wall time (speed-ratio, ≥ 0.98 is the target) and of the
// process's CPU time (cpu-ratio, client and server), and the speed ratio
// of the fastest 40 % and of the slowest half of each side's streams
// (fast40-speed-ratio, slow50-speed-ratio; bandRatio says why); ns/op
// counts one stream of each side. One process is one sample;
// integration/bench20.sh inter runs many and averages them.
//
// Each side's blocks, and its endpoint's goroutines, run under the pprof
// label side=baresafe or side=plugin, so that one CPU profile splits by
// side:
//
//	go test -run '^$' -bench OneEventInterleaved -benchtime 20000x -cpuprofile cpu.out ./integration/
//	go tool pprof -tagfocus side=plugin -top cpu.out
func BenchmarkOneEventInterleaved(b *testing.B) {
	for _, size := range []int{100, 4 << 10} {
		b.Run(fmt.Sprintf("payload=%d", size), func(b *testing.B) {
			sides := interleavedSides(b, fake.Response{Steps: []fake.Step{fake.Repeat(chunkFrameOf(size), 1)}})
			perStream := [2][]time.Duration{make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)}
			b.ResetTimer()
			wall, cpu := alternate(b.N, interleaveBlock, func(k, count int, start time.Time) {
				pprof.Do(context.Background(), sides[k].label, func(context.Context) {
					for range count {
						t0 := time.Now()
						if n, _, failed := drain(sides[k].client, start); failed || n != 1 {
							b.Fatalf("%s: %d events, failed %v", sides[k].name, n, failed)
						}
						perStream[k] = append(perStream[k], time.Since(t0))
					}
				})
			})
			b.StopTimer()
			b.ReportMetric(float64(wall[0])/float64(b.N), sides[0].name+"-ns/stream")
			b.ReportMetric(float64(wall[1])/float64(b.N), sides[1].name+"-ns/stream")
			b.ReportMetric(float64(wall[0])/float64(wall[1]), "speed-ratio")
			b.ReportMetric(float64(cpu[0])/float64(cpu[1]), "cpu-ratio")
			if r, ok := bandRatio(perStream, 0, 0.4); ok {
				b.ReportMetric(r, "fast40-speed-ratio")
			}
			if r, ok := bandRatio(perStream, 0.5, 1); ok {
				b.ReportMetric(r, "slow50-speed-ratio")
			}
		})
	}
}

// bandRatio compares the two sides' streams in one band of their wall
// times: each side's streams sorted by wall time, it returns the mean of
// the baseline's (perStream[0]) whose rank lies between the fractions lo
// and hi of them (from index ⌈lo·n⌉ up to, not including, ⌊hi·n⌋) over
// the mean of the plugin's (perStream[1]) in the same band; ok is false
// when a side has no stream in the band (too few streams for it).
//
// End to end, a 1-event stream's wall time is bimodal on this machine:
// about half the streams run all their goroutines (caller, the SDK's
// reader and pipe, the transport's, the fake endpoint's) on one processor
// and take 85-105 µs at 4 KiB; the rest wait, some of their way, for
// another processor to wake up and take 120-300 µs (BENCHMARKS.md, "a
// sixth pass"). The mean (speed-ratio) mixes the two; fast40-speed-ratio
// (the fastest 40 %) is the plugin's cost on the one-processor path, and
// slow50-speed-ratio (the slowest half) what it costs where the
// processors hand work over, or how it shifts streams between the modes.
func bandRatio(perStream [2][]time.Duration, lo, hi float64) (ratio float64, ok bool) {
	var mean [2]float64
	for k, d := range perStream {
		sorted := slices.Clone(d)
		slices.Sort(sorted)
		n := float64(len(sorted))
		from, to := int(math.Ceil(lo*n)), int(math.Floor(hi*n))
		if from >= to {
			return 0, false
		}
		band := sorted[from:to]
		var sum time.Duration
		for _, x := range band {
			sum += x
		}
		mean[k] = float64(sum) / float64(len(band))
	}
	return mean[0] / mean[1], true
}

// interleavedSide is one side of an interleaved benchmark: its name, its
// client (of a fake endpoint of its own) and its pprof label, side=name.
type interleavedSide struct {
	name   string
	client *bedrockruntime.Client
	label  pprof.LabelSet
}

// interleavedSides returns the two sides of an interleaved benchmark, the
// race-free bare baseline and the plugin (WithBedrock), each a client of a
// fake endpoint of its own that answers every call with resp and whose
// goroutines run under the side's label. With STREAMSTATUS_BENCH_CONTROL
// set (integration/bench20.sh control) the second side is the baseline
// again, named control: what the ratios read for two identical sides is
// the measurement's own error.
func interleavedSides(b *testing.B, resp fake.Response) (sides [2]interleavedSide) {
	kinds := scaleSides[1:3:3] // baresafe, plugin
	if os.Getenv("STREAMSTATUS_BENCH_CONTROL") != "" {
		control := kinds[0]
		control.name = "control"
		kinds = append(kinds[:1:1], control)
	}
	for k, kind := range kinds {
		sides[k].name, sides[k].label = kind.name, pprof.Labels("side", kind.name)
		pprof.Do(context.Background(), sides[k].label, func(context.Context) {
			srv := newServer(b) // its accept loop, so its connections, carry the label
			srv.SetDefault(resp)
			sides[k].client = kind.new(srv)
		})
	}
	return sides
}

// alternate runs the two sides' blocks of block streams in turn until
// exactly n streams per side have run (the last block of each side may be
// shorter), the side that goes first alternating, and returns each side's
// wall and CPU time (k 0: baseline, 1: plugin). run runs one block of
// count streams of side k, which started at start.
func alternate(n, block int, run func(k, count int, start time.Time)) (wall, cpu [2]int64) {
	for round := 0; round*block < n; round++ {
		count := min(block, n-round*block)
		for turn := range 2 {
			k := (round + turn) % 2
			cpu0, start := cpuTime(), time.Now()
			run(k, count, start)
			wall[k] += int64(time.Since(start))
			cpu[k] += cpuTime() - cpu0
		}
	}
	return wall, cpu
}

// interleaveBlock is the number of streams a side runs before the other
// takes its turn: about 4 ms of work, far shorter than the drifts of a
// shared machine.
const interleaveBlock = 25

// BenchmarkConcurrentInterleaved: conc goroutines stream 1 × 4 KiB
// events on one client, the race-free baseline and the plugin in
// alternating blocks inside one process, as BenchmarkOneEventInterleaved
// does for one stream at a time. It reports the ratios baseline / plugin
// of wall time (speed-ratio) and of the process's CPU time (cpu-ratio);
// ns/op counts one stream of each side. integration/bench20.sh cinter runs
// many processes and averages them. The baseline decodes all its streams
// through its client's one codec, as the SDK does; that races (smithy-go
// #714), so -race reports it: run this benchmark without -race.
func BenchmarkConcurrentInterleaved(b *testing.B) {
	for _, conc := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) {
			sides := interleavedSides(b, fake.Response{Steps: []fake.Step{fake.Repeat(chunkFrameOf(4<<10), 1)}})
			block := min(interleaveBlock*conc, 400)
			b.ResetTimer()
			wall, cpu := alternate(b.N, block, func(k, count int, start time.Time) {
				pprof.Do(context.Background(), sides[k].label, func(context.Context) {
					streamConcurrently(conc, count, func() {
						if n, _, failed := drain(sides[k].client, start); failed || n != 1 {
							b.Errorf("%s: %d events, failed %v", sides[k].name, n, failed)
						}
					})
				})
			})
			b.ReportMetric(float64(wall[0])/float64(wall[1]), "speed-ratio")
			b.ReportMetric(float64(cpu[0])/float64(cpu[1]), "cpu-ratio")
		})
	}
}

// TestBandRatio: bandRatio sorts each side on its own, compares the mean
// of the same band of both, takes into a band only the streams whose rank
// lies within it, says when a band is empty, and leaves the benchmark's
// slices as they were.
func TestBandRatio(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		d := make([]time.Duration, len(v))
		for i, x := range v {
			d[i] = time.Duration(x) * time.Millisecond
		}
		return d
	}
	for _, c := range []struct {
		name         string
		base, plugin []time.Duration
		lo, hi, want float64
	}{
		// base + 1 ms, in another order
		{"fast band", ms(7, 1, 10, 4, 2, 9, 3, 8, 6, 5), ms(3, 11, 6, 2, 10, 4, 8, 5, 9, 7), 0, 0.4, 2.5 / 3.5},
		{"slow band", ms(7, 1, 10, 4, 2, 9, 3, 8, 6, 5), ms(3, 11, 6, 2, 10, 4, 8, 5, 9, 7), 0.5, 1, 8.0 / 9.0},
		{"all", ms(7, 1, 10, 4, 2, 9, 3, 8, 6, 5), ms(3, 11, 6, 2, 10, 4, 8, 5, 9, 7), 0, 1, 5.5 / 6.5},
		// skewed: the band's mean, not its median or midrange
		{"uneven", ms(10, 1, 50, 3, 2, 60, 70, 80, 90, 100), ms(20, 2, 50, 4, 3, 60, 70, 80, 90, 100), 0, 0.4, 4.0 / 7.25},
		// only the slow half slower: the fast band reads 1
		{"slow tail", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), ms(1, 2, 3, 4, 5, 16, 17, 18, 19, 20), 0, 0.4, 1},
		// 5 streams: the slow half is ranks 3-5 (index 3 and 4), not the median
		{"odd count, median apart", ms(1, 1, 5, 10, 10), ms(1, 1, 6, 10, 10), 0.5, 1, 1},
		// 5 streams: the fastest 40 % are exactly 2
		{"odd count, fast", ms(1, 2, 5, 10, 10), ms(2, 2, 6, 10, 10), 0, 0.4, 1.5 / 2},
		// 5 streams: the fastest half is ranks 1-2 (index 0 and 1), not the median
		{"odd count, fastest half", ms(1, 2, 5, 10, 10), ms(1, 2, 6, 10, 10), 0, 0.5, 1},
	} {
		base, plugin := slices.Clone(c.base), slices.Clone(c.plugin)
		got, ok := bandRatio([2][]time.Duration{base, plugin}, c.lo, c.hi)
		if !ok || math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%s: bandRatio(%v, %v) = %v, %v; want %v, true", c.name, c.lo, c.hi, got, ok, c.want)
		}
		if !slices.Equal(base, c.base) || !slices.Equal(plugin, c.plugin) {
			t.Errorf("%s: bandRatio reordered the streams: %v, %v", c.name, base, plugin)
		}
	}
	if got, ok := bandRatio([2][]time.Duration{ms(1), ms(2)}, 0, 0.4); ok {
		t.Errorf("fastest 40 %% of 1 stream = %v, true; want no band", got)
	}
}
