package report

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/bench"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/verify"
	"github.com/vellumlog/vellum/vfs"
)

var (
	benchOnce sync.Once
	benchDir  string
	benchErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" && os.Getenv("VELLUM_REPORT_BENCH_DIR") == "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// benchStore returns the store the benchmarks read: $VELLUM_REPORT_BENCH_DIR
// (say the 10M-record store of `go run ./bench/harness build`, which has no
// signed checkpoints), or 200,000 generated records (bench.NewGen, ~350
// bytes each) spread over 30 days, with signed checkpoints.
func benchStore(b *testing.B) string {
	if d := os.Getenv("VELLUM_REPORT_BENCH_DIR"); d != "" {
		return d
	}
	benchOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vellum-report-bench")
		if err != nil {
			benchErr = err
			return
		}
		benchDir = dir
		key, _ := chain.GenerateKey()
		// Signed checkpoints, so the integrity check has work to do.
		sk, vk, err := checkpoint.GenerateKey("bench")
		if err == nil {
			err = checkpoint.WriteKeyPair(filepath.Join(dir, checkpoint.PrivateKeyFile), filepath.Join(dir, checkpoint.PublicKeyFile), sk, vk)
		}
		if err != nil {
			benchErr = err
			return
		}
		signer, err := checkpoint.LoadSigner(filepath.Join(dir, checkpoint.PrivateKeyFile))
		if err != nil {
			benchErr = err
			return
		}
		const n = 200_000
		epoch := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
		var clock atomic.Int64
		e, err := engine.Open(dir, &engine.Options{Keys: chain.NewKeyring(key), Signer: signer, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Now: func() time.Time { return epoch.Add(time.Duration(clock.Load())) }})
		if err != nil {
			benchErr = err
			return
		}
		g := bench.NewGen(1)
		step := int64(30 * 24 * time.Hour / n)
		batch := make([]vellum.Record, 0, 1000)
		for i := 0; i < n; i += 1000 {
			batch = batch[:0]
			for j := 0; j < 1000; j++ {
				batch = append(batch, g.Next())
			}
			clock.Store(int64(i) * step)
			if _, err := e.Append(context.Background(), batch...); err != nil {
				benchErr = err
				return
			}
		}
		benchErr = e.Close()
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchDir
}

// cpuTime returns the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkReport measures one pass over the store: Aggregate alone, the
// whole report (aggregate, integrity check, charts, HTML), and as the
// baseline in the same run the obvious way of counting (decode every
// record through verify.Store).
func BenchmarkReport(b *testing.B) {
	dir := benchStore(b)
	ctx := context.Background()
	b.Run("method=aggregate", func(b *testing.B) {
		var recs uint64
		cpu0 := cpuTime()
		for b.Loop() {
			s, err := Aggregate(ctx, dir, Filter{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			recs = s.Scanned
		}
		b.ReportMetric(float64(recs)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		b.ReportMetric(float64(recs), "records")
		// CPU time does not depend on what the neighbours do; with both
		// cores free, wall time is about half of it.
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(recs)/float64(b.N), "cpu-ns/record")
	})
	b.Run("method=integrity", func(b *testing.B) {
		for b.Loop() {
			if in := checkIntegrity(vfs.Default, dir, filepath.Join(dir, checkpoint.PublicKeyFile)); in.Latest != nil && !in.Verified() {
				b.Fatalf("root: %s", in.RootErr)
			}
		}
	})
	b.Run("method=full-report", func(b *testing.B) {
		var recs uint64
		cpu0 := cpuTime()
		for b.Loop() {
			r, err := Build(ctx, &Options{Dir: dir})
			if err != nil {
				b.Fatal(err)
			}
			if err := r.Write(io.Discard, &Options{Dir: dir}); err != nil {
				b.Fatal(err)
			}
			recs = r.Summary.Scanned
		}
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(recs)/float64(b.N), "cpu-ns/record")
	})
	b.Run("method=decode-all-baseline", func(b *testing.B) {
		var n uint64
		cpu0 := cpuTime()
		for b.Loop() {
			st, err := verify.OpenStore(nil, dir)
			if err != nil {
				b.Fatal(err)
			}
			counts := map[string]uint64{}
			n = 0
			for r, err := range st.Records(st.FirstSeq(), st.LastSeq()) {
				if err != nil {
					b.Fatal(err)
				}
				counts[r.Record.Action+"/"+r.Record.Outcome.Status]++
				n++
			}
			st.Close()
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(n)/float64(b.N), "cpu-ns/record")
	})
}
