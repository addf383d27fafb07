package server

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/bench"
)

// benchBody is n bench.Gen events as an ingest body (a JSON array), the
// shape the HTTP load generator sends.
func benchBody(tb testing.TB, n int) []byte {
	g := bench.NewGen(1)
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		r := g.Next()
		b.Write(eventJSON(tb, &r))
	}
	b.WriteByte(']')
	return b.Bytes()
}

// BenchmarkDecodeEvents measures the ingest decoder on bodies of
// bench.Gen events, against the decoder it replaced (impl=oracle, built on
// encoding/json's Decoder.Token) in the same run.
func BenchmarkDecodeEvents(b *testing.B) {
	for _, n := range []int{1, 1000} {
		body := benchBody(b, n)
		for _, impl := range []struct {
			name string
			dec  func([]byte, DecodeOptions) ([]vellum.Record, error)
		}{{"jsontext", DecodeEvents}, {"oracle", oracleDecodeEvents}} {
			b.Run(fmt.Sprintf("events=%d/impl=%s", n, impl.name), func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					recs, err := impl.dec(body, DecodeOptions{})
					if err != nil || len(recs) != n {
						b.Fatal(len(recs), err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
			})
		}
	}
}
