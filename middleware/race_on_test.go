//go:build race

package middleware

// raceEnabled: under -race, sync.Pool drops a quarter of what is put back
// (on purpose, to shake out races), so the scanner's pooled frame buffers
// are allocated anew now and then; allocation counts per frame are exact
// only without -race (compat.sh's rows run these tests without it).
const raceEnabled = true
