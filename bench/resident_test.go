package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/query"
)

// residentStore writes a store of at least segs sealed segments of
// generated records (the soak's shape, issue 14) and returns its records.
func residentStore(b *testing.B, dir string, segSize int64, segs int, signer note.Signer) int {
	e := openResident(b, dir, segSize, signer)
	defer e.Close()
	g := NewGen(1)
	recs := make([]vellum.Record, 1000)
	n := 0
	for e.Stats().SealedSegments < segs {
		for i := range recs {
			recs[i] = g.Next()
			recs[i].EventID = ""
		}
		if _, err := e.Append(context.Background(), recs...); err != nil {
			b.Fatal(err)
		}
		n += len(recs)
	}
	return n
}

func openResident(b *testing.B, dir string, segSize int64, signer note.Signer) *engine.Engine {
	e, err := engine.Open(dir, &engine.Options{
		Keys: key(b), Logger: quiet(), SegmentSize: segSize,
		Signer: signer, Origin: "bench.resident",
	})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkResident measures the Go heap an open engine keeps for a store
// of sealed segments of the soak's records (issue 14), after it has served
// the soak's reads on every segment: a Get, an inclusion proof and a
// filtered query (tenant and action, first page of 100). heap-B is the
// heap in use with the engine open minus without it, after a GC;
// B/segment and B/record divide it. What each segment adds is the
// difference between segments=25 and segments=100 (1 MiB segments, about
// 8,000 records each); what each record adds, the difference between 100
// segments of 1 MiB and 25 of 4 MiB (the same records).
// VELLUM_HEAP_PROFILE=file writes the heap profile of the last iteration.
func BenchmarkResident(b *testing.B) {
	for _, c := range []struct {
		size int64
		segs int
	}{{1 << 20, 25}, {1 << 20, 100}, {4 << 20, 25}} {
		size, segs := c.size, c.segs
		b.Run(fmt.Sprintf("segment=%dMiB/segments=%d", size>>20, segs), func(b *testing.B) {
			dir := b.TempDir()
			priv, _, err := checkpoint.GenerateKey("bench.resident")
			if err != nil {
				b.Fatal(err)
			}
			signer, err := note.NewSigner(priv)
			if err != nil {
				b.Fatal(err)
			}
			records := residentStore(b, dir, size, segs, signer)
			ctx := context.Background()
			for range b.N {
				base := heapInuse()
				e := openResident(b, dir, size, signer)
				snapSegs := e.Stats().SealedSegments
				if _, err := e.SignCheckpoint(ctx); err != nil {
					b.Fatal(err)
				}
				for s := 0; s < snapSegs; s++ {
					seq := uint64(1 + s*records/snapSegs)
					if _, err := e.Get(ctx, seq); err != nil {
						b.Fatal(err)
					}
					if _, err := e.InclusionProof(ctx, seq, 0); err != nil {
						b.Fatal(err)
					}
					q := query.Query{TenantID: fmt.Sprintf("tenant-%02d", s%20), Action: "tool.call", Limit: 100}
					if _, err := e.Query(ctx, q); err != nil {
						b.Fatal(err)
					}
				}
				held := heapInuse() - base
				if f := os.Getenv("VELLUM_HEAP_PROFILE"); f != "" {
					writeHeapProfile(b, f)
				}
				b.ReportMetric(float64(held), "heap-B")
				b.ReportMetric(float64(held)/float64(snapSegs), "B/segment")
				b.ReportMetric(float64(held)/float64(records), "B/record")
				runtime.KeepAlive(e)
				e.Close()
			}
		})
	}
}

func heapInuse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

func writeHeapProfile(b *testing.B, name string) {
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}
