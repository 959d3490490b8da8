#!/usr/bin/env bash
# The benchmarks of issue 20 (performance round 2), interleaved: one test
# binary, ROUNDS rounds, each running every benchmark once for every side
# (bare, baresafe, plugin), so slow drifts of a shared machine hit all sides
# alike; then benchstat -col /side.
#
#   integration/bench20.sh                 # all of them, ROUNDS=10 (about 30 minutes on 2 cores)
#   ROUNDS=4 integration/bench20.sh conc   # one group: big | one | conc | idle | inter | cinter | control | mem
#   ROUNDS=30 integration/bench20.sh inter # 1-event streams, sides interleaved in each process (about 1 minute)
#   ROUNDS=10 integration/bench20.sh cinter # the same at 1, 8 and 64 concurrent streams (about 2 minutes)
#   ROUNDS=30 integration/bench20.sh inter cinter control # and beside them the control: both sides the
#                                          # race-free baseline, so its ratios are the measurement's own error
#   ROUNDS=10 integration/bench20.sh mem   # 1-event streams from an in-memory endpoint: the plugin's own
#                                          # CPU per stream, with no network or server (about 2 minutes)
#   OUT=/tmp/b20 integration/bench20.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-10}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
groups=${*:-big one conc idle inter cinter control mem}

if ! command -v benchstat >/dev/null 2>&1; then
  echo "installing benchstat (golang.org/x/perf/cmd/benchstat) through the Go module proxy" >&2
  GOFLAGS= go install golang.org/x/perf/cmd/benchstat@latest
  export PATH="$(go env GOPATH)/bin:$PATH"
fi

bin="$OUT/integration.test"
go test -c -o "$bin" ./integration/
cd integration

run() { # group, bench regexp, benchtime [, environment]
  echo "${4:+$4 }$bin -test.run '^\$' -test.bench '$2' -test.benchtime $3" >&2
  env ${4:-} "$bin" -test.run '^$' -test.bench "$2" -test.benchtime "$3" -test.timeout 60m >>"$OUT/$1.txt" ||
    echo "(that run failed; see $OUT/$1.txt)" >&2
}

for g in $groups; do : >"$OUT/$g.txt"; done
for r in $(seq "$ROUNDS"); do
  echo "round $r of $ROUNDS" >&2
  for g in $groups; do
    case $g in
      big) # 64 KiB events: 100 per stream (time-based), 10,000 per stream (fixed count)
        run big 'Throughput/^events=100$/payload=65536' 1s
        run big 'Throughput/^events=10000$/payload=65536' 1x ;;
      one) # 1-event streams, every payload size
        run one 'Throughput/^events=1$/' 1s ;;
      conc) # 1, 8 and 64 concurrent streams on one client
        run conc 'ConcurrentStreams' 1s ;;
      idle) # 1,000 open idle streams (memory only)
        run idle 'IdleStreamMemory' 1x ;;
      inter) # 1-event streams, baresafe and plugin alternating in blocks inside each process
        run inter 'OneEventInterleaved' 3000x ;;
      cinter) # the same with 1, 8 and 64 concurrent streams on one client
        run cinter 'ConcurrentInterleaved' 4000x ;;
      control) # inter and cinter with the baseline on both sides
        run control 'OneEventInterleaved' 3000x STREAMSTATUS_BENCH_CONTROL=1
        run control 'ConcurrentInterleaved' 4000x STREAMSTATUS_BENCH_CONTROL=1 ;;
      mem) # 1-event streams from memory, one at a time and in parallel
        run mem 'OneEventInMemory' 20000x ;;
    esac
  done
done
for g in $groups; do
  if [ "$g" = inter ] || [ "$g" = cinter ] || [ "$g" = control ]; then
    # Each process reports its own ratios: their mean and standard error.
    awk '/^Benchmark(OneEvent|Concurrent)Interleaved/ {
        for (i = 3; i < NF; i++) if ($(i+1) ~ /-ratio$/) { k = $1 " " $(i+1); n[k]++; s[k] += $i; q[k] += $i * $i }
      }
      END { for (k in n) { m = s[k] / n[k]; v = n[k] > 1 ? (q[k] - n[k] * m * m) / (n[k] - 1) : 0
              printf "%s: mean %.4f ± %.4f (standard error, %d processes)\n", k, m, sqrt(v / n[k]), n[k] } }' \
      "$OUT/$g.txt" | sort >"$OUT/$g.summary.txt"
  else
    benchstat -col /side "$OUT/$g.txt" >"$OUT/$g.summary.txt"
  fi
  echo "== $g: $OUT/$g.summary.txt" >&2
done
