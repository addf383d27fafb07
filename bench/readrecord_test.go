package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

// BenchmarkReadRecord reads one random record of a sealed segment the way
// a selective query fetches a match (segment.Reader.ReadBlocks with one
// seq), from 64 KiB S2 blocks (codec=s2-64k, the layout before) and from
// 8 KiB blocks sharing a dictionary, through the block index (codec=s2dict,
// the default): what one match costs besides the postings; and a whole
// span (codec=…/span), what reading in order costs. The segment
// (12 MiB, about 75,000 bench records, in the page cache) is built once per
// codec.
func BenchmarkReadRecord(b *testing.B) {
	for _, c := range []struct {
		name  string
		codec segment.Codec
	}{{"s2-64k", segment.CodecS2}, {"s2dict", segment.CodecS2Dict}} {
		dir := b.TempDir()
		k, err := chain.NewKey(bytes.Repeat([]byte{1}, 32))
		if err != nil {
			b.Fatal(err)
		}
		e, err := engine.Open(dir, &engine.Options{Keys: chain.NewKeyring(k), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Codec: c.codec, SegmentSize: 12 << 20, NoPostings: true})
		if err != nil {
			b.Fatal(err)
		}
		g := NewGen(1)
		recs := make([]vellum.Record, 1000)
		for range 100 {
			for i := range recs {
				recs[i] = g.Next()
			}
			if _, err := e.Append(context.Background(), recs...); err != nil {
				b.Fatal(err)
			}
		}
		if err := e.Close(); err != nil {
			b.Fatal(err)
		}
		nums, err := layout.ListSegments(nil, dir)
		if err != nil {
			b.Fatal(err)
		}
		r, err := segment.Open(vfs.Default, layout.SegmentPath(dir, nums[0]), nil)
		if err != nil {
			b.Fatal(err)
		}
		ft := r.Footer()
		if ft == nil || ft.Count < 30_000 {
			b.Fatalf("segment 1 is not sealed or small (%v)", ft)
		}
		b.Run(fmt.Sprintf("codec=%s", c.name), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			sc := &segment.Scratch{}
			for b.Loop() {
				sp := ft.Spans[rng.IntN(len(ft.Spans))]
				seq := sp.FirstSeq + rng.Uint64N(uint64(sp.Count))
				es, err := r.ReadBlocks(sp, []uint64{seq}, sc)
				if err != nil || len(es) == 0 {
					b.Fatal(err)
				}
			}
		})
		// A whole span, as a time-range page, a scan or verification
		// reads it: the price of dictionary blocks there.
		b.Run(fmt.Sprintf("codec=%s/span", c.name), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			sc := &segment.Scratch{}
			n := 0
			for b.Loop() {
				es, err := r.ReadSpanScratch(ft.Spans[rng.IntN(len(ft.Spans))], sc)
				if err != nil {
					b.Fatal(err)
				}
				n += len(es)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/record")
		})
		r.Close()
	}
}
