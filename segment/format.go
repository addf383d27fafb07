package segment

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
)

// Wire constants of format version 1 (FORMAT.md). Do not change: a new
// layout is a new version.
const (
	Version = 1
	// VersionDict is the version of segments with codec CodecS2Dict
	// (dictionary blocks and a block index; FORMAT.md).
	VersionDict = 2

	HeaderSize      = 128
	BlockHeaderSize = 76
	CommitSize      = 24
	TrailerSize     = 128
	footerPrefix    = 8
	spanEntrySize   = 48
	sectionHeadSize = 8

	frameBlock  = 0x42 // 'B'
	frameCommit = 0x43 // 'C'
	frameFooter = 0x46 // 'F'

	headerMagic  = "VELLUMSG"
	trailerMagic = "VELLUMFT"

	// SectionSpans and SectionSummaries are footer section types.
	SectionSpans     = 1
	SectionSummaries = 2

	flagMerkleRoot = 1 << 0
)

// Offsets in the header of the fields that tie a segment to its store, its
// place in the directory and the chain (FORMAT.md, "Header"). Wire
// constants: do not change.
const (
	HeaderNumberOffset   = 16
	HeaderStoreIDOffset  = 24
	HeaderFirstSeqOffset = 40
	HeaderKeyIDOffset    = 48
	HeaderPrevMACOffset  = 56
)

// Codec names a block compression.
type Codec uint8

// Codecs. Wire values: do not change.
const (
	CodecNone Codec = 0
	CodecS2   Codec = 1
	CodecZstd Codec = 2
	// CodecS2Dict is a segment codec (header byte 12), not a block's own:
	// the segment's first DictSize raw bytes are written in S2 blocks
	// (block codec 1) and become the dictionary of the S2 blocks after
	// them (block codec 3), which are small so that a reader of one record
	// decompresses a few KiB (FORMAT.md, "Dictionary blocks").
	CodecS2Dict Codec = 3
)

// allows reports whether a block frame with codec b may appear in a
// segment whose header names c: its own codec, or in an S2-dictionary
// segment plain S2 too (the blocks that make up the dictionary).
func (c Codec) allows(b Codec) bool {
	return b == c || (c == CodecS2Dict && b == CodecS2)
}

func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecS2:
		return "s2"
	case CodecZstd:
		return "zstd"
	case CodecS2Dict:
		return "s2dict"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

func crcUpdate(c uint32, b []byte) uint32 { return crc32.Update(c, castagnoli, b) }

// Header is the fixed first 128 bytes of a segment.
type Header struct {
	Codec    Codec
	Number   uint64
	StoreID  [16]byte
	FirstSeq uint64
	KeyID    chain.KeyID
	PrevMAC  vellum.MAC
	Created  time.Time
	// SpanTarget is the raw byte count at which the writer closes a span;
	// recorded so a scan rebuilds exactly the spans the footer lists.
	SpanTarget uint32
	// MaxRecordSize is the writer's record size limit, so that readers
	// with smaller defaults (verify, inspect) accept what it wrote.
	MaxRecordSize uint32
}

// version is the format version of a segment with h's codec: VersionDict
// for S2-dictionary segments (so that a build that predates them reports
// a version it cannot read, not corruption), Version for the others.
func (h *Header) version() uint16 {
	if h.Codec == CodecS2Dict {
		return VersionDict
	}
	return Version
}

func (h *Header) marshal() []byte {
	b := make([]byte, HeaderSize)
	copy(b, headerMagic)
	le := binary.LittleEndian
	le.PutUint16(b[8:], h.version())
	le.PutUint16(b[10:], HeaderSize)
	b[12] = byte(h.Codec)
	le.PutUint64(b[HeaderNumberOffset:], h.Number)
	copy(b[HeaderStoreIDOffset:HeaderFirstSeqOffset], h.StoreID[:])
	le.PutUint64(b[HeaderFirstSeqOffset:], h.FirstSeq)
	copy(b[HeaderKeyIDOffset:HeaderPrevMACOffset], h.KeyID[:])
	copy(b[HeaderPrevMACOffset:HeaderPrevMACOffset+32], h.PrevMAC[:])
	le.PutUint64(b[88:], uint64(h.Created.UnixNano()))
	le.PutUint32(b[96:], h.SpanTarget)
	le.PutUint32(b[100:], h.MaxRecordSize)
	le.PutUint32(b[124:], crc(b[:124]))
	return b
}

func parseHeader(path string, b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderSize {
		return h, corrupt(path, 0, 0, "header is %d bytes, want %d", len(b), HeaderSize)
	}
	if string(b[:8]) != headerMagic {
		return h, corrupt(path, 0, 0, "bad magic %q, not a Vellum segment", b[:8])
	}
	le := binary.LittleEndian
	if got, want := le.Uint32(b[124:]), crc(b[:124]); got != want {
		return h, corrupt(path, 124, 0, "header CRC %08x, computed %08x", got, want)
	}
	v := le.Uint16(b[8:])
	if v != Version && v != VersionDict {
		return h, fmt.Errorf("%w: %s has version %d, this build reads %d and %d", ErrVersion, path, v, Version, VersionDict)
	}
	if n := le.Uint16(b[10:]); n != HeaderSize {
		return h, corrupt(path, 10, 0, "header size %d, want %d", n, HeaderSize)
	}
	h.Codec = Codec(b[12])
	if h.Codec > CodecS2Dict {
		return h, corrupt(path, 12, 0, "unknown codec %d", b[12])
	}
	if v != h.version() {
		return h, corrupt(path, 8, 0, "version %d with codec %s (codec %s is version %d)", v, h.Codec, h.Codec, h.version())
	}
	h.Number = le.Uint64(b[HeaderNumberOffset:])
	copy(h.StoreID[:], b[HeaderStoreIDOffset:HeaderFirstSeqOffset])
	h.FirstSeq = le.Uint64(b[HeaderFirstSeqOffset:])
	if h.FirstSeq == 0 {
		return h, corrupt(path, HeaderFirstSeqOffset, 0, "first seq is 0 (seqs start at 1)")
	}
	copy(h.KeyID[:], b[HeaderKeyIDOffset:HeaderPrevMACOffset])
	copy(h.PrevMAC[:], b[HeaderPrevMACOffset:HeaderPrevMACOffset+32])
	h.Created = time.Unix(0, int64(le.Uint64(b[88:]))).UTC()
	h.SpanTarget = le.Uint32(b[96:])
	h.MaxRecordSize = le.Uint32(b[100:])
	if h.SpanTarget == 0 {
		return h, corrupt(path, 96, 0, "span target is 0")
	}
	return h, nil
}

// blockHeader is the 76-byte header of a block frame.
type blockHeader struct {
	codec     Codec
	count     uint32
	firstSeq  uint64
	firstTime int64
	lastTime  int64
	rawLen    uint32
	storedLen uint32
	prevMAC   vellum.MAC
	crc       uint32
}

func (bh *blockHeader) put(b []byte) {
	le := binary.LittleEndian
	b[0] = frameBlock
	b[1] = byte(bh.codec)
	b[2], b[3] = 0, 0
	le.PutUint32(b[4:], bh.count)
	le.PutUint64(b[8:], bh.firstSeq)
	le.PutUint64(b[16:], uint64(bh.firstTime))
	le.PutUint64(b[24:], uint64(bh.lastTime))
	le.PutUint32(b[32:], bh.rawLen)
	le.PutUint32(b[36:], bh.storedLen)
	copy(b[40:72], bh.prevMAC[:])
	le.PutUint32(b[72:], bh.crc)
}

func (bh *blockHeader) parse(b []byte) {
	le := binary.LittleEndian
	bh.codec = Codec(b[1])
	bh.count = le.Uint32(b[4:])
	bh.firstSeq = le.Uint64(b[8:])
	bh.firstTime = int64(le.Uint64(b[16:]))
	bh.lastTime = int64(le.Uint64(b[24:]))
	bh.rawLen = le.Uint32(b[32:])
	bh.storedLen = le.Uint32(b[36:])
	copy(bh.prevMAC[:], b[40:72])
	bh.crc = le.Uint32(b[72:])
}

// Span is a run of consecutive block frames: the unit of the footer's index
// and of random reads.
type Span struct {
	Offset    int64  // file offset of the first block frame
	Length    int64  // bytes of block and commit frames in the span
	FirstSeq  uint64 // seq of the first record
	Count     uint32 // records in the span
	FirstTime int64  // receipt time of the first record, Unix ns
	LastTime  int64  // receipt time of the last record, Unix ns
}

// LastSeq returns the seq of the span's last record.
func (s Span) LastSeq() uint64 { return s.FirstSeq + uint64(s.Count) - 1 }

// Footer is what a sealed segment's footer and trailer say.
type Footer struct {
	Offset     int64 // file offset of the footer frame
	Count      uint64
	FirstSeq   uint64
	LastSeq    uint64
	FirstTime  int64
	LastTime   int64
	LastMAC    vellum.MAC
	MerkleRoot [32]byte
	HasRoot    bool
	Spans      []Span
	// Sections holds footer sections other than the span index, by type.
	Sections map[uint16][]byte
	// SectionOffsets holds the file offset of each section's bytes, by
	// type, so that a reader can read part of a section later without
	// keeping it in memory.
	SectionOffsets map[uint16]int64
}

func (f *Footer) marshal() []byte {
	le := binary.LittleEndian
	var body []byte
	// Span index first, then other sections in type order.
	sp := make([]byte, 4+spanEntrySize*len(f.Spans))
	le.PutUint32(sp, uint32(len(f.Spans)))
	for i, s := range f.Spans {
		e := sp[4+i*spanEntrySize:]
		le.PutUint64(e[0:], uint64(s.Offset))
		le.PutUint64(e[8:], uint64(s.Length))
		le.PutUint64(e[16:], s.FirstSeq)
		le.PutUint32(e[24:], s.Count)
		le.PutUint64(e[32:], uint64(s.FirstTime))
		le.PutUint64(e[40:], uint64(s.LastTime))
	}
	body = appendSection(body, SectionSpans, sp)
	f.SectionOffsets = map[uint16]int64{}
	for typ := uint16(2); typ < 256; typ++ {
		if sec, ok := f.Sections[typ]; ok {
			f.SectionOffsets[typ] = f.Offset + footerPrefix + int64(len(body)) + sectionHeadSize
			body = appendSection(body, typ, sec)
		}
	}
	b := make([]byte, footerPrefix, footerPrefix+len(body)+TrailerSize)
	b[0] = frameFooter
	le.PutUint32(b[4:], uint32(len(body)))
	b = append(b, body...)
	t := make([]byte, TrailerSize)
	le.PutUint64(t[0:], uint64(f.Offset))
	le.PutUint64(t[8:], f.Count)
	le.PutUint64(t[16:], f.FirstSeq)
	le.PutUint64(t[24:], f.LastSeq)
	le.PutUint64(t[32:], uint64(f.FirstTime))
	le.PutUint64(t[40:], uint64(f.LastTime))
	copy(t[48:80], f.LastMAC[:])
	copy(t[80:112], f.MerkleRoot[:])
	if f.HasRoot {
		le.PutUint32(t[112:], flagMerkleRoot)
	}
	b = append(b, t...)
	le.PutUint32(b[len(b)-TrailerSize+116:], crc(b[:len(b)-TrailerSize+116]))
	copy(b[len(b)-8:], trailerMagic)
	return b
}

func appendSection(b []byte, typ uint16, data []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, typ)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

// parseTrailer reads the fixed trailer; ok is false when the file does not
// end in one (an unsealed segment).
func parseTrailer(t []byte) (off int64, ok bool) {
	if len(t) != TrailerSize || string(t[120:]) != trailerMagic {
		return 0, false
	}
	return int64(binary.LittleEndian.Uint64(t)), true
}

// parseFooter decodes footer frame + trailer bytes b, which start at file
// offset off.
func parseFooter(path string, off int64, b []byte) (*Footer, error) {
	le := binary.LittleEndian
	if len(b) < footerPrefix+TrailerSize {
		return nil, corrupt(path, off, 0, "footer is %d bytes, shorter than its fixed parts", len(b))
	}
	t := b[len(b)-TrailerSize:]
	if got, want := le.Uint32(t[116:]), crc(b[:len(b)-TrailerSize+116]); got != want {
		return nil, corrupt(path, off, 0, "footer CRC %08x, computed %08x", got, want)
	}
	if b[0] != frameFooter {
		return nil, corrupt(path, off, 0, "footer frame type %#x, want %#x", b[0], frameFooter)
	}
	bodyLen := int(le.Uint32(b[4:]))
	if bodyLen != len(b)-footerPrefix-TrailerSize {
		return nil, corrupt(path, off+4, 0, "footer body length %d, but %d bytes lie before the trailer", bodyLen, len(b)-footerPrefix-TrailerSize)
	}
	f := &Footer{
		Offset:    int64(le.Uint64(t[0:])),
		Count:     le.Uint64(t[8:]),
		FirstSeq:  le.Uint64(t[16:]),
		LastSeq:   le.Uint64(t[24:]),
		FirstTime: int64(le.Uint64(t[32:])),
		LastTime:  int64(le.Uint64(t[40:])),
		HasRoot:   le.Uint32(t[112:])&flagMerkleRoot != 0,
	}
	copy(f.LastMAC[:], t[48:80])
	copy(f.MerkleRoot[:], t[80:112])
	if f.Offset != off {
		return nil, corrupt(path, off, 0, "trailer names footer offset %d, found at %d", f.Offset, off)
	}
	body := b[footerPrefix : footerPrefix+bodyLen]
	sawSpans := false
	for p := 0; p < len(body); {
		if len(body)-p < sectionHeadSize {
			return nil, corrupt(path, off+int64(footerPrefix+p), 0, "truncated footer section header")
		}
		typ := le.Uint16(body[p:])
		n := int(le.Uint32(body[p+4:]))
		p += sectionHeadSize
		if n > len(body)-p {
			return nil, corrupt(path, off+int64(footerPrefix+p), 0, "footer section %d length %d exceeds the footer", typ, n)
		}
		data := body[p : p+n]
		p += n
		if typ != SectionSpans {
			if f.Sections == nil {
				f.Sections = map[uint16][]byte{}
				f.SectionOffsets = map[uint16]int64{}
			}
			f.Sections[typ] = data
			f.SectionOffsets[typ] = off + int64(footerPrefix+p-n)
			continue
		}
		sawSpans = true
		if len(data) < 4 {
			return nil, corrupt(path, off, 0, "span index too short")
		}
		cnt := int(le.Uint32(data))
		if cnt != (len(data)-4)/spanEntrySize || (len(data)-4)%spanEntrySize != 0 {
			return nil, corrupt(path, off, 0, "span index holds %d bytes for %d entries", len(data)-4, cnt)
		}
		f.Spans = make([]Span, cnt)
		var total uint64
		for i := range f.Spans {
			e := data[4+i*spanEntrySize:]
			s := Span{
				Offset:    int64(le.Uint64(e[0:])),
				Length:    int64(le.Uint64(e[8:])),
				FirstSeq:  le.Uint64(e[16:]),
				Count:     le.Uint32(e[24:]),
				FirstTime: int64(le.Uint64(e[32:])),
				LastTime:  int64(le.Uint64(e[40:])),
			}
			if s.Offset < HeaderSize || s.Length <= 0 || s.Offset+s.Length > off || s.Count == 0 {
				return nil, corrupt(path, off, 0, "span %d (offset %d, length %d, %d records) lies outside the data", i, s.Offset, s.Length, s.Count)
			}
			if i > 0 {
				p := f.Spans[i-1]
				if s.Offset != p.Offset+p.Length || s.FirstSeq != p.LastSeq()+1 {
					return nil, corrupt(path, off, 0, "span %d does not follow span %d", i, i-1)
				}
			}
			total += uint64(s.Count)
			f.Spans[i] = s
		}
		if total != f.Count {
			return nil, corrupt(path, off, 0, "spans hold %d records, trailer says %d", total, f.Count)
		}
		if cnt > 0 && (f.Spans[0].FirstSeq != f.FirstSeq || f.Spans[cnt-1].LastSeq() != f.LastSeq) {
			return nil, corrupt(path, off, 0, "spans cover seq %d..%d, trailer says %d..%d", f.Spans[0].FirstSeq, f.Spans[cnt-1].LastSeq(), f.FirstSeq, f.LastSeq)
		}
	}
	if !sawSpans {
		return nil, corrupt(path, off, 0, "footer has no span index")
	}
	return f, nil
}

func putCommit(b []byte, covered uint32, lastSeq uint64, coveredCRC uint32) {
	le := binary.LittleEndian
	b[0] = frameCommit
	b[1], b[2], b[3] = 0, 0, 0
	le.PutUint32(b[4:], covered)
	le.PutUint64(b[8:], lastSeq)
	le.PutUint32(b[16:], crcUpdate(coveredCRC, b[:16]))
	le.PutUint32(b[20:], 0)
}
