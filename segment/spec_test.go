package segment_test

// A reader of segment files written from segment/FORMAT.md alone. It
// imports nothing of this module's readers: CRCs, varints, the S2 block
// decoder, the record decoding, the HMAC chain, the span rule, the span
// summaries and the Merkle trees are all re-implemented here from the
// spec's text, with the standard library (and the s2 package only to
// cross-check this file's own S2 decoder). If this file needs a fact the
// spec does not state, the spec is incomplete: fix FORMAT.md.

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math/bits"
	"os"
	"testing"

	"github.com/klauspost/compress/s2"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/segment"
)

// --- Conventions ---------------------------------------------------------

func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }
func le32(b []byte) uint32 { return uint32(le16(b)) | uint32(le16(b[2:]))<<16 }
func le64(b []byte) uint64 { return uint64(le32(b)) | uint64(le32(b[4:]))<<32 }

var castagnoliTable = crc32.MakeTable(crc32.Castagnoli)

func crc32c(parts ...[]byte) uint32 {
	var c uint32
	for _, p := range parts {
		c = crc32.Update(c, castagnoliTable, p)
	}
	return c
}

var errSpec = errors.New("spec reader")

func specErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errSpec, fmt.Sprintf(format, a...))
}

// uvarint decodes an unsigned LEB128 varint; minimal requires the minimal
// form. It returns the value and the bytes used.
func uvarint(b []byte, minimal bool) (uint64, int, error) {
	var v uint64
	for i := 0; i < 10; i++ {
		if i >= len(b) {
			return 0, 0, specErr("varint runs past the data")
		}
		c := b[i]
		if i == 9 && c > 1 {
			return 0, 0, specErr("varint overflows 64 bits")
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if minimal && i > 0 && c == 0 {
				return 0, 0, specErr("non-minimal varint")
			}
			return v, i + 1, nil
		}
	}
	return 0, 0, specErr("varint longer than 10 bytes")
}

// --- S2 block decoding (FORMAT.md, "Block compression") ------------------

// s2Stats counts the element kinds a decode met, so the test can show the
// golden file exercises every rule.
type s2Stats struct{ literals, copy1, repeats, copy2, copy4 int }

func specS2Decode(src []byte, st *s2Stats) ([]byte, error) { return specS2DecodeDict(src, nil, st) }

// specS2DecodeDict decodes with dictionary d (codec 3, FORMAT.md "Block
// compression"): as if d had been output just before the block, with the
// offset in force at the start len(d).
func specS2DecodeDict(src, d []byte, st *s2Stats) ([]byte, error) {
	n, k, err := uvarint(src, false)
	if err != nil || k > 5 || n > 0xFFFFFFFF {
		return nil, specErr("bad S2 length prefix")
	}
	src = src[k:]
	out := append(make([]byte, 0, len(d)+int(min(n, 1<<26))), d...)
	n += uint64(len(d))
	offset := len(d)
	// need returns the next m input bytes after the tag.
	need := func(m int) ([]byte, error) {
		if len(src) < 1+m {
			return nil, specErr("S2 element runs past the input")
		}
		return src[1 : 1+m], nil
	}
	for len(src) > 0 {
		tag := src[0]
		var length, size int
		switch tag & 3 {
		case 0: // literal
			m := int(tag >> 2)
			extra := 0
			if m >= 60 {
				extra = m - 59
				x, err := need(extra)
				if err != nil {
					return nil, err
				}
				m = 0
				for i := extra - 1; i >= 0; i-- {
					m = m<<8 | int(x[i])
				}
			}
			length = m + 1
			if len(src) < 1+extra+length || uint64(len(out)+length) > n {
				return nil, specErr("S2 literal runs past the input or the output")
			}
			out = append(out, src[1+extra:1+extra+length]...)
			src = src[1+extra+length:]
			st.literals++
			continue
		case 1:
			x, err := need(1)
			if err != nil {
				return nil, err
			}
			o := int(tag>>5)<<8 | int(x[0])
			code := int(tag>>2) & 7
			size = 2
			if o != 0 {
				offset, length = o, code+4
				st.copy1++
				break
			}
			// A repeat: keep the offset in force.
			st.repeats++
			switch {
			case code <= 4:
				length = code + 4
			case code == 5:
				y, err := need(2)
				if err != nil {
					return nil, err
				}
				length, size = 8+int(y[1]), 3
			case code == 6:
				y, err := need(3)
				if err != nil {
					return nil, err
				}
				length, size = 260+(int(y[1])|int(y[2])<<8), 4
			default:
				y, err := need(4)
				if err != nil {
					return nil, err
				}
				length, size = 65540+(int(y[1])|int(y[2])<<8|int(y[3])<<16), 5
			}
		case 2:
			x, err := need(2)
			if err != nil {
				return nil, err
			}
			offset, length, size = int(le16(x)), int(tag>>2)+1, 3
			st.copy2++
		case 3:
			x, err := need(4)
			if err != nil {
				return nil, err
			}
			offset, length, size = int(le32(x)), int(tag>>2)+1, 5
			st.copy4++
		}
		if offset <= 0 || offset > len(out) || uint64(len(out)+length) > n {
			return nil, specErr("S2 copy with offset %d, length %d at output %d", offset, length, len(out))
		}
		for i := 0; i < length; i++ {
			out = append(out, out[len(out)-offset])
		}
		src = src[size:]
	}
	if uint64(len(out)) != n {
		return nil, specErr("S2 block decodes to %d bytes, declares %d", len(out)-len(d), n-uint64(len(d)))
	}
	return out[len(d):], nil
}

// --- Records (FORMAT.md, "Record encoding") ------------------------------

type specRecord struct {
	Version                                                     byte
	Seq                                                         uint64
	Time, EventTime                                             int64
	Flags                                                       byte
	EventID, TenantID, UserID, Service, AuthMode, Action, Agent string
	SessionID, TraceID, RequestID, ToolName, ToolCallID         string
	Arguments                                                   []byte
	ModelName, Provider, FinishReason                           string
	Status, Reason, RuleID, Approver, Mode                      string
	DurationNS, InputTokens, OutputTokens                       uint64
	Attributes                                                  [][2]string
	Redactions                                                  []specRedaction
}

type specRedaction struct {
	Rule, Field string
	Count       uint64
}

func decodeRecord(b []byte) (*specRecord, error) {
	if len(b) < 26 || b[0] != 1 {
		return nil, specErr("record shorter than its fixed part or not version 1")
	}
	r := &specRecord{Version: b[0], Seq: le64(b[1:]), Time: int64(le64(b[9:])), EventTime: int64(le64(b[17:])), Flags: b[25]}
	p := b[26:]
	var err error
	num := func() uint64 {
		if err != nil {
			return 0
		}
		v, k, e := uvarint(p, true)
		if e != nil {
			err = e
			return 0
		}
		p = p[k:]
		return v
	}
	raw := func() []byte {
		n := num()
		if err != nil {
			return nil
		}
		if n > uint64(len(p)) {
			err = specErr("string runs past the record")
			return nil
		}
		s := p[:n]
		p = p[n:]
		return s
	}
	str := func() string { return string(raw()) }
	for _, f := range []*string{&r.EventID, &r.TenantID, &r.UserID, &r.Service, &r.AuthMode, &r.Action, &r.Agent,
		&r.SessionID, &r.TraceID, &r.RequestID, &r.ToolName, &r.ToolCallID} {
		*f = str()
	}
	r.Arguments = bytes.Clone(raw())
	for _, f := range []*string{&r.ModelName, &r.Provider, &r.FinishReason, &r.Status, &r.Reason, &r.RuleID, &r.Approver, &r.Mode} {
		*f = str()
	}
	r.DurationNS, r.InputTokens, r.OutputTokens = num(), num(), num()
	for n := num(); n > 0 && err == nil; n-- {
		k, v := str(), str()
		if len(r.Attributes) > 0 && k <= r.Attributes[len(r.Attributes)-1][0] {
			err = specErr("attribute keys not ascending")
		}
		r.Attributes = append(r.Attributes, [2]string{k, v})
	}
	for n := num(); n > 0 && err == nil; n-- {
		r.Redactions = append(r.Redactions, specRedaction{str(), str(), num()})
	}
	if err == nil && len(p) != 0 {
		err = specErr("%d bytes after the record", len(p))
	}
	return r, err
}

// --- The segment (FORMAT.md, "A segment file") ---------------------------

type specHeader struct {
	Version, HeaderSize uint16
	Codec               byte
	Number              uint64
	StoreID             [16]byte
	FirstSeq            uint64
	KeyID               [8]byte
	PrevMAC             [32]byte
	Created             int64
	SpanTarget          uint32
	MaxRecordSize       uint32
}

type specEntry struct {
	Encoding []byte
	MAC      [32]byte
	Rec      *specRecord
}

type specBlock struct {
	Offset              int
	Codec               byte
	Count               uint32
	FirstSeq            uint64
	FirstTime, LastTime int64
	RawLen, StoredLen   uint32
	PrevMAC             [32]byte
	Entries             []specEntry
}

type specSpan struct {
	Offset, Length, FirstSeq uint64
	Count                    uint32
	FirstTime, LastTime      int64
}

type specSegment struct {
	Header   specHeader
	Blocks   []specBlock
	Commits  int
	Sections map[uint16][]byte
	Spans    []specSpan
	// Trailer.
	FooterOffset             uint64
	Count, FirstSeq, LastSeq uint64
	FirstTime, LastTime      int64
	LastMAC, MerkleRoot      [32]byte
	Flags                    uint32
	S2                       s2Stats
}

func readSpecSegment(b []byte) (*specSegment, error) {
	if len(b) < 128 || string(b[:8]) != "VELLUMSG" {
		return nil, specErr("not a segment")
	}
	if le32(b[124:]) != crc32c(b[:124]) {
		return nil, specErr("header CRC")
	}
	s := &specSegment{Header: specHeader{
		Version: le16(b[8:]), HeaderSize: le16(b[10:]), Codec: b[12], Number: le64(b[16:]),
		FirstSeq: le64(b[40:]), Created: int64(le64(b[88:])), SpanTarget: le32(b[96:]), MaxRecordSize: le32(b[100:]),
	}}
	copy(s.Header.StoreID[:], b[24:40])
	copy(s.Header.KeyID[:], b[48:56])
	copy(s.Header.PrevMAC[:], b[56:88])
	if s.Header.Version != 1 || s.Header.HeaderSize != 128 || !allZero(b[13:16]) || !allZero(b[104:124]) || s.Header.SpanTarget == 0 {
		return nil, specErr("header fields")
	}
	// The trailer names the footer.
	if len(b) < 128+8+128 || string(b[len(b)-8:]) != "VELLUMFT" {
		return nil, specErr("not sealed")
	}
	t := b[len(b)-128:]
	s.FooterOffset = le64(t)
	if s.FooterOffset < 128 || s.FooterOffset > uint64(len(b)-128-8) {
		return nil, specErr("footer offset")
	}
	footer := b[s.FooterOffset:]
	if le32(t[116:]) != crc32c(footer[:len(footer)-128+116]) {
		return nil, specErr("footer CRC")
	}
	s.Count, s.FirstSeq, s.LastSeq = le64(t[8:]), le64(t[16:]), le64(t[24:])
	s.FirstTime, s.LastTime = int64(le64(t[32:])), int64(le64(t[40:]))
	copy(s.LastMAC[:], t[48:80])
	copy(s.MerkleRoot[:], t[80:112])
	s.Flags = le32(t[112:])

	// Frames from offset 128 to the footer.
	batchStart := 128
	seq := s.Header.FirstSeq
	for off := 128; off < int(s.FooterOffset); {
		switch b[off] {
		case 'B':
			blk, n, err := s.readBlock(b[off:s.FooterOffset], off, seq)
			if err != nil {
				return nil, fmt.Errorf("block at %d: %w", off, err)
			}
			s.Blocks = append(s.Blocks, blk)
			seq += uint64(blk.Count)
			off += n
		case 'C':
			f := b[off : off+24]
			covered := int(le32(f[4:]))
			if !allZero(f[1:4]) || !allZero(f[20:24]) || covered != off-batchStart ||
				le32(f[16:]) != crc32c(b[batchStart:off], f[:16]) || le64(f[8:]) != seq-1 {
				return nil, specErr("commit frame at %d", off)
			}
			s.Commits++
			off += 24
			batchStart = off
		default:
			return nil, specErr("frame type %#x at %d", b[off], off)
		}
	}
	if batchStart != int(s.FooterOffset) {
		return nil, specErr("the footer does not follow a commit frame")
	}

	// Footer frame: sections.
	if footer[0] != 'F' || !allZero(footer[1:4]) || int(le32(footer[4:])) != len(footer)-8-128 {
		return nil, specErr("footer frame")
	}
	s.Sections = map[uint16][]byte{}
	for p := footer[8 : len(footer)-128]; len(p) > 0; {
		typ, n := le16(p), int(le32(p[4:]))
		if le16(p[2:]) != 0 || n > len(p)-8 {
			return nil, specErr("footer section")
		}
		s.Sections[typ] = p[8 : 8+n]
		p = p[8+n:]
	}
	sp := s.Sections[1]
	if len(sp) < 4 || len(sp) != 4+48*int(le32(sp)) {
		return nil, specErr("span index")
	}
	for i := 0; i < int(le32(sp)); i++ {
		e := sp[4+48*i:]
		if le32(e[28:]) != 0 {
			return nil, specErr("span reserved")
		}
		s.Spans = append(s.Spans, specSpan{le64(e), le64(e[8:]), le64(e[16:]), le32(e[24:]), int64(le64(e[32:])), int64(le64(e[40:]))})
	}
	return s, nil
}

func (s *specSegment) readBlock(b []byte, off int, seq uint64) (specBlock, int, error) {
	if len(b) < 76 {
		return specBlock{}, 0, specErr("truncated block header")
	}
	blk := specBlock{Offset: off, Codec: b[1], Count: le32(b[4:]), FirstSeq: le64(b[8:]), FirstTime: int64(le64(b[16:])),
		LastTime: int64(le64(b[24:])), RawLen: le32(b[32:]), StoredLen: le32(b[36:])}
	copy(blk.PrevMAC[:], b[40:72])
	n := 76 + int(blk.StoredLen)
	if !allZero(b[2:4]) || n > len(b) || blk.Count == 0 || blk.Codec != s.Header.Codec || blk.FirstSeq != seq {
		return blk, 0, specErr("block header")
	}
	if le32(b[72:]) != crc32c(b[:72], b[76:n]) {
		return blk, 0, specErr("block CRC")
	}
	stored := b[76:n]
	var raw []byte
	switch blk.Codec {
	case 0:
		raw = stored
	case 1:
		var err error
		if raw, err = specS2Decode(stored, &s.S2); err != nil {
			return blk, 0, err
		}
		// Cross-check this decoder with the library the spec names.
		if lib, err := s2.Decode(nil, stored); err != nil || !bytes.Equal(lib, raw) {
			return blk, 0, specErr("this S2 decoder and klauspost/compress/s2 disagree (%v)", err)
		}
	default:
		return blk, 0, specErr("codec %d", blk.Codec)
	}
	if len(raw) != int(blk.RawLen) {
		return blk, 0, specErr("raw length")
	}
	t := blk.FirstTime
	for i := uint32(0); i < blk.Count; i++ {
		ln, k, err := uvarint(raw, false)
		if err != nil || ln == 0 || ln > uint64(len(raw)-k-32) {
			return blk, 0, specErr("record %d framing", i)
		}
		e := specEntry{Encoding: raw[k : k+int(ln)]}
		copy(e.MAC[:], raw[k+int(ln):])
		raw = raw[k+int(ln)+32:]
		if e.Rec, err = decodeRecord(e.Encoding); err != nil {
			return blk, 0, err
		}
		if e.Rec.Seq != seq+uint64(i) || e.Rec.Time < t || (i == 0 && e.Rec.Time != blk.FirstTime) {
			return blk, 0, specErr("record %d seq or time", i)
		}
		t = e.Rec.Time
		blk.Entries = append(blk.Entries, e)
	}
	if len(raw) != 0 || t != blk.LastTime {
		return blk, 0, specErr("block payload end")
	}
	return blk, n, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// --- Chain (FORMAT.md, "Chain" and "Key files") --------------------------

func hmacSHA256(key []byte, parts ...[]byte) [32]byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return [32]byte(m.Sum(nil))
}

func loadSpecKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return hex.DecodeString(string(bytes.TrimSpace(b)))
}

// --- Merkle trees (FORMAT.md, "Merkle trees") ----------------------------

func leafHash(enc []byte, mac [32]byte) [32]byte {
	return sha256.Sum256(append(append([]byte{0}, enc...), mac[:]...))
}

func nodeHash(l, r [32]byte) [32]byte {
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

// mth is RFC 6962's Merkle tree hash, written as the spec gives it.
func mth(leaves [][32]byte) [32]byte {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	return nodeHash(mth(leaves[:k]), mth(leaves[k:]))
}

// --- Span summaries (FORMAT.md, "Span summaries") ------------------------

func fnv1a(id byte, v string) uint64 {
	h := uint64(0xcbf29ce484222325)
	for _, c := range append([]byte{id}, v...) {
		h ^= uint64(c)
		h *= 0x100000001b3
	}
	return h
}

func summaryKeys(r *specRecord) []uint64 {
	var ks []uint64
	add := func(id byte, v string) {
		if v != "" {
			ks = append(ks, fnv1a(id, v))
		}
	}
	add(1, r.TenantID)
	add(2, r.UserID)
	add(3, r.Action)
	for i := 0; i < len(r.Action)-1; i++ {
		if r.Action[i] == '.' {
			add(4, r.Action[:i+1])
		}
	}
	add(5, r.ToolName)
	add(6, r.ModelName)
	return ks
}

// specSummary builds one span's summary as section 2 stores it.
func specSummary(recs []*specRecord) []byte {
	var outcomes byte
	var words [64]uint64
	unknown := false
	for _, r := range recs {
		for i, st := range []string{"success", "failure", "denied", "approved", "pending", "blocked"} {
			if r.Status == st {
				outcomes |= 1 << i
			}
		}
		ks := summaryKeys(r)
		if len(ks) > 12 {
			unknown = true
		}
		for _, h := range ks {
			h1, h2 := uint32(h), uint32(h>>32)|1
			for i := uint32(0); i < 4; i++ {
				p := (h1 + i*h2) % 4096
				words[p/64] |= 1 << (p % 64)
			}
		}
	}
	out := []byte{outcomes, 4, 0, 0}
	if unknown {
		return []byte{0, 4, 0, 0, 0, 0, 0, 0}
	}
	w := words[:]
	for len(w) > 1 {
		half := len(w) / 2
		f := make([]uint64, half)
		ones := 0
		for j := range f {
			f[j] = w[j] | w[j+half]
			ones += bits.OnesCount64(f[j])
		}
		if ones > 16*half {
			break
		}
		w = f
	}
	out = append(out, byte(len(w)), byte(len(w)>>8), byte(len(w)>>16), byte(len(w)>>24))
	for _, x := range w {
		for i := 0; i < 8; i++ {
			out = append(out, byte(x>>(8*i)))
		}
	}
	return out
}

// --- The test ------------------------------------------------------------

// TestSpecReaderDecodesGolden decodes the golden segment with the reader
// above and checks every CRC, MAC, the Merkle root, the span index, the
// span summaries and the Merkle section from the spec's rules, then
// compares the decoded records with the ones the golden generator wrote.
func TestSpecReaderDecodesGolden(t *testing.T) {
	b, err := os.ReadFile(goldenSegment)
	if err != nil {
		t.Fatal(err)
	}
	checkSpecSegment(t, b, true)
	// The same content without compression, from the writer of this build.
	checkSpecSegment(t, buildGolden(t, segment.CodecNone), false)

	// The reader is not a rubber stamp: one flipped bit anywhere in a
	// frame, the footer or the trailer fails it.
	for _, off := range []int{20, 200, 5000, len(b) / 2, len(b) - 200, len(b) - 20} {
		bad := bytes.Clone(b)
		bad[off] ^= 0x10
		if _, err := readSpecSegment(bad); err == nil {
			t.Errorf("a bit flipped at offset %d went unnoticed", off)
		}
	}
}

func checkSpecSegment(t *testing.T, b []byte, compressed bool) {
	t.Helper()
	s, err := readSpecSegment(b)
	if err != nil {
		t.Fatal(err)
	}
	h := s.Header
	if wantCodec := map[bool]byte{true: 1, false: 0}[compressed]; h.Codec != wantCodec || h.Number != 1 || h.FirstSeq != 1 || h.StoreID != goldenStore {
		t.Fatalf("header: %+v", h)
	}

	// The key file gives the key; the key id and the genesis value follow.
	key, err := loadSpecKey(goldenKey)
	if err != nil {
		t.Fatal(err)
	}
	kid := hmacSHA256(key, []byte("vellum key id v1"))
	if !bytes.Equal(kid[:8], h.KeyID[:]) {
		t.Fatalf("key id %x, the header says %x", kid[:8], h.KeyID)
	}
	genesis := sha256.Sum256(append(append([]byte("vellum chain genesis v1\x00"), h.StoreID[:]...), h.KeyID[:]...))
	if genesis != h.PrevMAC {
		t.Fatalf("segment 1's prev MAC is not the genesis value")
	}

	// Every record: its MAC chains from the one before; blocks carry the
	// MAC before their first record.
	prev := h.PrevMAC
	var recs []*specRecord
	var leaves [][32]byte
	for _, blk := range s.Blocks {
		if blk.PrevMAC != prev {
			t.Fatalf("block at %d: prev MAC does not link", blk.Offset)
		}
		for _, e := range blk.Entries {
			if want := hmacSHA256(key, prev[:], e.Encoding); want != e.MAC {
				t.Fatalf("seq %d: MAC does not verify", e.Rec.Seq)
			}
			prev = e.MAC
			recs = append(recs, e.Rec)
			leaves = append(leaves, leafHash(e.Encoding, e.MAC))
		}
	}
	n := uint64(len(recs))
	if n != goldenRecordCount || s.Count != n || s.FirstSeq != 1 || s.LastSeq != n || s.LastMAC != prev ||
		s.FirstTime != recs[0].Time || s.LastTime != recs[n-1].Time || s.Flags != 1 {
		t.Fatalf("trailer: %d records (%d..%d), flags %d; decoded %d", s.Count, s.FirstSeq, s.LastSeq, s.Flags, n)
	}
	if root := mth(leaves); root != s.MerkleRoot {
		t.Fatalf("Merkle root %x, trailer %x", root, s.MerkleRoot)
	}

	// The span index, rebuilt by the span rule.
	var spans []specSpan
	var raw uint64
	open := false
	for _, blk := range s.Blocks {
		if open && raw >= uint64(h.SpanTarget) {
			spans[len(spans)-1].Length = uint64(blk.Offset) - spans[len(spans)-1].Offset
			open = false
		}
		if !open {
			spans = append(spans, specSpan{Offset: uint64(blk.Offset), FirstSeq: blk.FirstSeq, FirstTime: blk.FirstTime})
			open, raw = true, 0
		}
		sp := &spans[len(spans)-1]
		sp.Count += blk.Count
		sp.LastTime = blk.LastTime
		raw += uint64(blk.RawLen)
	}
	spans[len(spans)-1].Length = s.FooterOffset - spans[len(spans)-1].Offset
	if fmt.Sprint(spans) != fmt.Sprint(s.Spans) {
		t.Fatalf("span index differs from the span rule:\n rule   %v\n footer %v", spans, s.Spans)
	}

	// Span summaries (section 2).
	sum := []byte{byte(len(spans)), byte(len(spans) >> 8), byte(len(spans) >> 16), byte(len(spans) >> 24)}
	sizes := map[int]int{}
	for _, sp := range spans {
		one := specSummary(recs[sp.FirstSeq-1 : sp.FirstSeq-1+uint64(sp.Count)])
		sizes[int(le32(one[4:]))]++
		sum = append(sum, one...)
	}
	if !bytes.Equal(sum, s.Sections[2]) {
		t.Fatalf("span summaries differ from the spec's rules")
	}

	// Merkle section (section 3).
	sec := s.Sections[3]
	if le64(sec) != n || int(sec[8]) != bits.OnesCount64(n) {
		t.Fatalf("Merkle section: size %d, %d range hashes", le64(sec), sec[8])
	}
	p := sec[9:]
	start := uint64(0)
	for i := 63; i >= 0; i-- {
		if n&(1<<i) == 0 {
			continue
		}
		if want := mth(leaves[start : start+1<<i]); !bytes.Equal(p[:32], want[:]) {
			t.Fatalf("compact range hash over [%d, %d) differs", start, start+1<<i)
		}
		start += 1 << i
		p = p[32:]
	}
	nlevels := int(p[0])
	p = p[1:]
	stored := 0
	for level := uint(8); level < 64; level += 8 {
		first := (h.FirstSeq - 1) >> level
		var count uint64
		for k := first; (k+1)<<level <= s.LastSeq; k++ {
			count++
		}
		if count == 0 {
			continue
		}
		if nlevels == 0 || uint(p[0]) != level || le64(p[1:]) != first || uint64(le32(p[9:])) != count {
			t.Fatalf("Merkle section level %d: want nodes %d+%d", level, first, count)
		}
		p = p[13:]
		for k := first; k < first+count; k++ {
			if want := mth(leaves[k<<level : (k+1)<<level]); !bytes.Equal(p[:32], want[:]) {
				t.Fatalf("stored node (%d, %d) differs", level, k)
			}
			p = p[32:]
			stored++
		}
		nlevels--
	}
	if nlevels != 0 || len(p) != 0 {
		t.Fatalf("Merkle section: %d levels and %d bytes left", nlevels, len(p))
	}

	// The records are the ones written, field for field, and tool
	// arguments byte for byte.
	want := goldenRecords()
	for i, r := range recs {
		if err := sameRecord(r, &want[i]); err != nil {
			t.Fatalf("seq %d: %v", i+1, err)
		}
	}

	// The golden file exercises what the spec describes.
	bigBlocks := 0
	for i := 1; i < len(s.Blocks); i++ {
		if s.Blocks[i].RawLen > h.SpanTarget {
			bigBlocks++
		}
	}
	switch {
	case len(spans) < 5 || s.Commits < 10 || len(s.Blocks) <= s.Commits:
		t.Fatalf("too simple: %d spans, %d commits, %d blocks", len(spans), s.Commits, len(s.Blocks))
	case sizes[0] == 0 || len(sizes) < 3:
		t.Fatalf("summaries of too few sizes (words: count) %v", sizes)
	case stored == 0:
		t.Fatal("no stored Merkle node")
	case bigBlocks == 0:
		t.Fatal("no block larger than the span target")
	case compressed && (s.S2.repeats == 0 || s.S2.copy1 == 0 || s.S2.copy2 == 0 || s.S2.literals == 0):
		t.Fatalf("S2 elements met: %+v", s.S2)
	}
	t.Logf("%d records, %d blocks, %d commits, %d spans, summary sizes %v, %d stored nodes, S2 %+v", n, len(s.Blocks), s.Commits, len(spans), sizes, stored, s.S2)
}

func sameRecord(r *specRecord, w *vellum.Record) error {
	var flags byte
	if w.Tool.IsError {
		flags = 1
	}
	et := int64(0)
	if !w.EventTime.IsZero() {
		et = w.EventTime.UnixNano()
	}
	got := []any{r.Seq, r.Time, r.EventTime, r.Flags, r.EventID, r.TenantID, r.UserID, r.Service, r.AuthMode, r.Action, r.Agent,
		r.SessionID, r.TraceID, r.RequestID, r.ToolName, r.ToolCallID, string(r.Arguments), r.ModelName, r.Provider, r.FinishReason,
		r.Status, r.Reason, r.RuleID, r.Approver, r.Mode, r.DurationNS, r.InputTokens, r.OutputTokens}
	exp := []any{w.Seq, w.Time.UnixNano(), et, flags, w.EventID, w.TenantID, w.UserID, w.Service, w.AuthMode, w.Action, w.Agent,
		w.SessionID, w.TraceID, w.RequestID, w.Tool.Name, w.Tool.CallID, string(w.Tool.Arguments), w.Model.Name, w.Model.Provider, w.Model.FinishReason,
		w.Outcome.Status, w.Outcome.Reason, w.Outcome.RuleID, w.Outcome.Approver, w.Outcome.Mode, uint64(w.Tool.DurationNS), w.Model.InputTokens, w.Model.OutputTokens}
	for i := range got {
		if got[i] != exp[i] {
			return fmt.Errorf("field %d: %v, want %v", i, got[i], exp[i])
		}
	}
	if len(r.Attributes) != len(w.Attributes) {
		return fmt.Errorf("%d attributes, want %d", len(r.Attributes), len(w.Attributes))
	}
	for _, kv := range r.Attributes {
		if v, ok := w.Attributes[kv[0]]; !ok || v != kv[1] {
			return fmt.Errorf("attribute %q", kv[0])
		}
	}
	if len(r.Redactions) != len(w.Redactions) {
		return fmt.Errorf("%d redactions, want %d", len(r.Redactions), len(w.Redactions))
	}
	for i, x := range r.Redactions {
		if x.Rule != w.Redactions[i].Rule || x.Field != w.Redactions[i].Field || x.Count != uint64(w.Redactions[i].Count) {
			return fmt.Errorf("redaction %d", i)
		}
	}
	return nil
}

// TestSpecDictDecode: the dictionary rule FORMAT.md states for codec 3
// (decode as if the 65,536 dictionary bytes had been output before the
// block, the offset in force starting at 65,536), written as the spec
// decoder, agrees with the library's dictionary coder on record-like
// blocks, and the blocks do use the dictionary (copies reach into it).
func TestSpecDictDecode(t *testing.T) {
	var raw []byte
	for i := 0; len(raw) < 65536+200<<10; i++ {
		raw = fmt.Appendf(raw, `{"seq":%d,"tenant":"tenant-%02d","action":"tool.call","user":"user-%04d","args":{"query":"weather in %s for day %d"}}`,
			i, i*7%20, i*7919%2000, []string{"Paris", "Oslo", "Lima", "Pune"}[i%4], i*31%365)
		raw = binary.LittleEndian.AppendUint64(raw, uint64(i)*0x9e3779b97f4a7c15) // incompressible, like a MAC
	}
	d := s2.MakeDictManual(raw[:65536], 0)
	if d == nil {
		t.Fatal("no dictionary")
	}
	used := 0
	for p := 65536; p+8<<10 <= len(raw); p += 8 << 10 {
		blk := raw[p : p+8<<10]
		enc := d.Encode(nil, blk)
		var st s2Stats
		got, err := specS2DecodeDict(enc, raw[:65536], &st)
		if err != nil || !bytes.Equal(got, blk) {
			t.Fatalf("block at %d: spec decoder %v", p, err)
		}
		if alone, err := specS2DecodeDict(enc, nil, &st); err != nil || !bytes.Equal(alone, blk) {
			used++
		}
	}
	if used == 0 {
		t.Fatal("no block refers to the dictionary")
	}
}
