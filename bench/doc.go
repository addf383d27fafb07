// Package bench holds Vellum's benchmarks and the harness that builds large
// stores for them. The benchmarks run the baselines (a raw write+fdatasync
// loop, SQLite in WAL mode with synchronous=FULL) in the same run as the
// engine, so the ratios they print are what PERFORMANCE.md quotes.
//
//	go test -run '^$' -bench . -count 5 ./bench/   # or: make bench
//
// Everything here is durable: every acknowledged record has been fsync'd.
package bench
