#!/usr/bin/env bash
# Runs the performance benchmarks of issue 7, bare SDK and plugin side by
# side in one run, -count 6, and summarises them with benchstat.
#
#   integration/bench.sh              # all benchmarks (under 5 minutes on 2 cores)
#   COUNT=10 integration/bench.sh     # more samples
#   OUT=/tmp/bench integration/bench.sh
#
# Raw results go to $OUT/raw.txt, the summary to $OUT/summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-6}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"

if ! command -v benchstat >/dev/null 2>&1; then
  echo "installing benchstat (golang.org/x/perf/cmd/benchstat) through the Go module proxy" >&2
  GOFLAGS= go install golang.org/x/perf/cmd/benchstat@latest
  export PATH="$(go env GOPATH)/bin:$PATH"
fi

# Long streams run a fixed number of iterations: a bare-SDK stream lost to
# the request-body race ends early, and a time-based -benchtime would then
# scale the iterations up.
quick='Throughput/^events=(1|100)$|TimeToFirstEvent|OpenStreamMemory|FirstFrameThrottle|IdleOverhead'
echo "go test -run '^\$' -bench '$quick' -benchtime 500ms -count $COUNT ./integration/" >&2
go test -run '^$' -bench "$quick" -benchtime 500ms -count "$COUNT" -timeout 30m ./integration/ | tee "$OUT/raw.txt" >&2
echo "go test -run '^\$' -bench 'Throughput/^events=10000$' -benchtime 2x -count $COUNT ./integration/" >&2
go test -run '^$' -bench 'Throughput/^events=10000$' -benchtime 2x -count "$COUNT" -timeout 30m ./integration/ | tee -a "$OUT/raw.txt" >&2
go test -run '^$' -bench 'ScannerNext|InstallStepsAside' -count "$COUNT" ./internal/framing/ ./middleware/ | tee -a "$OUT/raw.txt" >&2

# Columns: bare vs plugin for the side-by-side benchmarks.
benchstat -col /side "$OUT/raw.txt" | tee "$OUT/summary.txt"
echo "raw: $OUT/raw.txt  summary: $OUT/summary.txt" >&2
