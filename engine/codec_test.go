package engine_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/verify"
)

// TestCodecPerSegment writes a store whose segments use plain S2 (the
// default), then zstd, then S2 with a dictionary
// (the codec changed between restarts): every segment's
// header names the codec it was created with, the active segment keeps
// its codec across a reopen, and everything reads back and verifies.
func TestCodecPerSegment(t *testing.T) {
	dir := t.TempDir()
	key, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keys := chain.NewKeyring(key)
	var want []vellum.Record
	phase := func(codec segment.Codec, n int) {
		t.Helper()
		e, err := engine.Open(dir, &engine.Options{Keys: keys, Codec: codec, SegmentSize: 16 << 10,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			r := vellum.Record{Action: "tool.call", TenantID: "acme", Outcome: vellum.Outcome{Status: "success"},
				Tool: vellum.Tool{Name: "web_search", Arguments: []byte(fmt.Sprintf(`{"query":"weather in Paris, day %d"}`, i))}}
			if _, err := e.Append(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			want = append(want, r)
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
	codecs := func() []segment.Codec {
		nums, err := layout.ListSegments(nil, dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []segment.Codec
		for _, n := range nums {
			b, err := os.ReadFile(layout.SegmentPath(dir, n))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, segment.Codec(b[12])) // header byte 12: codec (FORMAT.md)
		}
		return out
	}
	phase(0, 300) // zero value: plain S2 (codec 1)
	n1 := len(codecs())
	phase(segment.CodecZstd, 300)
	got := codecs()
	if got[n1-1] != segment.CodecS2 {
		t.Fatalf("the segment active at the switch changed codec: %v", got)
	}
	if got[len(got)-1] != segment.CodecZstd || got[0] != segment.CodecS2 {
		t.Fatalf("codecs %v: want plain S2 first and zstd last", got)
	}
	phase(segment.CodecS2Dict, 300)
	got = codecs()
	if got[len(got)-1] != segment.CodecS2Dict {
		t.Fatalf("codecs %v: want S2 with a dictionary last", got)
	}
	zstd := 0
	for _, c := range got {
		if c == segment.CodecZstd {
			zstd++
		}
	}
	if zstd < 2 {
		t.Fatalf("codecs %v: want several zstd segments", got)
	}

	e, err := engine.Open(dir, &engine.Options{Keys: keys, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for r, err := range e.Scan(context.Background(), 1, e.LastSeq()) {
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Tool.Arguments) != string(want[i].Tool.Arguments) {
			t.Fatalf("record %d: arguments %s, want %s", i+1, r.Tool.Arguments, want[i].Tool.Arguments)
		}
		i++
	}
	e.Close()
	if i != len(want) {
		t.Fatalf("read %d records, want %d", i, len(want))
	}
	rep, err := verify.Dir(dir, &verify.Options{Keys: keys})
	if err != nil || !rep.OK() || rep.Records != uint64(len(want)) {
		t.Fatalf("verify: %v, %+v", err, rep)
	}
}
