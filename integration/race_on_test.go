//go:build race

package integration_test

// raceEnabled: built with -race, where sync.Pool drops a random quarter of
// what is put into it, so allocation counts of pooled code are not the
// production figures.
const raceEnabled = true
