package segment

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/vfs"
)

// salvageFixture writes a sealed segment of several batches and blocks and
// returns its bytes, its records and the offsets of its frames.
func salvageFixture(t *testing.T, opts *Options) ([]byte, *gen, []frameAt) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s")
	g := newGen(t)
	w := writeBatches(t, vfs.Default, path, g, opts, 3, 10, 1, 8, 4)
	if _, err := w.Seal(nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b, g, framesOf(b)
}

type frameAt struct {
	off, n   int
	typ      byte
	first    uint64
	count    uint32
	storeLen int
}

func framesOf(b []byte) []frameAt {
	le := binary.LittleEndian
	var out []frameAt
	for off := HeaderSize; off < len(b); {
		switch b[off] {
		case frameBlock:
			n := BlockHeaderSize + int(le.Uint32(b[off+36:]))
			out = append(out, frameAt{off, n, frameBlock, le.Uint64(b[off+8:]), le.Uint32(b[off+4:]), n - BlockHeaderSize})
			off += n
		case frameCommit:
			out = append(out, frameAt{off: off, n: CommitSize, typ: frameCommit})
			off += CommitSize
		default:
			out = append(out, frameAt{off: off, n: len(b) - off, typ: b[off]})
			return out
		}
	}
	return out
}

func nthFrame(fs []frameAt, typ byte, n int) frameAt {
	for _, f := range fs {
		if f.typ == typ {
			if n == 0 {
				return f
			}
			n--
		}
	}
	panic("no such frame")
}

type salvaged struct {
	res     *SalvageResult
	seqs    []uint64
	damaged []uint64
	macBad  []uint64 // seqs whose MAC does not verify from the MAC before
}

func salvage(t *testing.T, b []byte) salvaged {
	t.Helper()
	h := testKey(t).NewHasher()
	var s salvaged
	res, err := Salvage("s", b, nil, func(e Entry, damaged bool) error {
		s.seqs = append(s.seqs, e.Seq)
		if damaged {
			s.damaged = append(s.damaged, e.Seq)
		}
		if h.Next(e.PrevMAC, e.Record) != e.MAC {
			s.macBad = append(s.macBad, e.Seq)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.res = res
	return s
}

func contiguous(seqs []uint64, first, last uint64) bool {
	if uint64(len(seqs)) != last-first+1 {
		return false
	}
	for i, s := range seqs {
		if s != first+uint64(i) {
			return false
		}
	}
	return true
}

// TestSalvage damages a sealed segment in each way a verifier must
// explain and checks what Salvage says: the kind and place of the damage,
// which records are still read (all of them unless bytes are lost), which
// are marked damaged, and that the MAC check then names the one record
// that changed.
func TestSalvage(t *testing.T) {
	for _, codec := range []struct {
		name string
		opts *Options
	}{{"none", &Options{NoCompression: true, BlockSize: 1024}}, {"s2", &Options{BlockSize: 1024}}} {
		t.Run(codec.name, func(t *testing.T) {
			base, g, fs := salvageFixture(t, codec.opts)
			total := uint64(len(g.all))
			intact := salvage(t, base)
			if len(intact.res.Damage) != 0 || intact.res.Footer == nil || !intact.res.HeaderOK || !contiguous(intact.seqs, 1, total) ||
				len(intact.macBad) != 0 || len(intact.res.Spans) != len(intact.res.Footer.Spans) {
				t.Fatalf("intact segment: damage %v, footer %v, %d records, bad MACs %v", intact.res.Damage, intact.res.Footer != nil, len(intact.seqs), intact.macBad)
			}
			blk := nthFrame(fs, frameBlock, 2)
			tests := []struct {
				name  string
				off   int
				kind  DamageKind
				check func(t *testing.T, s salvaged)
			}{
				{"header", 20, DamageHeader, func(t *testing.T, s salvaged) {
					if !contiguous(s.seqs, 1, total) || len(s.macBad) != 0 || s.res.HeaderOK {
						t.Fatalf("records %v, bad MACs %v", s.seqs, s.macBad)
					}
				}},
				{"block payload", blk.off + BlockHeaderSize + blk.storeLen/2, 0, func(t *testing.T, s salvaged) {
					d := s.res.Damage[0]
					if d.FirstSeq != blk.first || d.Offset != int64(blk.off) {
						t.Fatalf("damage %+v, want the block at %d from seq %d", d, blk.off, blk.first)
					}
					switch d.Kind {
					case DamageBlock: // decoded anyway: every record read, the changed ones fail their MACs
						// (one without compression; a changed S2 copy can alter several)
						inBlock := len(s.macBad) > 0
						for _, q := range s.macBad {
							inBlock = inBlock && q >= blk.first && q < blk.first+uint64(blk.count)
						}
						if !contiguous(s.seqs, 1, total) || !inBlock || (codec.name == "none" && len(s.macBad) != 1) || uint32(len(s.damaged)) != blk.count {
							t.Fatalf("records %d, damaged %v, bad MACs %v", len(s.seqs), s.damaged, s.macBad)
						}
					case DamageLost: // a compressed payload that no longer decodes
						if codec.name == "none" || d.Count != uint64(blk.count) || uint64(len(s.seqs)) != total-uint64(blk.count) || len(s.macBad) != 0 {
							t.Fatalf("lost %+v; %d records read, bad MACs %v", d, len(s.seqs), s.macBad)
						}
					default:
						t.Fatalf("damage %+v", d)
					}
				}},
				{"block stored length", blk.off + 37, DamageLost, func(t *testing.T, s salvaged) {
					d := s.res.Damage[0]
					if d.Offset != int64(blk.off) || d.FirstSeq != blk.first || d.Count != uint64(blk.count) ||
						uint64(len(s.seqs)) != total-uint64(blk.count) || len(s.macBad) != 0 {
						t.Fatalf("lost %+v; %d records read, bad MACs %v", d, len(s.seqs), s.macBad)
					}
				}},
				{"commit frame", nthFrame(fs, frameCommit, 1).off + 9, DamageCommit, func(t *testing.T, s salvaged) {
					if !contiguous(s.seqs, 1, total) || len(s.macBad) != 0 || len(s.damaged) != 0 || s.res.Footer == nil {
						t.Fatalf("records %d, damaged %v, bad MACs %v", len(s.seqs), s.damaged, s.macBad)
					}
				}},
				{"footer", nthFrame(fs, frameFooter, 0).off + 12, DamageFooter, func(t *testing.T, s salvaged) {
					if !contiguous(s.seqs, 1, total) || len(s.macBad) != 0 || s.res.Footer != nil {
						t.Fatalf("records %d, bad MACs %v, footer %v", len(s.seqs), s.macBad, s.res.Footer)
					}
				}},
				{"trailer", len(base) - 100, DamageFooter, func(t *testing.T, s salvaged) {
					if !contiguous(s.seqs, 1, total) || s.res.Footer != nil {
						t.Fatalf("records %d, footer %v", len(s.seqs), s.res.Footer)
					}
				}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					b := bytes.Clone(base)
					b[tt.off] ^= 0x04
					s := salvage(t, b)
					if len(s.res.Damage) == 0 {
						t.Fatal("no damage found")
					}
					if tt.kind != 0 && s.res.Damage[0].Kind != tt.kind {
						t.Fatalf("damage %+v, want kind %s", s.res.Damage, tt.kind)
					}
					tt.check(t, s)
				})
			}
		})
	}
}

// TestSalvageUnsealed: an active segment whose middle is damaged still
// gives every committed record around the damage, and its incomplete final
// batch is reported, not delivered.
func TestSalvageUnsealed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	g := newGen(t)
	w := writeBatches(t, vfs.Default, path, g, &Options{NoCompression: true, BlockSize: 1024}, 3, 10, 1, 8, 4)
	w.Close()
	b, _ := os.ReadFile(path)
	fs := framesOf(b)
	last := nthFrame(fs, frameCommit, 4)
	// An incomplete final batch: a block with no commit frame.
	torn := append(bytes.Clone(b[:last.off+last.n]), b[nthFrame(fs, frameBlock, 1).off:nthFrame(fs, frameBlock, 2).off]...)
	blk := nthFrame(fs, frameBlock, 3)
	torn[blk.off+BlockHeaderSize+5] ^= 1
	s := salvage(t, torn)
	if s.res.TornAt != int64(last.off+last.n) || s.res.TornRecords == 0 || !contiguous(s.seqs, 1, uint64(len(g.all))) || len(s.macBad) != 1 {
		t.Fatalf("torn at %d (%d records), %d records read, bad MACs %v, damage %+v", s.res.TornAt, s.res.TornRecords, len(s.seqs), s.macBad, s.res.Damage)
	}
}

// TestSalvageGarbage: inputs that are not segments never panic and
// deliver nothing.
func TestSalvageGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("VELLUMSG"), bytes.Repeat([]byte{'B'}, 500), append([]byte(headerMagic), bytes.Repeat([]byte{'C', 0, 0, 0}, 200)...)} {
		res, err := Salvage("x", b, nil, func(Entry, bool) error { t.Fatal("delivered a record from garbage"); return nil })
		if err != nil || len(res.Damage) == 0 {
			t.Fatalf("%q: %v %+v", b, err, res)
		}
	}
}

// TestS2Prefix: the damage-tolerant S2 decoder gives the whole block when
// it is intact, and a true prefix of it when the block is cut short.
func TestS2Prefix(t *testing.T) {
	raw := bytes.Repeat([]byte("audit record 0123456789 abcdefghij "), 400)
	for i := range raw {
		if i%97 == 0 {
			raw[i] = byte(i)
		}
	}
	enc := compress(CodecS2, nil, raw, nil)
	if got := s2Prefix(enc, len(raw)); !bytes.Equal(got, raw) {
		t.Fatalf("intact block: %d bytes decoded, want %d", len(got), len(raw))
	}
	for _, cut := range []int{len(enc) / 4, len(enc) / 2, len(enc) - 3} {
		got := s2Prefix(enc[:cut], len(raw))
		if len(got) == 0 || len(got) >= len(raw) || !bytes.Equal(got, raw[:len(got)]) {
			t.Fatalf("cut at %d: %d bytes decoded, not a true prefix", cut, len(got))
		}
	}
}

// TestSalvageUndecodableBlockStopsAtGarbage flips, one at a time, every
// byte of a block's S2 payload that makes the block fail to decode. S2
// notices damage where it notices it, which can be records after where
// its output went wrong; Salvage must deliver only records that parse and
// carry their own seq, and count the rest as lost, never pass garbage on
// as records.
func TestSalvageUndecodableBlockStopsAtGarbage(t *testing.T) {
	b, _, fs := salvageFixture(t, nil)
	blk := nthFrame(fs, frameBlock, 1)
	payload := blk.off + BlockHeaderSize
	rawLen := int(binary.LittleEndian.Uint32(b[blk.off+32:]))
	tried := 0
	for p := payload; p < blk.off+blk.n; p++ {
		x := bytes.Clone(b)
		x[p] ^= 0x10
		if _, err := decompress(CodecS2, nil, x[payload:blk.off+blk.n], rawLen, nil); err == nil {
			continue
		}
		tried++
		_, err := Salvage("s", x, nil, func(e Entry, damaged bool) error {
			rs, _, err := vellum.DecodeSeqTime(e.Record)
			if err != nil || rs != e.Seq {
				t.Fatalf("flip at %d: delivered seq %d whose bytes decode to seq %d (%v)", p, e.Seq, rs, err)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("flip at %d: %v", p, err)
		}
	}
	if tried == 0 {
		t.Fatal("no flip broke the block")
	}
}

// TestTrailerCount: the count a sealed segment's trailer claims is the
// footer's; a file that does not end in a trailer gives none, whatever
// its length.
func TestTrailerCount(t *testing.T) {
	b, g, _ := salvageFixture(t, &Options{NoCompression: true, BlockSize: 1024})
	if n, ok := TrailerCount(b); !ok || n != uint64(len(g.all)) {
		t.Fatalf("sealed segment of %d records: TrailerCount = %d, %v", len(g.all), n, ok)
	}
	for _, cut := range []int{0, 8, HeaderSize, len(b) - 1} {
		if n, ok := TrailerCount(b[:cut]); ok {
			t.Fatalf("%d bytes of a segment: TrailerCount = %d, want none", cut, n)
		}
	}
}
