#!/usr/bin/env bash
# Runs every fuzz target in the module for the given time each (default 4s).
# Targets live beside the code they exercise; their seed corpora are in each
# package's testdata/fuzz/<Target>/. New crashers are written there too, so
# `go test` replays them from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${1:-4s}"
go=${GO:-go}
status=0
for pkg in $($go list ./...); do
  targets=$($go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
  for t in $targets; do
    echo "== fuzz $pkg $t ($fuzztime)"
    if ! $go test -run '^$' -fuzz "^${t}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/vellum-fuzz.$$ 2>&1; then
      cat /tmp/vellum-fuzz.$$
      status=1
    else
      tail -n 1 /tmp/vellum-fuzz.$$
    fi
  done
done
rm -f /tmp/vellum-fuzz.$$
exit $status
