#!/usr/bin/env bash
# Runs every fuzz target in the module for a budget of executions each
# (default 10000x). Targets live beside the code they exercise; their seed
# corpora are in each package's testdata/fuzz/<Target>/. New crashers are
# written there too, so `go test` replays them from then on.
#
#   ./fuzz/run.sh            # every target, 10,000 executions each
#   ./fuzz/run.sh 2000000x   # a long run
#
# Any target that does not end cleanly fails the run; nothing is retried or
# waved through with a warning.
#
# Why executions and not a duration: with a duration (-fuzztime 4s) the Go
# 1.26 fuzzing coordinator sometimes reports its own deadline as the
# target's failure, "context deadline exceeded" with no failing input: when
# the -fuzztime context expires, its main loop can see the parent context's
# error before the workers' child context is cancelled, and the check meant
# to swallow the expected cancellation compares against the child's error
# (internal/fuzz/fuzz.go, stop; go.dev/issue/75804, fixed in Go 1.27). A
# count budget sets no deadline, so that race cannot happen. Minimizing new
# inputs is bounded by a count too (-fuzzminimizetime), and -timeout turns a
# target that hangs into a failure with its stacks.
set -euo pipefail
cd "$(dirname "$0")/.."
budget="${1:-10000x}"
case "$budget" in
  *[0-9]x) ;;
  *) echo "fuzz/run.sh: budget $budget: give a number of executions such as 10000x (durations trip a Go 1.26 fuzzing race, see this script)" >&2; exit 2 ;;
esac
go=${GO:-go}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
ran=0
for pkg in $($go list ./...); do
  targets=$($go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
  for t in $targets; do
    echo "== fuzz $pkg $t ($budget)"
    ran=$((ran + 1))
    if $go test -run '^$' -fuzz "^${t}\$" -fuzztime "$budget" -fuzzminimizetime 100x -timeout 20m "$pkg" >"$out" 2>&1; then
      tail -n 1 "$out"
    else
      cat "$out"
      echo "FAIL: $pkg $t"
      status=1
    fi
  done
done
if [ "$ran" = 0 ]; then
  echo "fuzz/run.sh: no fuzz targets found" >&2
  exit 1
fi
exit $status
