//go:build !unix

package integration_test

// cpuTime is not measured here: the cpu-ns metrics read 0 (see
// cputime_unix_test.go).
func cpuTime() int64 { return 0 }
