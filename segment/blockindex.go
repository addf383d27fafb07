package segment

import (
	"encoding/binary"
	"slices"
)

// SectionBlocks is the footer section type of the block index: where each
// span's block frames lie and how many records each holds, so that a
// reader of a few records reads only their blocks (FORMAT.md, "Block
// index").
const SectionBlocks = 5

// blockIndexVersion is the first byte of a block index section.
const blockIndexVersion = 1

// blockIndexBuilder encodes the block index as spans close: for the open
// span, its blocks' offsets (from the previous block frame's, or the
// span's) and record counts.
type blockIndexBuilder struct {
	body    []byte // closed spans' lists
	spans   uint32
	open    []byte // the open span's pairs
	openN   int
	lastOff int64
}

func (bb *blockIndexBuilder) block(spanOff, off int64, count uint32, opens bool) {
	if opens {
		bb.close()
		bb.lastOff = spanOff
	}
	bb.open = binary.AppendUvarint(bb.open, uint64(off-bb.lastOff))
	bb.open = binary.AppendUvarint(bb.open, uint64(count))
	bb.openN++
	bb.lastOff = off
}

func (bb *blockIndexBuilder) close() {
	if bb.openN == 0 {
		return
	}
	bb.body = binary.AppendUvarint(bb.body, uint64(bb.openN))
	bb.body = append(bb.body, bb.open...)
	bb.spans++
	bb.open, bb.openN = bb.open[:0], 0
}

// section returns the section's bytes with the open span closed. The
// builder must not be fed afterwards.
func (bb *blockIndexBuilder) section() []byte {
	bb.close()
	out := make([]byte, 8, 8+len(bb.body))
	out[0] = blockIndexVersion
	binary.LittleEndian.PutUint32(out[4:], bb.spans)
	return append(out, bb.body...)
}

// clone returns a copy that can be fed apart from bb.
func (bb blockIndexBuilder) clone() blockIndexBuilder {
	bb.body = slices.Clone(bb.body)
	bb.open = slices.Clone(bb.open)
	return bb
}

// blockIndex is a parsed, checked block index: for span i, its list
// starts at data[starts[i]].
type blockIndex struct {
	data   []byte
	starts []uint32
}

// parseBlockIndex checks a block index section against the footer's spans:
// one list per span, at least one block each, offsets that increase inside
// the span starting at its offset, and counts that add up to the span's.
func parseBlockIndex(path string, off int64, b []byte, spans []Span) (*blockIndex, error) {
	bad := func(format string, args ...any) (*blockIndex, error) {
		return nil, corrupt(path, off, 0, "block index: "+format, args...)
	}
	if len(b) < 8 {
		return bad("%d bytes, shorter than its header", len(b))
	}
	if b[0] != blockIndexVersion {
		return bad("version %d, this build reads %d", b[0], blockIndexVersion)
	}
	if b[1]|b[2]|b[3] != 0 {
		return bad("reserved bytes are not zero")
	}
	if n := binary.LittleEndian.Uint32(b[4:]); int64(n) != int64(len(spans)) {
		return bad("lists %d spans, the span index %d", n, len(spans))
	}
	bi := &blockIndex{data: slices.Clone(b[8:]), starts: make([]uint32, len(spans))}
	p := 0
	uv := func() (uint64, bool) {
		v, k := binary.Uvarint(bi.data[p:])
		if k <= 0 {
			return 0, false
		}
		p += k
		return v, true
	}
	for i, s := range spans {
		bi.starts[i] = uint32(p)
		n, ok := uv()
		if !ok || n == 0 || n > uint64(s.Count) {
			return bad("span %d: bad block count", i)
		}
		at, recs := s.Offset, uint64(0)
		for j := uint64(0); j < n; j++ {
			d, ok1 := uv()
			c, ok2 := uv()
			if !ok1 || !ok2 || c == 0 || (j == 0) != (d == 0) || (j > 0 && d <= BlockHeaderSize) || d >= uint64(s.Length) {
				return bad("span %d: bad entry for block %d", i, j)
			}
			at += int64(d)
			recs += c
			if at+BlockHeaderSize > s.Offset+s.Length || recs > uint64(s.Count) {
				return bad("span %d: block %d lies outside the span", i, j)
			}
		}
		if recs != uint64(s.Count) {
			return bad("span %d: blocks hold %d records, the span %d", i, recs, s.Count)
		}
	}
	if p != len(bi.data) {
		return bad("%d bytes after the last span", len(bi.data)-p)
	}
	return bi, nil
}

// blockRef is one block frame of a span: where it and what follows it up
// to the next block (commit frames) lie, and its records.
type blockRef struct {
	off, end int64
	firstSeq uint64
	count    uint32
}

// spanBlocks returns the blocks of span i (s) from a checked index.
func (bi *blockIndex) spanBlocks(i int, s Span, out []blockRef) []blockRef {
	p := int(bi.starts[i])
	uv := func() uint64 {
		v, k := binary.Uvarint(bi.data[p:])
		p += k
		return v
	}
	n := uv()
	at, seq := s.Offset, s.FirstSeq
	out = out[:0]
	for j := uint64(0); j < n; j++ {
		at += int64(uv())
		c := uint32(uv())
		if j > 0 {
			out[j-1].end = at
		}
		out = append(out, blockRef{off: at, firstSeq: seq, count: c})
		seq += uint64(c)
	}
	out[len(out)-1].end = s.Offset + s.Length
	return out
}

// readIndexed is ReadBlocks for a span the block index describes: it reads
// only the wanted blocks (adjacent ones in one read).
func (r *Reader) readIndexed(i int, s Span, seqs []uint64, sc *Scratch) ([]Entry, error) {
	sc.refs = r.blocks.spanBlocks(i, s, sc.refs)
	out := sc.entries[:0]
	want := seqs // the seqs not yet passed, for readWanted
	nb := 0
	refs := sc.refs
	for len(refs) > 0 && len(seqs) > 0 {
		// Skip blocks before the next wanted seq, then take the run of
		// blocks that hold wanted seqs.
		for len(refs) > 0 && refs[0].firstSeq+uint64(refs[0].count) <= seqs[0] {
			refs = refs[1:]
		}
		if len(refs) == 0 {
			break
		}
		run := 0
		for run < len(refs) && len(seqs) > 0 && seqs[0] < refs[run].firstSeq+uint64(refs[run].count) {
			last := refs[run].firstSeq + uint64(refs[run].count)
			for len(seqs) > 0 && seqs[0] < last {
				seqs = seqs[1:]
			}
			run++
		}
		start, end := refs[0].off, refs[run-1].end
		if end-start > int64(r.opts.MaxFooterSize) {
			return nil, corrupt(r.path, start, refs[0].firstSeq, "blocks of %d bytes exceed the read limit", end-start)
		}
		if int64(cap(sc.file)) < end-start {
			sc.file = make([]byte, end-start)
		}
		b := sc.file[:end-start]
		if err := r.readAt(b, start); err != nil {
			return nil, err
		}
		for _, ref := range refs[:run] {
			fb := b[ref.off-start : ref.end-start]
			for len(want) > 0 && want[0] < ref.firstSeq {
				want = want[1:]
			}
			var rawLen uint32
			if len(fb) >= BlockHeaderSize {
				var h blockHeader
				h.parse(fb)
				rawLen = h.rawLen
			}
			var err error
			if out, _, err = r.readWanted(fb, ref.off, ref.firstSeq, ref.count, rawLen, want, sc, nb, out); err != nil {
				return nil, err
			}
			nb++
		}
		refs = refs[run:]
	}
	sc.entries = out
	return out, nil
}

// spanIndex returns the index of span s in the footer, or -1.
func (r *Reader) spanIndex(s Span) int {
	if r.footer == nil {
		return -1
	}
	sp := r.footer.Spans
	i, ok := slices.BinarySearchFunc(sp, s.Offset, func(a Span, off int64) int {
		switch {
		case a.Offset < off:
			return -1
		case a.Offset > off:
			return 1
		}
		return 0
	})
	if !ok || sp[i] != s {
		return -1
	}
	return i
}
