package bench

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/backends/postgres"
	"github.com/vellumlog/vellum/backends/postgres/pgtest"
	"github.com/vellumlog/vellum/backends/replicate"
	"github.com/vellumlog/vellum/backends/sqlite"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/engine"
)

// openStore opens an empty primary store of the given kind for b, and
// returns a function that reports the bytes it occupies.
func openStore(b *testing.B, kind string) (backends.Store, func() int64) {
	b.Helper()
	switch kind {
	case "engine":
		dir := b.TempDir()
		requireDisk(b, dir)
		return openEngineIn(b, dir, 0), func() int64 { return dirSize(dir) - unwrittenBytes(b, dir) }
	case "sqlite":
		dir := b.TempDir()
		requireDisk(b, dir)
		s, err := sqlite.Open(filepath.Join(dir, "audit.db"), &sqlite.Options{Keys: key(b), Logger: quiet()})
		if err != nil {
			b.Fatal(err)
		}
		return s, func() int64 { return dirSize(dir) }
	case "postgres":
		_, dsn := pgtest.Schema(b)
		s, err := postgres.Open(context.Background(), &postgres.Options{DSN: dsn, WriterID: "bench", Keys: key(b), Logger: quiet(), MaxConns: 8})
		if err != nil {
			b.Fatal(err)
		}
		return s, func() int64 { return pgSize(b, dsn) }
	}
	b.Fatalf("unknown store %s", kind)
	return nil, nil
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// pgSize is the size of audit_records's partitions with their indexes
// (the WAL, shared with the rest of the server, is not counted).
func pgSize(b *testing.B, dsn string) int64 {
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(context.Background())
	var n int64
	if err := c.QueryRow(context.Background(), `SELECT COALESCE(sum(pg_total_relation_size(i.inhrelid)), 0)::bigint FROM pg_inherits i
		WHERE i.inhparent = 'audit_records'::regclass`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkStores measures durable appends into each primary store, with
// the full HMAC chain, in one run so the ratios hold: 1 caller appending
// one record per call, 64 concurrent callers (group commit: concurrent
// callers share one transaction), and 1 caller appending batches of 1,000
// (one transaction each; COPY into PostgreSQL). Every record is durable
// (fsync'd, or committed with synchronous_commit=on) before its call
// returns.
func BenchmarkStores(b *testing.B) {
	for _, kind := range []string{"engine", "sqlite", "postgres"} {
		for _, c := range []struct{ callers, batch int }{{1, 1}, {64, 1}, {1, 1000}} {
			b.Run(fmt.Sprintf("store=%s/callers=%d/batch=%d", kind, c.callers, c.batch), func(b *testing.B) {
				s, size := openStore(b, kind)
				defer s.Close()
				pool := pregen(4096)
				calls := (b.N + c.batch - 1) / c.batch
				b.SetBytes(recordBytes)
				b.ResetTimer()
				cpu0 := cpuTime()
				var wg sync.WaitGroup
				var mu sync.Mutex
				issued := 0
				for w := 0; w < c.callers; w++ {
					wg.Add(1)
					go func(w int) {
						defer wg.Done()
						batch := make([]vellum.Record, c.batch)
						for i := 0; ; i++ {
							mu.Lock()
							if issued >= calls {
								mu.Unlock()
								return
							}
							issued++
							mu.Unlock()
							for j := range batch {
								batch[j] = pool[(w*7919+i*c.batch+j)%len(pool)]
							}
							if _, err := s.Append(context.Background(), batch...); err != nil {
								b.Error(err)
								return
							}
						}
					}(w)
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(calls*c.batch), "cpu-ns/record")
				recordsPerSec(b, calls*c.batch)
				b.ReportMetric(float64(size())/float64(calls*c.batch), "bytes/record")
			})
		}
	}
}

// replSource is an engine holding at least n records, built once per
// process and shared by the replication benchmarks.
var replSource struct {
	sync.Mutex
	e *engine.Engine
}

func replEngine(b *testing.B, n int) *engine.Engine {
	replSource.Lock()
	defer replSource.Unlock()
	if replSource.e == nil {
		dir, err := tmpDir()
		if err != nil {
			b.Fatal(err)
		}
		e := openEngineIn(b, dir, 0)
		replSource.e = e
		cleanups = append(cleanups, func() { e.Close(); removeAll(dir) })
	}
	e := replSource.e
	if have := int(e.LastSeq()); have < n {
		pool := pregen(4096)
		batch := make([]vellum.Record, 1000)
		for i := have; i < n; i += len(batch) {
			for j := range batch {
				batch[j] = pool[(i+j)%len(pool)]
			}
			if _, err := e.Append(context.Background(), batch...); err != nil {
				b.Fatal(err)
			}
		}
	}
	return e
}

// BenchmarkReplicate measures replication throughput: an engine already
// holding b.N records is replicated, from nothing, into a new SQLite file or
// PostgreSQL schema (summaries, batches of 5,000, each batch and the
// cursor in one transaction). The rate is how fast a replica catches up,
// and the most the engine may append for the replica to keep up. Target:
// 200,000 records/s into PostgreSQL.
func BenchmarkReplicate(b *testing.B) {
	for _, target := range []string{"sqlite", "postgres"} {
		b.Run("target="+target, func(b *testing.B) {
			e := replEngine(b, b.N)
			var open func(context.Context) (replicate.Target, error)
			switch target {
			case "sqlite":
				path := filepath.Join(b.TempDir(), "replica.db")
				open = func(context.Context) (replicate.Target, error) {
					return sqlite.OpenReplica(path, &sqlite.ReplicaOptions{Logger: quiet()})
				}
			case "postgres":
				_, dsn := pgtest.Schema(b)
				open = func(ctx context.Context) (replicate.Target, error) {
					return postgres.OpenReplica(ctx, &postgres.ReplicaOptions{DSN: dsn, Logger: quiet()})
				}
			}
			// Open once outside the timer (migrations).
			t, err := open(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			t.Close()
			b.SetBytes(recordBytes)
			b.ResetTimer()
			cpu0 := cpuTime()
			start := time.Now()
			r := replicate.Start(e, open, &replicate.Options{Writer: "bench", Logger: quiet(), FlushInterval: time.Millisecond})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
			err = r.WaitFor(ctx, uint64(b.N))
			cancel()
			el := time.Since(start)
			b.StopTimer()
			// A batch may carry it past b.N (the shared engine holds more):
			// the rate counts the rows actually written.
			_, rows := r.Stats()
			r.Close()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(rows), "cpu-ns/record")
			b.ReportMetric(float64(rows)/el.Seconds(), "records/s")
		})
	}
}

func key(b *testing.B) *chain.Keyring {
	k, err := chain.NewKey(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		b.Fatal(err)
	}
	return chain.NewKeyring(k)
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func tmpDir() (string, error) { return os.MkdirTemp("", "vellum-bench-repl") }

func removeAll(dir string) { os.RemoveAll(dir) }
