// Package bench holds Vellum's benchmarks and the harness that builds large
// stores for them. The benchmarks run the baselines (a raw write+fdatasync
// loop, SQLite in WAL mode with synchronous=FULL) in the same run as the
// engine, so the ratios they print are what PERFORMANCE.md quotes.
//
//	go test -run '^$' -bench . -count 5 ./bench/   # or: make bench
//
// Everything here is durable: every acknowledged record has been fsync'd.
// The rules that keep the numbers honest: "disk" benchmarks fail when
// $TMPDIR is on tmpfs and log the file system they used (FSType); every
// rate has CPU time per record beside it (steadier than wall time on a
// shared machine); every store reports its bytes per record; verification
// is measured cold (the store evicted from the page cache) and warm.
//
// The harness (bench/harness) loads `vellum serve` as a separate process:
//
//	go run ./bench/harness ingest --clients 4 --batch 1000 --runs 5 --baseline <rev>
//	go run ./bench/harness soak --duration 10m
package bench
