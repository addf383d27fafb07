#!/usr/bin/env bash
# The long benchmark run behind PERFORMANCE.md (not part of `make test`):
# the Go benchmarks of bench/ with their baselines in the same run, then the
# harness on a store of RECORDS records (built once into DATA), then the
# same records replicated into SQLite (DATA.sqlite) and PostgreSQL
# (VELLUM_BENCH_PG_DSN, or schema vellum_bench_<N>m of the test server) and
# the same queries against them.
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
# The SQL side: the same records replicated (summaries) into SQLite and
# PostgreSQL, built once, then the same query workload against each.
pgschema="vellum_bench_$((records / 1000000))m"
pgdsn="${VELLUM_BENCH_PG_DSN:-postgres://postgres@127.0.0.1:5432/test?search_path=$pgschema}"
if [ -z "${VELLUM_BENCH_PG_DSN:-}" ]; then
  ./scripts/pg-up.sh
  psql -XAtq "postgres://postgres@127.0.0.1:5432/test" -c "CREATE SCHEMA IF NOT EXISTS $pgschema" >/dev/null
fi
echo "== replication into SQLite and PostgreSQL (resumes; a built replica replicates nothing)"
go run ./bench/harness replicate --data "$data" --sqlite "$data.sqlite" --dsn "$pgdsn" | tee "$out/replicate.txt"
echo "== the same queries against the SQL replicas"
go run ./bench/harness query-sql --sqlite "$data.sqlite" --dsn "$pgdsn" --queries 2000 | tee "$out/query-sql.txt"
echo "results in $out/ (compare runs with: go run golang.org/x/perf/cmd/benchstat $out/go-bench.txt)"
