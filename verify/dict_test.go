package verify

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

// TestDictSegmentTampering: in S2-dictionary segments (codec 3), a forged
// or truncated block index (footer section 5) and a changed dictionary
// (the records of the segment's first 64 KiB, which every later block is
// decoded with) are reported, with CRCs recomputed by the forger, with the
// key and without it.
func TestDictSegmentTampering(t *testing.T) {
	src := t.TempDir()
	key := testKey(1)
	signer, verifier := signerPair("vellum-test")
	o := &engine.Options{
		Keys: chain.NewKeyring(key), Signer: signer, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		SegmentSize: 48 << 10, Codec: segment.CodecS2Dict, DictBlockSize: 2 << 10, CheckpointRecords: 100, CheckpointInterval: -1,
	}
	e, err := engine.Open(src, o)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2000; i += 25 {
		recs := make([]vellum.Record, 25)
		for j := range recs {
			recs[j] = record(i + j)
		}
		if _, err := e.Append(context.Background(), recs...); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := segment.Open(vfs.Default, segPath(src, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	ft := r.Footer()
	r.Close()
	at, n := ft.SectionOffsets[segment.SectionBlocks], int64(len(ft.Sections[segment.SectionBlocks]))
	if n == 0 || r.Header().Codec != segment.CodecS2Dict {
		t.Fatalf("segment 1: codec %s, block index of %d bytes", r.Header().Codec, n)
	}
	le := binary.LittleEndian
	tests := []struct {
		name   string
		tamper func(b []byte) []byte
	}{
		{"intact", nil},
		{"block index forged", func(b []byte) []byte {
			// The last byte: the last block's record count.
			b[at+n-1] ^= 0x01
			return b
		}},
		{"block index truncated", func(b []byte) []byte {
			const cut = 3
			le.PutUint32(b[at-4:], uint32(n-cut))
			b = append(b[:at+n-cut], b[at+n:]...)
			le.PutUint32(b[ft.Offset+4:], le.Uint32(b[ft.Offset+4:])-cut)
			return b
		}},
		{"dictionary changed (a byte of the first block)", func(b []byte) []byte {
			b[segment.HeaderSize+segment.BlockHeaderSize+200] ^= 0x04
			return b
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
				t.Fatal(err)
			}
			if tt.tamper != nil {
				b := readSeg(t, dir, 1)
				writeSeg(t, dir, 1, segment.RecomputeCRCs(tt.tamper(b)))
			}
			for _, keys := range []*chain.Keyring{chain.NewKeyring(key), nil} {
				rep, err := Dir(dir, &Options{Keys: keys, Verifier: verifier})
				if err != nil {
					t.Fatalf("I/O error: %v", err)
				}
				if tt.tamper == nil {
					if !rep.OK() {
						t.Fatalf("intact store reported: %v", rep.Problems)
					}
					continue
				}
				if rep.OK() || !errors.Is(rep.Err(), ErrNotIntact) {
					t.Fatalf("key %v: tampering not detected", keys != nil)
				}
				if p := rep.First(); p.File != segName(1) {
					t.Fatalf("key %v: first problem %v, want one in %s", keys != nil, p, segName(1))
				} else {
					t.Logf("key %v: %v", keys != nil, p)
				}
			}
		})
	}
}
