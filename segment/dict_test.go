package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vellumlog/vellum/vfs"
)

// TestDictSegment: an S2-dictionary segment, written in batches of every
// size and reopened for append in the middle (before and after its
// dictionary is complete), reads back exactly as written through Scan,
// ReadSpan and ReadBlocks; its first DictSize raw bytes are plain S2
// blocks and the blocks after them dictionary blocks of about
// DictBlockSize, inside spans of BlockSize.
func TestDictSegment(t *testing.T) {
	fs := vfs.Default
	path := filepath.Join(t.TempDir(), "seg.vseg")
	g := newGen(t)
	opts := &Options{Codec: CodecS2Dict, DictBlockSize: 4 << 10}
	w := writeBatches(t, fs, path, g, opts, 1, 3, 40, 1)
	reopen := func() {
		t.Helper()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		sr, err := Scan(fs, path, opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		if w, err = OpenAppend(fs, path, sr, opts); err != nil {
			t.Fatal(err)
		}
	}
	reopen() // fewer than DictSize raw bytes so far
	addBatches(t, w, g, 200, 1, 1, 300)
	reopen() // the dictionary is complete
	addBatches(t, w, g, 1, 2, 500, 7)
	if _, err := w.Seal(nil); err != nil {
		t.Fatal(err)
	}

	var got []Entry
	if _, err := Scan(fs, path, nil, func(e Entry) error {
		e.Record = bytes.Clone(e.Record)
		e.Offset, e.Span = 0, 0
		got = append(got, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sameEntries(t, got, g.all)

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if Codec(b[12]) != CodecS2Dict {
		t.Fatalf("header codec %d", b[12])
	}
	raw, plain, dict := 0, 0, 0
	r, err := Open(fs, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for off := HeaderSize; off < int(r.Footer().Offset); {
		if b[off] == frameCommit {
			off += CommitSize
			continue
		}
		var h blockHeader
		h.parse(b[off:])
		switch {
		case raw < DictSize && h.codec != CodecS2:
			t.Fatalf("block at %d (raw offset %d) has codec %s, want s2", off, raw, h.codec)
		case raw >= DictSize && h.codec != CodecS2Dict:
			t.Fatalf("block at %d (raw offset %d) has codec %s, want s2dict", off, raw, h.codec)
		case raw >= DictSize && h.rawLen > 4<<10+1024:
			t.Fatalf("dictionary block of %d raw bytes", h.rawLen)
		}
		if h.codec == CodecS2 {
			plain++
		} else {
			dict++
		}
		raw += int(h.rawLen)
		off += BlockHeaderSize + int(h.storedLen)
	}
	if dict < 10 {
		t.Fatalf("%d dictionary blocks, %d plain", dict, plain)
	}
	if r.blocks == nil {
		t.Fatal("sealed S2-dictionary segment without a block index")
	}
	for _, sp := range r.Footer().Spans {
		all, err := r.ReadSpan(sp)
		if err != nil {
			t.Fatal(err)
		}
		sameEntries(t, stripped(all), g.all[sp.FirstSeq-1:sp.FirstSeq-1+uint64(sp.Count)])
		for _, s := range []uint64{sp.FirstSeq, sp.LastSeq(), sp.FirstSeq + uint64(sp.Count)/2} {
			// A fresh reader: the dictionary is read on first use.
			r2, err := Open(fs, path, nil)
			if err != nil {
				t.Fatal(err)
			}
			es, err := r2.ReadBlocks(sp, []uint64{s}, &Scratch{})
			r2.Close()
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(es, func(e Entry) bool { return e.Seq == s })
			if i < 0 || !bytes.Equal(es[i].Record, g.all[s-1].Record) || es[i].PrevMAC != g.all[s-1].PrevMAC {
				t.Fatalf("seq %d: ReadBlocks differs", s)
			}
		}
	}
}

func addBatches(t *testing.T, w *Writer, g *gen, batches ...int) {
	t.Helper()
	for _, n := range batches {
		for i := 0; i < n; i++ {
			e := g.next(100 + int(g.seq%50))
			if err := w.Add(e.Seq, e.Time, e.Record, e.MAC); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

func stripped(es []Entry) []Entry {
	out := make([]Entry, len(es))
	for i, e := range es {
		e.Offset, e.Span = 0, 0
		out[i] = e
	}
	return out
}

// TestDictSegmentDamage: a dictionary block read without its dictionary,
// or with a damaged one, is reported as corrupt, never decoded wrong or
// with a panic.
func TestDictSegmentDamage(t *testing.T) {
	fs := vfs.Default
	path := filepath.Join(t.TempDir(), "seg.vseg")
	g := newGen(t)
	w := writeBatches(t, fs, path, g, &Options{Codec: CodecS2Dict}, 600, 400)
	if _, err := w.Seal(nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	// Flip a byte in the first (dictionary) block's payload: its CRC
	// catches it.
	bad := bytes.Clone(b)
	bad[HeaderSize+BlockHeaderSize+100] ^= 0x40
	if _, err := ScanBytes("bad", bad, nil, nil); err == nil {
		t.Fatal("scan of a segment with a damaged dictionary block succeeded")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(fs, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	last := r.Footer().Spans[len(r.Footer().Spans)-1]
	if _, err := r.ReadBlocks(last, []uint64{last.LastSeq()}, &Scratch{}); err == nil {
		t.Fatal("a dictionary block decoded with a damaged dictionary")
	}
	r.Close()
	// A dictionary block where the dictionary is not yet complete: turn
	// the first block's codec into 3 (CRC recomputed).
	early := bytes.Clone(b)
	early[HeaderSize+1] = byte(CodecS2Dict)
	early = RecomputeCRCs(early)
	if _, err := ScanBytes("early", early, nil, nil); err == nil {
		t.Fatal("a dictionary block before the dictionary was accepted")
	}
}

// TestBlockIndexForged: a block index that does not describe the data,
// with every CRC recomputed (a forger's), fails the scan that verification
// runs, and a reader that trusts it fails rather than return other
// records.
func TestBlockIndexForged(t *testing.T) {
	fs := vfs.Default
	path := filepath.Join(t.TempDir(), "seg.vseg")
	g := newGen(t)
	w := writeBatches(t, fs, path, g, &Options{Codec: CodecS2Dict}, 600, 300, 1, 500)
	if _, err := w.Seal(nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	r, err := Open(fs, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	sec := r.Footer().SectionOffsets[SectionBlocks]
	n := len(r.Footer().Sections[SectionBlocks])
	spans := r.Footer().Spans
	r.Close()
	if n == 0 {
		t.Fatal("no block index")
	}
	if _, err := ScanBytes("good", b, nil, nil); err != nil {
		t.Fatal(err)
	}
	open := func(img []byte) (*Reader, error) {
		p := filepath.Join(t.TempDir(), "forged.vseg")
		if err := os.WriteFile(p, img, 0o644); err != nil {
			t.Fatal(err)
		}
		return Open(fs, p, nil)
	}
	// Swap two blocks' counts in a span (the sum stays right): a read of
	// the moved records finds the block header disagree.
	forged := bytes.Clone(b)
	lst := forged[sec+8:]
	bi, err := parseBlockIndex("x", 0, forged[sec:sec+int64(n)], spans)
	if err != nil {
		t.Fatal(err)
	}
	last := -1
	for i := len(spans) - 1; i >= 0 && last < 0; i-- {
		p := int(bi.starts[i])
		nb, k := binary.Uvarint(lst[p:])
		if nb < 2 {
			continue
		}
		p += k + 1 // the first delta is 0
		c1 := p
		_, k = binary.Uvarint(lst[p:])
		p += k
		_, k = binary.Uvarint(lst[p:])
		c2 := p + k
		if lst[c1] != lst[c2] && lst[c1] < 0x80 && lst[c2] < 0x80 {
			lst[c1], lst[c2] = lst[c2], lst[c1]
			last = i
		}
	}
	if last < 0 {
		t.Fatal("no span with two blocks of different counts")
	}
	forged = RecomputeCRCs(forged)
	if _, err := ScanBytes("forged", forged, nil, nil); err == nil || !strings.Contains(err.Error(), "block index") {
		t.Fatalf("scan of a forged block index: %v", err)
	}
	fr, err := open(forged)
	if err != nil {
		t.Fatal(err)
	}
	sp := spans[last]
	seqs := make([]uint64, 0, sp.Count)
	for s := sp.FirstSeq; s <= sp.LastSeq(); s++ {
		seqs = append(seqs, s)
	}
	if _, err := fr.ReadBlocks(sp, seqs, &Scratch{}); err == nil {
		t.Fatal("ReadBlocks trusted a forged block index")
	}
	fr.Close()
	// Truncated (one byte short, CRCs recomputed): the footer no longer
	// parses as sections, or the index is short.
	for _, cut := range []int{1, n / 2, n - 8} {
		img := append(bytes.Clone(b[:sec-8]), b[sec-8:]...)
		binary.LittleEndian.PutUint32(img[sec-4:], uint32(n-cut))
		img = append(img[:sec+int64(n-cut)], img[sec+int64(n):]...)
		// The footer body length and the trailer's offset stay; fix the
		// body length so that only the section is short.
		fo := int64(binary.LittleEndian.Uint64(img[len(img)-TrailerSize:]))
		binary.LittleEndian.PutUint32(img[fo+4:], binary.LittleEndian.Uint32(img[fo+4:])-uint32(cut))
		img = RecomputeCRCs(img)
		if _, err := ScanBytes("cut", img, nil, nil); err == nil {
			t.Fatalf("scan of a block index cut by %d bytes succeeded", cut)
		}
		if fr, err := open(img); err == nil {
			fr.Close()
			t.Fatalf("open of a block index cut by %d bytes succeeded", cut)
		}
	}
}

// TestDictVersion: S2-dictionary segments are format version 2, so a
// build that reads only version 1 says so; a header whose version and
// codec disagree is corrupt.
func TestDictVersion(t *testing.T) {
	h := Header{Codec: CodecS2Dict, Number: 1, FirstSeq: 1, SpanTarget: 1}
	b := h.marshal()
	if v := binary.LittleEndian.Uint16(b[8:]); v != VersionDict {
		t.Fatalf("version %d", v)
	}
	if _, err := parseHeader("x", b); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		v    uint16
		want error
	}{{Version, ErrCorrupt}, {VersionDict + 1, ErrVersion}} {
		bad := bytes.Clone(b)
		binary.LittleEndian.PutUint16(bad[8:], tc.v)
		binary.LittleEndian.PutUint32(bad[124:], crc(bad[:124]))
		if _, err := parseHeader("x", bad); !errors.Is(err, tc.want) {
			t.Fatalf("version %d: %v, want %v", tc.v, err, tc.want)
		}
	}
	h.Codec = CodecS2
	if v := binary.LittleEndian.Uint16(h.marshal()[8:]); v != Version {
		t.Fatalf("S2 segment of version %d", v)
	}
}

// TestDictSegmentSalvage: the damage-tolerant reader delivers every record
// of an intact S2-dictionary segment, and around a damaged dictionary
// block it delivers the records of every other block (the dictionary
// itself is intact); with the dictionary's own block damaged, the
// dictionary blocks after it are reported lost, never decoded wrong.
func TestDictSegmentSalvage(t *testing.T) {
	fs := vfs.Default
	path := filepath.Join(t.TempDir(), "seg.vseg")
	g := newGen(t)
	w := writeBatches(t, fs, path, g, &Options{Codec: CodecS2Dict}, 600, 400)
	if _, err := w.Seal(nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	salvage := func(img []byte) (map[uint64]bool, *SalvageResult) {
		got := map[uint64]bool{}
		res, err := Salvage("x", img, nil, func(e Entry, damaged bool) error {
			if !damaged {
				if int(e.Seq) > len(g.all) || !bytes.Equal(e.Record, g.all[e.Seq-1].Record) {
					t.Fatalf("seq %d delivered as not damaged, differs from what was written", e.Seq)
				}
				got[e.Seq] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got, res
	}
	if got, res := salvage(b); len(got) != len(g.all) || len(res.Damage) != 0 {
		t.Fatalf("intact: %d of %d records, damage %v", len(got), len(g.all), res.Damage)
	}
	// The last block frame (a dictionary block): damage its payload.
	last := -1
	for off := HeaderSize; off < len(b)-TrailerSize; {
		switch b[off] {
		case frameCommit:
			off += CommitSize
			continue
		case frameBlock:
			last = off
			off += BlockHeaderSize + int(binary.LittleEndian.Uint32(b[off+36:]))
			continue
		}
		break
	}
	var lh blockHeader
	lh.parse(b[last:])
	if lh.codec != CodecS2Dict {
		t.Fatalf("last block has codec %s", lh.codec)
	}
	bad := bytes.Clone(b)
	bad[last+BlockHeaderSize+10] ^= 0xff
	got, res := salvage(bad)
	if len(res.Damage) == 0 || len(got) < len(g.all)-int(lh.count) || len(got) == len(g.all) {
		t.Fatalf("damaged last block: %d of %d records, damage %v", len(got), len(g.all), res.Damage)
	}
	// The first block (part of the dictionary): the plain blocks before
	// the dictionary is complete still deliver; no dictionary block does.
	bad = bytes.Clone(b)
	bad[HeaderSize+BlockHeaderSize+10] ^= 0xff
	got, res = salvage(bad)
	if len(res.Damage) == 0 || len(got) >= len(g.all)/2 {
		t.Fatalf("damaged dictionary: %d of %d records delivered, damage %v", len(got), len(g.all), res.Damage)
	}
}
