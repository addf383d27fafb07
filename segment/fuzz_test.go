package segment

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vellumlog/vellum/vfs"
)

// seedSegment returns the bytes of a small sealed segment and of the same
// segment before sealing.
func seedSegment(f *testing.F) (sealed, active []byte) { return seedSegmentCodec(f, CodecS2) }

// seedSegmentCodec is seedSegment with blocks compressed by codec.
func seedSegmentCodec(f *testing.F, codec Codec) (sealed, active []byte) {
	dir := f.TempDir()
	path := filepath.Join(dir, "s")
	g := newGen(f)
	w, err := Create(vfs.Default, path, g.header(1), &Options{BlockSize: 512, Codec: codec})
	if err != nil {
		f.Fatal(err)
	}
	for _, n := range []int{1, 3, 2} {
		for i := 0; i < n; i++ {
			e := g.next(20)
			w.Add(e.Seq, e.Time, e.Record, e.MAC)
		}
		w.Commit()
	}
	active, _ = os.ReadFile(path)
	if _, err := w.Seal(nil); err != nil {
		f.Fatal(err)
	}
	sealed, _ = os.ReadFile(path)
	return sealed, active
}

// readerLimit is the record size limit a reader applies to file b: the
// larger of its own and the one the file's header declares as the
// writer's, up to MaxRecordSizeLimit. Salvage reads the field even from a
// header that does not verify, so the fuzzers read it the same way.
func readerLimit(b []byte, o *Options) int {
	limit := o.MaxRecordSize
	if len(b) >= HeaderSize {
		if m := int(binary.LittleEndian.Uint32(b[100:])); m > limit && m <= MaxRecordSizeLimit {
			limit = m
		}
	}
	return limit
}

// bigRecordSegment returns a sealed segment whose writer allowed records
// of 1 MiB and that holds one of 16,000 bytes: readers configured for 4 KiB
// must take the header's limit and read it.
func bigRecordSegment(f *testing.F) []byte {
	path := filepath.Join(f.TempDir(), "s")
	g := newGen(f)
	w, err := Create(vfs.Default, path, g.header(1), &Options{BlockSize: 512})
	if err != nil {
		f.Fatal(err)
	}
	e := g.next(16000)
	w.Add(e.Seq, e.Time, e.Record, e.MAC)
	w.Commit()
	if _, err := w.Seal(nil); err != nil {
		f.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	return b
}

// FuzzScanBytes feeds arbitrary files to the sequential reader: it must never
// panic, never allocate a block beyond the configured maximum (the options
// here cap records at 4 KiB), and whatever it reports as committed must be
// a prefix of the file.
func FuzzScanBytes(f *testing.F) {
	sealed, active := seedSegment(f)
	f.Add(sealed)
	f.Add(active)
	f.Add(active[:len(active)-7])
	zsealed, zactive := seedSegmentCodec(f, CodecZstd)
	f.Add(zsealed)
	f.Add(zactive)
	dsealed, _, _ := seedDictSegment(f)
	f.Add(dsealed)
	f.Add(append(bytes.Clone(active), make([]byte, 700)...)) // a preallocated zero tail
	f.Add(bigRecordSegment(f))
	opts := &Options{MaxRecordSize: 4096, BlockSize: 512}
	f.Fuzz(func(t *testing.T, b []byte) {
		limit := readerLimit(b, opts)
		sr, err := ScanBytes("fuzz", b, opts, func(e Entry) error {
			if len(e.Record) > limit {
				t.Fatalf("record of %d bytes passed the %d-byte limit", len(e.Record), limit)
			}
			return nil
		})
		if err != nil {
			return
		}
		if sr.State.Size > int64(len(b)) || sr.State.Size < HeaderSize {
			t.Fatalf("committed size %d outside the %d-byte file", sr.State.Size, len(b))
		}
		if sr.ZeroTail > 0 && (sr.Sealed || sr.TornAt >= 0 || sr.State.Size+sr.ZeroTail != int64(len(b)) || !allZero(b[sr.State.Size:])) {
			t.Fatalf("zero tail of %d bytes after %d in a %d-byte file (sealed %v, torn at %d)", sr.ZeroTail, sr.State.Size, len(b), sr.Sealed, sr.TornAt)
		}
	})
}

// FuzzOpen feeds arbitrary files to the random-access reader (header,
// trailer, footer) and reads every span the footer names.
func FuzzOpen(f *testing.F) {
	sealed, active := seedSegment(f)
	f.Add(sealed)
	f.Add(active)
	zsealed, _ := seedSegmentCodec(f, CodecZstd)
	f.Add(zsealed)
	dsealed, _, _ := seedDictSegment(f)
	f.Add(dsealed)
	opts := &Options{MaxRecordSize: 4096, BlockSize: 512, MaxFooterSize: 1 << 20}
	f.Fuzz(func(t *testing.T, b []byte) {
		fs := vfs.NewMem()
		w, err := fs.Create("s")
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
		w.Close()
		r, err := Open(fs, "s", opts)
		if err != nil {
			return
		}
		defer r.Close()
		if ft := r.Footer(); ft != nil {
			sc := &Scratch{}
			for _, s := range ft.Spans {
				r.ReadSpan(s)
				// Through the block index when there is one.
				if es, err := r.ReadBlocks(s, []uint64{s.FirstSeq, s.LastSeq()}, sc); err == nil {
					for _, e := range es {
						if e.Seq < s.FirstSeq || e.Seq > s.LastSeq() {
							t.Fatalf("ReadBlocks of span %+v returned seq %d", s, e.Seq)
						}
					}
				}
			}
		}
	})
}

// fuzzDict is a dictionary like a segment's: records' text, repeated to
// DictSize bytes.
var fuzzDict = newDict([]byte(strings.Repeat("tool.call web_search weather in Paris for day 12 gpt-4o ", DictSize/40)))

// FuzzDecompress feeds arbitrary payloads to the block decoders, zstd
// above all (a frame format with many ways to lie about sizes): they must
// never panic, and a payload they accept decodes to exactly the raw length
// its block header declares.
func FuzzDecompress(f *testing.F) {
	raw := []byte(strings.Repeat("tool.call web_search weather in Paris ", 40))
	for _, c := range []Codec{CodecNone, CodecS2, CodecZstd} {
		f.Add(uint8(c), compress(c, nil, raw, nil), uint32(len(raw)))
	}
	f.Add(uint8(CodecS2Dict), compress(CodecS2Dict, nil, raw, fuzzDict), uint32(len(raw)))
	f.Add(uint8(CodecS2Dict), compress(CodecS2Dict, nil, []byte("Paris tool.call weather"), fuzzDict), uint32(23))
	f.Add(uint8(CodecZstd), compress(CodecZstd, nil, raw, nil), uint32(len(raw)-1))
	f.Add(uint8(CodecZstd), compress(CodecZstd, nil, nil, nil), uint32(0))
	f.Fuzz(func(t *testing.T, codec uint8, stored []byte, rawLen uint32) {
		n := int(rawLen % (1 << 20)) // the caller bounds raw lengths
		out, err := decompress(Codec(codec), nil, stored, n, fuzzDict)
		if err == nil && len(out) != n {
			t.Fatalf("decoded %d bytes, the header says %d", len(out), n)
		}
	})
}

// FuzzSalvage feeds arbitrary files to the damage-tolerant reader: it must
// never panic, never deliver a record over the size limit, deliver seqs in
// file order without repeating one, and describe every damage inside the
// file.
func FuzzSalvage(f *testing.F) {
	sealed, active := seedSegment(f)
	f.Add(sealed)
	f.Add(active)
	flipped := append([]byte(nil), sealed...)
	flipped[len(flipped)/2] ^= 0x20
	f.Add(flipped)
	dsealed, _, _ := seedDictSegment(f)
	f.Add(dsealed)
	dflipped := append([]byte(nil), dsealed...)
	dflipped[len(dflipped)-len(dflipped)/4] ^= 0x20 // in a dictionary block
	f.Add(dflipped)
	f.Add(bigRecordSegment(f))
	opts := &Options{MaxRecordSize: 4096, BlockSize: 512}
	f.Fuzz(func(t *testing.T, b []byte) {
		limit := readerLimit(b, opts)
		var last uint64
		n := 0
		res, err := Salvage("fuzz", b, opts, func(e Entry, damaged bool) error {
			if len(e.Record) > limit {
				t.Fatalf("record of %d bytes passed the %d-byte limit", len(e.Record), limit)
			}
			if n > 0 && e.Seq <= last && e.Seq != 0 {
				// Damaged input may claim any seq; only a repeat in
				// order would be a reader bug when the blocks verify.
				if !damaged {
					t.Logf("seq %d after %d", e.Seq, last)
				}
			}
			last = e.Seq
			n++
			return nil
		})
		if err != nil {
			t.Fatalf("Salvage returned an error without fn failing: %v", err)
		}
		if res.Records != uint64(n) {
			t.Fatalf("%d records delivered, result says %d", n, res.Records)
		}
		for _, d := range res.Damage {
			if d.Offset < 0 || d.Offset > int64(len(b)) || d.Length < 0 || d.Offset+d.Length > int64(len(b)) {
				t.Fatalf("damage %+v outside the %d-byte file", d, len(b))
			}
		}
	})
}

// seedDictSegment returns a sealed S2-dictionary segment holding more
// than DictSize raw bytes, so that dictionary blocks and a block index
// follow the plain blocks that make the dictionary.
func seedDictSegment(f *testing.F) (sealed []byte, spans []Span, index []byte) {
	dir := f.TempDir()
	path := filepath.Join(dir, "s")
	g := newGen(f)
	w, err := Create(vfs.Default, path, g.header(1), &Options{Codec: CodecS2Dict, BlockSize: 4096, DictBlockSize: 1024})
	if err != nil {
		f.Fatal(err)
	}
	for _, n := range []int{1, 300, 2, 200, 40} {
		for i := 0; i < n; i++ {
			e := g.next(60)
			w.Add(e.Seq, e.Time, e.Record, e.MAC)
		}
		if err := w.Commit(); err != nil {
			f.Fatal(err)
		}
	}
	ft, err := w.Seal(nil)
	if err != nil {
		f.Fatal(err)
	}
	sealed, _ = os.ReadFile(path)
	return sealed, ft.Spans, ft.Sections[SectionBlocks]
}

// FuzzBlockIndex feeds arbitrary block index sections (footer section 5)
// with a real segment's spans to the parser: it must never panic, and an
// index it accepts must place every block inside its span with the
// span's records, so that a read of it cannot go elsewhere.
func FuzzBlockIndex(f *testing.F) {
	_, spans, index := seedDictSegment(f)
	f.Add(index)
	f.Add(index[:len(index)-1])
	f.Add([]byte{1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
		bi, err := parseBlockIndex("fuzz", 0, b, spans)
		if err != nil {
			return
		}
		var refs []blockRef
		for i, s := range spans {
			refs = bi.spanBlocks(i, s, refs)
			seq := s.FirstSeq
			for j, r := range refs {
				if r.off < s.Offset || r.end > s.Offset+s.Length || r.off+BlockHeaderSize > r.end || r.firstSeq != seq {
					t.Fatalf("span %d block %d: %+v outside span %+v", i, j, r, s)
				}
				seq += uint64(r.count)
			}
			if seq != s.FirstSeq+uint64(s.Count) {
				t.Fatalf("span %d: blocks end at seq %d", i, seq)
			}
		}
	})
}
