#!/usr/bin/env bash
# integration/compat.sh: the middleware and integration tests against four
# sets of SDK versions, each one checked to be exactly what it says:
#
#   floors          every version in the library's go.mod, exactly (core,
#                   smithy-go, the services, the internal modules); config,
#                   credentials and sts from the SDK release that matches them.
#                   go-redis included (v9.0.0, the first v9). This row runs
#                   every test of both modules: the floors are the oldest
#                   versions on which the whole suite passes.
#   per-operation   the last per-operation generation: bedrockruntime v1.62.0,
#                   sagemakerruntime v1.49.0 (the rest as integration/go.mod)
#   schema-serde    the first schema-serde generation: bedrockruntime v1.63.0,
#                   sagemakerruntime v1.50.0 (the rest as integration/go.mod)
#   newest          the newest release the module proxy serves of every
#                   module the library or the integration module requires
#                   directly
#
# Rows whose bedrockruntime is older than v1.63.0 (floors, per-operation)
# build with the tag streamstatus_per_operation_sdk: it leaves out the test
# files that name API of the schema-serde generation only (Options.Protocol,
# InvokeModelWithBidirectionalStream's input types; see
# middleware/review_12_test.go). The tag follows the version selected, not
# the row's name.
#
# It works in a temporary copy of the repository (GOWORK=off, the
# integration module's go.mod rewritten there) and never touches the
# repository's own go.mod files. It needs the Go module proxy, nothing else.
# About 5 minutes on 2 idle cores with a cold build cache (BENCHMARKS.md-style
# figures in the README's Compatibility section).
#
#   integration/compat.sh              all four rows
#   integration/compat.sh floors       only the named rows
#   COMPAT_RACE=all integration/compat.sh   -race on every row (slower)
#   COMPAT_TESTFLAGS=-v integration/compat.sh newest   extra go test flags
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
lib=github.com/streamstatus/streamstatus

# config, credentials and sts are not the library's dependencies (only the
# integration module's); for the floors row they come from the SDK release
# (2024-12-12) whose internal modules are the library's indirect floors, so
# nothing raises those.
floor_extras="github.com/aws/aws-sdk-go-v2/config@v1.28.7 github.com/aws/aws-sdk-go-v2/credentials@v1.17.48 github.com/aws/aws-sdk-go-v2/service/sts@v1.33.3"

# -race where it pays: on the per-operation row (the generation nothing else
# races). The other rows run without it; `go test -race` in .ci/run already
# races the pinned newest versions.
race_rows=${COMPAT_RACE:-per-operation}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/streamstatus-compat.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
tar -C "$root" --exclude=./.git -cf - . | tar -C "$tmp" -xf -
export GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=mod"

# requires FILE [indirect]: the module@version lines of a go.mod's require
# directives (direct ones only unless "indirect"), without our own modules.
requires() {
  awk -v all="${2:-}" '
    /^require \(/ { block = 1; next }
    block && /^\)/ { block = 0; next }
    block || /^require [^(]/ {
      line = $0; sub(/^require /, "", line); split(line, f, " ")
      if (f[1] ~ /^github.com\/streamstatus\//) next
      if (all != "indirect" && line ~ /\/\/ indirect/) next
      print f[1] "@" f[2]
    }' "$1"
}

# pin SPEC...: the set of integration/go.mod's direct requirements with SPEC
# (module@version) replacing theirs, indirect requirements left to go mod tidy.
pin() {
  local specs=("$@") base
  base=$(requires "$root/integration/go.mod")
  cp "$root/integration/go.mod" "$tmp/integration/go.mod"
  cp "$root/integration/go.sum" "$tmp/integration/go.sum"
  (
    cd "$tmp/integration"
    args=()
    for m in $(requires go.mod indirect); do args+=("-droprequire=${m%@*}"); done
    for m in $base; do args+=("-require=$m"); done
    for s in "${specs[@]}"; do args+=("-require=$s"); done
    go mod edit "${args[@]}"
    go mod tidy
  )
}

# check SPEC...: fail unless each module is selected at exactly its version.
check() {
  local s got
  for s in "$@"; do
    got=$(cd "$tmp/integration" && go list -m -f '{{.Version}}' "${s%@*}")
    if [ "$got" != "${s#*@}" ]; then
      echo "compat: ${s%@*} is $got, want ${s#*@}: a requirement raises it; pick versions that agree" >&2
      return 1
    fi
  done
}

show() {
  (cd "$tmp/integration" && go list -m -f '{{.Path}} {{.Version}}' \
    github.com/aws/aws-sdk-go-v2 github.com/aws/smithy-go \
    github.com/aws/aws-sdk-go-v2/service/bedrockruntime \
    github.com/aws/aws-sdk-go-v2/service/sagemakerruntime \
    github.com/aws/aws-sdk-go-v2/service/bedrockagentruntime github.com/cenkalti/backoff/v4 \
    github.com/redis/go-redis/v9) |
    sed -e 's|github.com/aws/aws-sdk-go-v2/service/||' -e 's|github.com/aws/aws-sdk-go-v2 |core |' \
      -e 's|github.com/aws/||' -e 's|github.com/cenkalti/||' -e 's|github.com/redis/||' | paste -sd' ' -
}

newest() {
  local m v
  for m in $({ requires "$root/go.mod"; requires "$root/integration/go.mod"; } | sed 's/@.*//' | sort -u); do
    v=$(go list -m -versions "$m" | tr ' ' '\n' | tail -n +2 | grep -v -- - | tail -1)
    echo "$m@${v:?no release of $m on the module proxy}"
  done
}

# tags: -tags=streamstatus_per_operation_sdk when the selected bedrockruntime
# is older than v1.63.0 (the first schema-serde release).
tags() {
  local v
  v=$(cd "$tmp/integration" && go list -m -f '{{.Version}}' github.com/aws/aws-sdk-go-v2/service/bedrockruntime)
  if [ "$(printf '%s\n' "$v" v1.63.0 | sort -V | head -1)" != v1.63.0 ]; then
    echo -tags=streamstatus_per_operation_sdk
  fi
}

run() { # NAME PACKAGES SPEC...
  local name=$1 pkgs=$2 race="" start tagflag
  shift 2
  case " $race_rows " in *" $name "* | *" all "*) race=-race ;; esac
  start=$(date +%s)
  echo "== $name"
  pin "$@"
  check "$@"
  tagflag=$(tags)
  echo "   $(show)${tagflag:+ ($tagflag)}"
  (cd "$tmp/integration" && go test $race $tagflag -count=1 ${COMPAT_TESTFLAGS:-} $pkgs)
  echo "   $name: ok in $(($(date +%s) - start))s${race:+ (with -race)}"
}

rows=${*:-floors per-operation schema-serde newest}
for row in $rows; do
  case $row in
  floors)
    # Every requirement of the library's go.mod, indirect ones too.
    run floors "$lib/..." $(requires "$root/go.mod" indirect) $floor_extras ;;
  per-operation)
    run per-operation "$lib/middleware ." github.com/aws/aws-sdk-go-v2/service/bedrockruntime@v1.62.0 \
      github.com/aws/aws-sdk-go-v2/service/sagemakerruntime@v1.49.0 ;;
  schema-serde)
    run schema-serde "$lib/middleware ." github.com/aws/aws-sdk-go-v2/service/bedrockruntime@v1.63.0 \
      github.com/aws/aws-sdk-go-v2/service/sagemakerruntime@v1.50.0 ;;
  newest)
    run newest "$lib/middleware ." $(newest) ;;
  *)
    echo "compat: unknown row $row (rows: floors per-operation schema-serde newest)" >&2
    exit 2 ;;
  esac
done
