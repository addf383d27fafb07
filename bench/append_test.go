package bench

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"golang.org/x/sys/unix"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/segment"
)

// recordsPerSec reports throughput in records per second.
func recordsPerSec(b *testing.B, n int) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// cpuTime returns the process's user+system CPU time so far. On a shared
// machine CPU time per record is far steadier than wall time: other
// processes steal the processor, not the work.
func cpuTime() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS reports the process's peak resident set size (VmHWM) in MB.
func peakRSS(b *testing.B) {
	s, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(s), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, _ := strconv.Atoi(f[1])
			b.ReportMetric(float64(kb)/1024, "peak-RSS-MB")
		}
	}
}

// tmpfsDir returns a fresh directory on tmpfs (/dev/shm), where fsync costs
// nothing, or skips the benchmark when there is none.
func tmpfsDir(b *testing.B) string {
	dir, err := os.MkdirTemp("/dev/shm", "vellum-bench")
	if err != nil {
		b.Skipf("no tmpfs at /dev/shm: %v", err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func openEngineIn(b *testing.B, dir string, codec segment.Codec) *engine.Engine {
	return openEngineCounting(b, dir, codec, nil, false)
}

// openEngineCounting opens an engine that counts its group commits (one
// fsync each) in batches, when it is not nil. It counts them through an
// Observer rather than Options.OnCommit, which would make the engine build
// every record's commit entry: work the pre-split engine's benchmark (the
// baseline of PERFORMANCE.md's same-run comparisons) never asked for.
func openEngineCounting(b *testing.B, dir string, codec segment.Codec, batches *atomic.Int64, noPostings bool) *engine.Engine {
	return openEngineCountingLone(b, dir, codec, batches, nil, noPostings)
}

// openEngineCountingLone is openEngineCounting that also counts, in lone,
// the fsyncs that carried a single record.
func openEngineCountingLone(b *testing.B, dir string, codec segment.Codec, batches, lone *atomic.Int64, noPostings bool) *engine.Engine {
	return openEngineObserved(b, dir, codec, commitCounter{n: batches, lone: lone}, noPostings)
}

// openEngineObserved opens an engine whose group commits c counts (none
// when c.n is nil).
func openEngineObserved(b *testing.B, dir string, codec segment.Codec, c commitCounter, noPostings bool) *engine.Engine {
	var obs engine.Observer
	if c.n != nil {
		obs = c
	}
	k, err := chain.NewKey(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		b.Fatal(err)
	}
	e, err := engine.Open(dir, &engine.Options{
		Keys:       chain.NewKeyring(k),
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Codec:      codec,
		Observer:   obs,
		NoPostings: noPostings,
	})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// commitCounter counts durable batches, in lone (if set) those of one
// record, and in syncNs (if set) the nanoseconds their fdatasyncs took.
type commitCounter struct{ n, lone, syncNs *atomic.Int64 }

func (c commitCounter) Opened(engine.OpenStats) {}
func (c commitCounter) Committed(st engine.CommitStats) {
	c.n.Add(1)
	if c.lone != nil && st.Records == 1 {
		c.lone.Add(1)
	}
	if c.syncNs != nil {
		c.syncNs.Add(int64(st.SyncDuration))
	}
}
func (c commitCounter) Sealed(engine.SealStats)                 {}
func (c commitCounter) CheckpointSigned(engine.CheckpointStats) {}
func (c commitCounter) Failed(error)                            {}

// pregen makes n records up front so generation is not measured.
func pregen(n int) []vellum.Record {
	g := NewGen(1)
	recs := make([]vellum.Record, n)
	for i := range recs {
		recs[i] = g.Next()
		recs[i].EventID = "" // unique ids would be deduplicated on repeat; measure the plain path
	}
	return recs
}

const recordBytes = 350 // the size the targets are stated for

// BenchmarkAppend measures durable appends: every call returns only after
// its records are fsync'd. callers goroutines each append batch records per
// call. The baselines below run in the same `go test -bench` invocation.
// disk=ext4 runs in $TMPDIR, which must be on a disk (checked: the
// benchmark fails on tmpfs and logs the file system it used); codec=zstd
// runs with zstd blocks instead of 64 KiB S2 blocks (the default),
// codec=s2dict with 8 KiB S2 blocks sharing a per-segment dictionary. B/record is the store's size on
// disk per record.
func BenchmarkAppend(b *testing.B) {
	sample := NewGen(1).Next()
	b.Logf("sample record encodes to %d bytes", EncodedSize(&sample))
	for _, c := range []struct {
		callers, batch int
		disk           string
		codec          segment.Codec
		noPostings     bool
	}{
		{1, 1, "ext4", 0, false}, {64, 1, "ext4", 0, false}, {1024, 1, "ext4", 0, false}, {1, 1000, "ext4", 0, false}, {4, 1000, "ext4", 0, false},
		// The same work on tmpfs, whose fsync costs nothing: the CPU
		// ceiling of the append path, for reading the others.
		{4, 1000, "tmpfs", 0, false}, {1024, 1, "tmpfs", 0, false},
		// One serial caller on tmpfs: the CPU of a durable serial append
		// beyond its fsync (issue 14), for profiling.
		{1, 1, "tmpfs", 0, false},
		// zstd: about a fifth smaller on disk, for its CPU.
		{4, 1000, "ext4", segment.CodecZstd, false}, {64, 1, "ext4", segment.CodecZstd, false}, {4, 1000, "tmpfs", segment.CodecZstd, false},
		// Without record-level postings (issue 13): what they cost.
		{4, 1000, "ext4", 0, true}, {4, 1000, "tmpfs", 0, true}, {64, 1, "ext4", 0, true}, {1024, 1, "ext4", 0, true},
		// S2 blocks sharing a per-segment dictionary (codec 3,
		// audit.compression: s2dict): what they cost on the append path.
		{4, 1000, "ext4", segment.CodecS2Dict, false}, {4, 1000, "tmpfs", segment.CodecS2Dict, false}, {64, 1, "ext4", segment.CodecS2Dict, false},
	} {
		name := fmt.Sprintf("callers=%d/batch=%d/disk=%s", c.callers, c.batch, c.disk)
		switch c.codec {
		case segment.CodecZstd:
			name += "/codec=zstd"
		case segment.CodecS2Dict:
			name += "/codec=s2dict"
		}
		if c.noPostings {
			name += "/postings=off"
		}
		b.Run(name, func(b *testing.B) { benchAppend(b, c.callers, c.batch, c.disk, c.codec, c.noPostings) })
	}
}

// BenchmarkAppendPostings is the postings A/B of BenchmarkAppend (4 callers
// × 1,000 records per call) with each variant named apart, so that each can
// run alone in its own process: in one process the first benchmark also
// pays the process's warm-up (heap growth, first page faults), which
// would count against whichever variant runs first.
//
//	go test -run '^$' -bench 'AppendPostings/disk=tmpfs/postings=on$' ./bench/
func BenchmarkAppendPostings(b *testing.B) {
	for _, disk := range []string{"ext4", "tmpfs"} {
		for _, on := range []bool{true, false} {
			name := fmt.Sprintf("disk=%s/postings=%s", disk, map[bool]string{true: "on", false: "off"}[on])
			b.Run(name, func(b *testing.B) { benchAppend(b, 4, 1000, disk, 0, !on) })
		}
	}
}

// BenchmarkAppendCallers is BenchmarkAppend's 1,024-caller case on disk
// with postings on and off, named apart so that each runs alone in its own
// process (see BenchmarkAppendPostings):
//
//	go test -run '^$' -bench 'AppendCallers/postings=on$' ./bench/
func BenchmarkAppendCallers(b *testing.B) {
	for _, on := range []bool{true, false} {
		name := "postings=" + map[bool]string{true: "on", false: "off"}[on]
		b.Run(name, func(b *testing.B) { benchAppend(b, 1024, 1, "ext4", 0, !on) })
	}
}

// benchAppend appends with callers goroutines, batch records per call, to
// a store on disk ("ext4" or "tmpfs"), and reports CPU, records per fsync,
// records per second, peak RSS and bytes per record.
func benchAppend(b *testing.B, callers, batch int, disk string, codec segment.Codec, noPostings bool) {
	dir := b.TempDir()
	if disk == "tmpfs" {
		dir = tmpfsDir(b)
	} else {
		requireDisk(b, dir)
	}
	var batches, lone, syncNs atomic.Int64
	e := openEngineObserved(b, dir, codec, commitCounter{&batches, &lone, &syncNs}, noPostings)
	defer e.Close()
	pool := pregen(4096)
	calls := (b.N + batch - 1) / batch
	b.SetBytes(recordBytes)
	b.ResetTimer()
	cpu0 := cpuTime()
	var wg sync.WaitGroup
	var next sync.Mutex
	issued := 0
	for w := 0; w < callers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			recs := make([]vellum.Record, batch)
			for i := 0; ; i++ {
				next.Lock()
				if issued >= calls {
					next.Unlock()
					return
				}
				issued++
				next.Unlock()
				for j := range recs {
					recs[j] = pool[(w*7919+i*batch+j)%len(pool)]
				}
				if _, err := e.Append(context.Background(), recs...); err != nil {
					b.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(calls*batch), "cpu-ns/record")
	b.ReportMetric(float64(calls*batch)/float64(max(batches.Load(), 1)), "records/fsync")
	// The disk's pace in this run: the mean time of a commit's fdatasync.
	// On a shared disk it sets the run's mode at 1,024 callers
	// (PERFORMANCE.md, "The 1,024-caller case's two modes").
	b.ReportMetric(float64(syncNs.Load())/1e3/float64(max(batches.Load(), 1)), "us/fsync")
	if batch == 1 {
		// The fsyncs that carried one record: a caller that found the
		// committer idle and wrote its own batch (or a lone arrival).
		b.ReportMetric(100*float64(lone.Load())/float64(max(batches.Load(), 1)), "%lone-fsyncs")
	}
	recordsPerSec(b, calls*batch)
	peakRSS(b)
	if err := e.Close(); err != nil {
		b.Fatal(err)
	}
	reportBytesPerRecord(b, storeBytes(b, dir), calls*batch)
}

// BenchmarkBaselineFdatasync is the raw disk: write 350 bytes, fdatasync,
// repeat. Serial durable appends are judged against this rate.
func BenchmarkBaselineFdatasync(b *testing.B) {
	dir := b.TempDir()
	requireDisk(b, dir)
	f, err := os.OpenFile(filepath.Join(dir, "raw"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := bytes.Repeat([]byte("x"), recordBytes)
	b.SetBytes(recordBytes)
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/record")
	recordsPerSec(b, b.N)
}

// BenchmarkBaselineSQLite inserts the same records into SQLite in WAL mode
// with synchronous=FULL (durable per commit), txn records per transaction.
func BenchmarkBaselineSQLite(b *testing.B) {
	for _, txn := range []int{1, 1000} {
		b.Run(fmt.Sprintf("txn=%d", txn), func(b *testing.B) {
			dir := b.TempDir()
			requireDisk(b, dir)
			db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "b.db")+"?_journal_mode=WAL&_synchronous=FULL")
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(1)
			if _, err := db.Exec(`CREATE TABLE audit (seq INTEGER PRIMARY KEY, time INTEGER, tenant TEXT, action TEXT, body BLOB)`); err != nil {
				b.Fatal(err)
			}
			pool := pregen(4096)
			encoded := make([][]byte, len(pool))
			for i := range pool {
				encoded[i], _ = pool[i].MarshalBinary()
			}
			b.SetBytes(recordBytes)
			b.ResetTimer()
			cpu0 := cpuTime()
			n := 0
			for n < b.N {
				tx, err := db.Begin()
				if err != nil {
					b.Fatal(err)
				}
				st, _ := tx.Prepare(`INSERT INTO audit (time, tenant, action, body) VALUES (?, ?, ?, ?)`)
				for j := 0; j < txn; j++ {
					r := &pool[n%len(pool)]
					if _, err := st.Exec(n, r.TenantID, r.Action, encoded[n%len(pool)]); err != nil {
						b.Fatal(err)
					}
					n++
				}
				st.Close()
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(n), "cpu-ns/record")
			recordsPerSec(b, n)
			// The database with its WAL checkpointed in: the same
			// bytes-per-record measure as the engine's stores.
			if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
				b.Fatal(err)
			}
			var size int64
			if err := db.QueryRow(`SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()`).Scan(&size); err != nil {
				b.Fatal(err)
			}
			reportBytesPerRecord(b, size, n)
		})
	}
}

// BenchmarkSerialVsFdatasync alternates, in rounds of 20 operations, one
// durable serial Append and the two raw baselines on files in the same
// directory: write(350 B)+fdatasync appending to a growing file, and
// pwrite(350 B)+fdatasync into a preallocated, zero-filled file (what the
// engine does once its active segment is preallocated: segment/FORMAT.md,
// "Preallocated files"). All three see the same disk and the same
// neighbours: on a shared machine whose fsync latency drifts by several
// times within a minute, only an interleaved run gives a ratio worth
// quoting. The engine first fills and seals a small segment, so that the
// appends measured go into a preallocated one (checked). It reports each
// rate and the ratio against each baseline; "ratio" is the one against
// the faster baseline (target >= 0.9), and engine-extra-us/op, the
// microseconds an append costs beyond the faster baseline.
func BenchmarkSerialVsFdatasync(b *testing.B) {
	dir := b.TempDir()
	requireDisk(b, dir)
	e := openPreallocated(b, dir, false)
	defer e.Close()
	// The same engine without preallocation, for the ratio of the change.
	grow := openPreallocated(b, b.TempDir(), true)
	defer grow.Close()
	raw := b.TempDir()
	app, err := os.OpenFile(filepath.Join(raw, "append"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer app.Close()
	pre, err := os.OpenFile(filepath.Join(raw, "prealloc"), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer pre.Close()
	if _, err := pre.Write(make([]byte, (b.N+20)*recordBytes+(1<<20))); err != nil {
		b.Fatal(err)
	}
	if err := unix.Fdatasync(int(pre.Fd())); err != nil {
		b.Fatal(err)
	}
	buf := bytes.Repeat([]byte("x"), recordBytes)
	pool := pregen(1024)
	var engineTime, growTime, appendTime, preTime time.Duration
	var preOff int64
	const round = 20
	b.ResetTimer()
	cpu0 := cpuTime()
	for done := 0; done < b.N; done += round {
		t0 := time.Now()
		for i := 0; i < round; i++ {
			if _, err := e.Append(context.Background(), pool[(done+i)%len(pool)]); err != nil {
				b.Fatal(err)
			}
		}
		tg := time.Now()
		for i := 0; i < round; i++ {
			if _, err := grow.Append(context.Background(), pool[(done+i)%len(pool)]); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for i := 0; i < round; i++ {
			if _, err := app.Write(buf); err != nil {
				b.Fatal(err)
			}
			if err := unix.Fdatasync(int(app.Fd())); err != nil {
				b.Fatal(err)
			}
		}
		t2 := time.Now()
		for i := 0; i < round; i++ {
			if _, err := pre.WriteAt(buf, preOff); err != nil {
				b.Fatal(err)
			}
			preOff += recordBytes
			if err := unix.Fdatasync(int(pre.Fd())); err != nil {
				b.Fatal(err)
			}
		}
		engineTime += tg.Sub(t0)
		growTime += t1.Sub(tg)
		appendTime += t2.Sub(t1)
		preTime += time.Since(t2)
	}
	b.StopTimer()
	if st := grow.Stats(); st.Preallocated != 0 {
		b.Fatalf("the engine without preallocation has a zero tail: %+v", st)
	}
	if st := e.Stats(); st.Preallocated == 0 {
		b.Fatalf("the engine's active segment was not preallocated during the run: %+v", st)
	}
	n := float64((b.N + round - 1) / round * round)
	b.ReportMetric(n/engineTime.Seconds(), "engine-records/s")
	b.ReportMetric(n/growTime.Seconds(), "engine-noprealloc-records/s")
	b.ReportMetric(growTime.Seconds()/engineTime.Seconds(), "prealloc-speedup")
	b.ReportMetric(n/appendTime.Seconds(), "append-fdatasync/s")
	b.ReportMetric(n/preTime.Seconds(), "prealloc-fdatasync/s")
	b.ReportMetric(appendTime.Seconds()/engineTime.Seconds(), "ratio-vs-append")
	b.ReportMetric(preTime.Seconds()/engineTime.Seconds(), "ratio-vs-prealloc")
	b.ReportMetric(min(appendTime, preTime).Seconds()/engineTime.Seconds(), "ratio")
	// What the engine adds to each durable append beyond the faster raw
	// write+fdatasync: unlike the ratio, it hardly moves when the disk's
	// fsync time drifts (a slow disk makes any overhead look small).
	b.ReportMetric((engineTime-min(appendTime, preTime)).Seconds()*1e6/n, "engine-extra-us/op")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/(4*n), "cpu-ns/op") // all four sides' operations
}

// openPreallocated opens an engine in dir with 4 MiB segments and fills
// the first (which, created at Open, grows with every batch) until the
// active segment is one the engine preallocated; with noPrealloc, until
// it is the second segment, which then grows with every batch.
func openPreallocated(b *testing.B, dir string, noPrealloc bool) *engine.Engine {
	k, err := chain.NewKey(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		b.Fatal(err)
	}
	e, err := engine.Open(dir, &engine.Options{
		Keys: chain.NewKeyring(k), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		SegmentSize: 4 << 20, CheckpointInterval: -1, NoPreallocate: noPrealloc,
	})
	if err != nil {
		b.Fatal(err)
	}
	pool := pregen(1000)
	deadline := time.Now().Add(time.Minute)
	for e.Stats().Preallocated == 0 && (!noPrealloc || e.Stats().SealedSegments == 0) {
		if time.Now().After(deadline) {
			b.Fatalf("no preallocated segment after a minute: %+v", e.Stats())
		}
		for st := e.Stats(); !noPrealloc && st.ActiveBytes > 3<<20 && !st.NextPreallocated && time.Now().Before(deadline); st = e.Stats() {
			time.Sleep(time.Millisecond) // the next file is being zero-filled
		}
		if _, err := e.Append(context.Background(), pool[:100]...); err != nil {
			b.Fatal(err)
		}
	}
	return e
}
