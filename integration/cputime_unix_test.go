//go:build unix

package integration_test

import "syscall"

// cpuTime returns the CPU time this process has used so far (user and
// system, all threads) in nanoseconds. The benchmarks report CPU time per
// event or stream beside wall time: both sides run against the same
// in-process fake endpoint, so the difference is the client's, and CPU
// time is not inflated by waits, scheduling, or the VM's steal time, which
// make wall-time ratios on a small shared machine noisy.
func cpuTime() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
