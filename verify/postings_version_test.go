package verify

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"testing"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/query"
	"github.com/vellumlog/vellum/segment"
)

// TestPostingsVersions: segments sealed by a build that wrote postings
// version 1 (8-bit fingerprints) still verify, and still answer session
// and trace queries; a version 2 section relabelled version 1 (its entries
// then mean other fingerprints and ordinals) is reported, as is one whose
// entries a forger rewrote in version 1 with one fingerprint changed.
func TestPostingsVersions(t *testing.T) {
	key := testKey(3)
	build := func(t *testing.T) string {
		dir := t.TempDir()
		e, err := engine.Open(dir, &engine.Options{Keys: chain.NewKeyring(key), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			SegmentSize: 16 << 10, BlockSize: 4 << 10, CheckpointInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 400; i += 20 {
			recs := make([]vellum.Record, 20)
			for j := range recs {
				recs[j] = record(i + j)
				recs[j].TraceID = fmt.Sprintf("trace-%d", i+j)
				recs[j].SessionID = fmt.Sprintf("session-%d", (i+j)/3)
			}
			if _, err := e.Append(context.Background(), recs...); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	// toV1 rewrites segment n's postings in version 1, in place (the
	// sections are the same size), with every CRC right; corrupt, when
	// set, changes one entry's fingerprint.
	toV1 := func(t *testing.T, dir string, n uint64, corrupt bool) {
		b := readSeg(t, dir, n)
		at, sec := postingsOf(t, dir, n)
		if sec[0] != 2 {
			t.Fatalf("segment %d has postings version %d", n, sec[0])
		}
		v1 := postingsV1(t, sec, corrupt)
		copy(b[at:], v1)
		writeSeg(t, dir, n, segment.RecomputeCRCs(b))
	}
	relabel := func(t *testing.T, dir string, n uint64) {
		b := readSeg(t, dir, n)
		at, _ := postingsOf(t, dir, n)
		b[at] = 1
		writeSeg(t, dir, n, segment.RecomputeCRCs(b))
	}
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, dir string)
		bad    bool
	}{
		{"version 1 sections", func(t *testing.T, dir string) { toV1(t, dir, 1, false); toV1(t, dir, 2, false) }, false},
		{"version 2 relabelled 1 by a forger who fixes CRCs", func(t *testing.T, dir string) { relabel(t, dir, 2) }, true},
		{"version 1 with a fingerprint forged, CRCs fixed", func(t *testing.T, dir string) { toV1(t, dir, 2, true) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := build(t)
			tc.tamper(t, dir)
			rep, err := Dir(dir, &Options{Keys: chain.NewKeyring(key)})
			if err != nil {
				t.Fatal(err)
			}
			if !tc.bad {
				if !rep.OK() {
					t.Fatalf("version 1 postings reported: %v", rep.Problems)
				}
			} else {
				if rep.OK() || rep.Problems[0].Check != CheckPostings || rep.Problems[0].File != segName(2) {
					t.Fatalf("want a postings problem in %s, got %v", segName(2), rep.Problems)
				}
				return
			}
			// The engine verifies them on open and answers from them.
			e, err := engine.Open(dir, &engine.Options{Keys: chain.NewKeyring(key), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), VerifyOnOpen: true})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			for i := 0; i < 400; i += 7 {
				p, err := e.Query(context.Background(), query.Query{TraceID: fmt.Sprintf("trace-%d", i)})
				if err != nil || len(p.Records) != 1 || p.Records[0].Seq != uint64(i+1) {
					t.Fatalf("trace-%d: %d records, %v", i, len(p.Records), err)
				}
				s := fmt.Sprintf("session-%d", i/3)
				p, err = e.Query(context.Background(), query.Query{SessionID: s})
				if want := min(3, 400-3*(i/3)); err != nil || len(p.Records) != want || p.Records[0].SessionID != s {
					t.Fatalf("%s: %d records, %v", s, len(p.Records), err)
				}
			}
		})
	}
}

// postingsV1 returns version 2 section sec in version 1, as the build
// before wrote it (segment/FORMAT.md, "Postings (section 4)"): the same
// bytes but the version and the hashed entries, whose 8-bit fingerprint is
// the first 8 bits of the longer one. corrupt changes one fingerprint.
func postingsV1(t *testing.T, sec []byte, corrupt bool) []byte {
	t.Helper()
	le := binary.LittleEndian
	out := append([]byte(nil), sec...)
	out[0] = 1
	w, records := int(sec[1]), le.Uint32(sec[4:])
	pos := 12
	uv := func() uint64 {
		v, n := binary.Uvarint(sec[pos:])
		if n <= 0 {
			t.Fatal("bad uvarint")
		}
		pos += n
		return v
	}
	for range le.Uint32(sec[8:]) {
		pos++ // field
		pos += int(uv())
		uv()  // count
		pos++ // encoding
		uv()  // offset
		uv()  // length
	}
	if sec[pos] != 2 {
		t.Fatalf("%d hashed fields", sec[pos])
	}
	hd := pos + 1
	data := hd + 2*14
	stride := 1 + w
	ob := uint(1)
	if records > 1 {
		ob = uint(bits.Len32(records - 1))
	}
	fb := uint(8*stride) - ob
	changed := false
	for i := range 2 {
		h := sec[hd+14*i:]
		e, entOff := int(le.Uint32(h[2:])), int(le.Uint32(h[10:]))
		for j := range e {
			p := data + entOff + j*stride
			var x uint64
			for k := range stride {
				x |= uint64(sec[p+k]) << (8 * k)
			}
			ord, fp := x&(1<<ob-1), x>>ob
			y := fp>>(fb-8) | ord<<8
			if corrupt && !changed {
				y ^= 0x10
				changed = true
			}
			for k := range stride {
				out[p+k] = byte(y >> (8 * k))
			}
		}
	}
	if corrupt && !changed {
		t.Fatal("no hashed entry to corrupt")
	}
	return out
}
