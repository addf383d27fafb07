package segment

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/klauspost/compress/s2"

	"github.com/vellumlog/vellum/vfs"
)

// TestReadBlocksPrefix: of 64 KiB S2 blocks, and of a dictionary segment's
// blocks (through its block index), ReadBlocks decompresses only
// as far as the records wanted reach, and what it returns of them is what
// ReadSpan reads, wherever they lie in their block.
func TestReadBlocksPrefix(t *testing.T) {
	for name, opts := range map[string]*Options{
		"s2 64KiB":    {BlockSize: 64 << 10},
		"s2dict 8KiB": {Codec: CodecS2Dict, DictBlockSize: 8 << 10},
	} {
		t.Run(name, func(t *testing.T) { testReadBlocksPrefix(t, opts) })
	}
}

func testReadBlocksPrefix(t *testing.T, opts *Options) {
	fs := vfs.Default
	path := filepath.Join(t.TempDir(), "seg.vseg")
	g := newGen(t)
	w := writeBatches(t, fs, path, g, opts, 700, 5, 900, 1, 400)
	if _, err := w.Seal(nil); err != nil {
		t.Fatal(err)
	}
	r, err := Open(fs, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	short := 0
	for _, sp := range r.Footer().Spans {
		all, err := r.ReadSpan(sp)
		if err != nil {
			t.Fatal(err)
		}
		all = slices.Clone(all)
		for k := uint64(0); k < uint64(sp.Count); k += 7 {
			s := sp.FirstSeq + k
			for _, want := range [][]uint64{{s}, {s, min(s+3, sp.LastSeq())}, {sp.FirstSeq, s}} {
				want = slices.Compact(want)
				got, err := r.ReadBlocks(sp, want, &Scratch{})
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range want {
					i := slices.IndexFunc(got, func(e Entry) bool { return e.Seq == s })
					if i < 0 {
						t.Fatalf("span %d: seq %d missing", sp.FirstSeq, s)
					}
					j := int(s - sp.FirstSeq)
					if !bytes.Equal(got[i].Record, all[j].Record) || got[i].MAC != all[j].MAC || got[i].PrevMAC != all[j].PrevMAC || got[i].Time != all[j].Time {
						t.Fatalf("seq %d differs from ReadSpan", s)
					}
				}
				// The block of the last seq wanted, as ReadSpan has it,
				// and as much of it as ReadBlocks returned.
				last := all[want[len(want)-1]-sp.FirstSeq].Offset
				inBlock := func(es []Entry) int {
					c := 0
					for _, e := range es {
						if e.Offset == last {
							c++
						}
					}
					return c
				}
				if inBlock(got) < inBlock(all) {
					short++
				} else if k == 0 && len(want) == 1 {
					t.Fatalf("span %d: the block of its first record was decompressed whole", sp.FirstSeq)
				}
			}
		}
	}
	if short == 0 {
		t.Fatal("no block was decompressed in part")
	}
}

// FuzzS2Cut: s2Cut never panics and never cuts past its input; of a valid
// S2 block, the prefix s2DecodePrefix decodes is the start of the block's
// output, and the block's bytes are as they were after it.
func FuzzS2Cut(f *testing.F) {
	f.Add([]byte("hello hello hello hello, a record, another record, a record"), uint16(20), true)
	f.Add(bytes.Repeat([]byte("abcdefgh"), 9000), uint16(1000), true)
	f.Add([]byte{0x10, 0x0c, 'a', 'b', 'c', 0x01, 0x00, 0x05, 0x00}, uint16(3), false)
	f.Fuzz(func(t *testing.T, data []byte, n uint16, encode bool) {
		src := data
		if encode {
			src = s2.EncodeBetter(nil, data)
		}
		hdr, cut, out, ok := s2Cut(src, int(n))
		if ok && (hdr <= 0 || cut < hdr || cut > len(src) || out < 0) {
			t.Fatalf("s2Cut: hdr %d cut %d out %d of %d bytes", hdr, cut, out, len(src))
		}
		full, err := s2.Decode(nil, src)
		if encode && err != nil {
			t.Fatal(err)
		}
		if ok && err == nil && out < len(full) && out < int(n) {
			t.Fatalf("s2Cut stopped at %d of %d bytes, %d wanted", out, len(full), n)
		}
		rawLen, derr := s2.DecodedLen(src)
		if derr != nil || rawLen > 1<<20 {
			return
		}
		stored := bytes.Clone(src)
		p, ok := s2DecodePrefix(nil, stored, rawLen, int(n), nil)
		if !bytes.Equal(stored, src) {
			t.Fatal("s2DecodePrefix left the block changed")
		}
		// A block corrupt past the prefix may still give the prefix (its
		// CRC, checked first, is what protects a reader's blocks).
		if ok && err == nil && (len(p) >= len(full) || !bytes.Equal(p, full[:len(p)])) {
			t.Fatalf("prefix of %d bytes is not the block's start", len(p))
		}
		// The same of a block compressed with a dictionary (codec 3).
		if !encode || len(data) < 16 {
			return
		}
		d := s2.MakeDictManual(data[:min(len(data), 65536)], 0)
		if d == nil {
			return
		}
		src = d.Encode(nil, data)
		full, err = d.Decode(nil, src)
		if err != nil || !bytes.Equal(full, data) {
			t.Fatalf("dictionary round trip: %v", err)
		}
		stored = bytes.Clone(src)
		p, ok = s2DecodePrefix(nil, stored, len(full), int(n), d)
		if !bytes.Equal(stored, src) {
			t.Fatal("s2DecodePrefix left the dictionary block changed")
		}
		if ok && (len(p) >= len(full) || len(p) < min(int(n), len(full)) || !bytes.Equal(p, full[:len(p)])) {
			t.Fatalf("dictionary prefix of %d bytes is not the block's start", len(p))
		}
	})
}

// TestReadSpanFrom: ReadSpanFrom returns, from some record on, the span's
// records as ReadSpan has them, holding every record from time from on up
// to want of them or the span's end, and says whether it stopped short.
func TestReadSpanFrom(t *testing.T) {
	for name, opts := range map[string]*Options{
		"s2 64KiB":    {BlockSize: 64 << 10},
		"s2 4KiB":     {BlockSize: 4 << 10},
		"s2dict 8KiB": {Codec: CodecS2Dict, DictBlockSize: 8 << 10},
	} {
		t.Run(name, func(t *testing.T) {
			fs := vfs.Default
			path := filepath.Join(t.TempDir(), "seg.vseg")
			g := newGen(t)
			w := writeBatches(t, fs, path, g, opts, 700, 5, 900, 1, 400)
			if _, err := w.Seal(nil); err != nil {
				t.Fatal(err)
			}
			r, err := Open(fs, path, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			rng := rand.New(rand.NewPCG(3, 3))
			short := 0
			for _, sp := range r.Footer().Spans {
				all, err := r.ReadSpan(sp)
				if err != nil {
					t.Fatal(err)
				}
				all = slices.Clone(all)
				for range 40 {
					from := all[rng.IntN(len(all))].Time - int64(rng.IntN(2))*500
					want := rng.IntN(120) - 5
					got, more, err := r.ReadSpanFrom(sp, from, want, &Scratch{})
					if err != nil {
						t.Fatal(err)
					}
					if len(got) == 0 {
						t.Fatalf("span %d from %d: no entries", sp.FirstSeq, from)
					}
					i0 := int(got[0].Seq - sp.FirstSeq)
					for k, e := range got {
						a := all[i0+k]
						if e.Seq != a.Seq || e.Time != a.Time || !bytes.Equal(e.Record, a.Record) || e.MAC != a.MAC || e.PrevMAC != a.PrevMAC {
							t.Fatalf("span %d: entry %d differs from ReadSpan's", sp.FirstSeq, e.Seq)
						}
					}
					first := slices.IndexFunc(all, func(e Entry) bool { return e.Time >= from })
					end := i0 + len(got)
					if i0 > first || (end < len(all)) != more {
						t.Fatalf("span %d from %d want %d: entries %d..%d of %d (first at or after from %d), more %v", sp.FirstSeq, from, want, i0, end, len(all), first, more)
					}
					if more {
						short++
						if want <= 0 || end-first < want {
							t.Fatalf("span %d: stopped after %d records from %d, %d wanted", sp.FirstSeq, end-first, from, want)
						}
					}
				}
			}
			if short == 0 {
				t.Fatal("ReadSpanFrom never stopped short of a span's end")
			}
		})
	}
}

// TestReadBlockInfo: ReadBlockInfo gives each block's seqs and times as
// its records have them, and refuses a block whose payload changed.
func TestReadBlockInfo(t *testing.T) {
	fs := vfs.Default
	path := filepath.Join(t.TempDir(), "seg.vseg")
	g := newGen(t)
	opts := &Options{BlockSize: 4 << 10}
	w := writeBatches(t, fs, path, g, opts, 70, 5, 90, 1, 40)
	if _, err := w.Seal(nil); err != nil {
		t.Fatal(err)
	}
	r, err := Open(fs, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	blocks := 0
	for _, sp := range r.Footer().Spans {
		all, err := r.ReadSpan(sp)
		if err != nil {
			t.Fatal(err)
		}
		all = slices.Clone(all)
		bs, err := r.ReadBlockInfo(sp, &Scratch{})
		if err != nil {
			t.Fatal(err)
		}
		i := 0
		for _, b := range bs {
			es := all[i : i+int(b.Count)]
			if es[0].Seq != b.FirstSeq || es[0].Time != b.FirstTime || es[len(es)-1].Time != b.LastTime || es[0].Offset != es[len(es)-1].Offset ||
				i+int(b.Count) < len(all) && all[i+int(b.Count)].Offset == es[0].Offset {
				t.Fatalf("span %d: block %+v differs from its records", sp.FirstSeq, b)
			}
			i += int(b.Count)
		}
		if i != len(all) {
			t.Fatalf("span %d: blocks hold %d records, the span %d", sp.FirstSeq, i, len(all))
		}
		blocks += len(bs)
	}
	if blocks <= len(r.Footer().Spans) {
		t.Fatalf("%d blocks in %d spans: want spans of several blocks", blocks, len(r.Footer().Spans))
	}
	sp := r.Footer().Spans[1]
	r.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[sp.Offset+BlockHeaderSize+3] ^= 0x40
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err = Open(fs, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.ReadBlockInfo(sp, &Scratch{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a changed payload byte: %v", err)
	}
}
