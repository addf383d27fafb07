#!/usr/bin/env bash
# The long benchmark run behind PERFORMANCE.md (not part of `make test`):
# the Go benchmarks of bench/ with their baselines in the same run, then the
# harness on a store of RECORDS records (built once into DATA).
#
#   ./bench/run.sh                         # COUNT=5 RECORDS=10000000 DATA=/tmp/vellum-bench-10m
#   COUNT=3 RECORDS=1000000 ./bench/run.sh
#   BASELINE=e851bcb ./bench/run.sh        # HTTP ingest also against that revision, in the same runs
#   SOAK=10m ./bench/run.sh                # and a soak of that length at the end
set -euo pipefail
cd "$(dirname "$0")/.."
count="${COUNT:-5}"
records="${RECORDS:-10000000}"
data="${DATA:-/tmp/vellum-bench-$((records / 1000000))m}"
out=bench/out
mkdir -p "$out"
echo "== machine"; { uname -a; nproc; grep -m1 'model name' /proc/cpuinfo; uptime; } | tee "$out/machine.txt"
echo "== go benchmarks (count $count)"
go test -run '^$' -bench . -count "$count" -timeout 60m ./bench/ ./chain/ ./redact/ . | tee "$out/go-bench.txt"
if [ ! -d "$data/segments" ]; then
  echo "== building $records records into $data"
  go run ./bench/harness build --data "$data" --records "$records" | tee "$out/build.txt"
fi
echo "== queries, reopen, RSS"
go run ./bench/harness query --data "$data" --queries 2000 --http | tee "$out/query.txt"
echo "== HTTP ingest against vellum serve (a separate process on loopback), $count runs each"
base=()
if [ -n "${BASELINE:-}" ]; then base=(--baseline "$BASELINE"); fi
go run ./bench/harness ingest "${base[@]}" --clients 4 --batch 1000 --runs "$count" | tee "$out/ingest-batch.txt"
go run ./bench/harness ingest "${base[@]}" --clients 64 --batch 1 --runs "$count" | tee "$out/ingest-single.txt"
if [ -n "${SOAK:-}" ]; then
  echo "== soak ($SOAK)"
  go run ./bench/harness soak --duration "$SOAK" | tee "$out/soak.txt"
fi
echo "results in $out/ (compare runs with: go run golang.org/x/perf/cmd/benchstat $out/go-bench.txt)"
