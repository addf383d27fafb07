package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/s2"
	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/vfs"
)

// Entry is one record as stored: its seq and receipt time, its canonical
// encoding, its chain MAC and the MAC before it.
type Entry struct {
	Seq     uint64
	Time    int64
	Record  []byte // canonical encoding; aliases the reader's block buffer
	MAC     vellum.MAC
	PrevMAC vellum.MAC
	Offset  int64 // file offset of the block frame that holds it
	// Span is the first seq of the span holding the record; set by Scan
	// (spans are the index's unit, see FORMAT.md), zero elsewhere.
	Span uint64
}

// Reader reads a segment file: its header, its footer when sealed, spans at
// random, or everything in order. Safe for concurrent use.
type Reader struct {
	f      vfs.File
	path   string
	hdr    Header
	footer *Footer
	size   int64
	opts   Options

	// blocks is the footer's block index (section 5), when it has one.
	blocks *blockIndex

	// The dictionary of an S2-dictionary segment, read on first use.
	dictMu  sync.Mutex
	dictVal atomic.Pointer[s2.Dict]
}

// dict returns the dictionary of an S2-dictionary segment: the first
// DictSize bytes of its records' raw payload, read from the plain S2
// blocks at the start of the file (FORMAT.md, "Dictionary blocks"). The
// blocks are checked as any read checks them; their records' MACs are
// checked by whoever verifies the segment's first span.
func (r *Reader) dict() (*s2.Dict, error) {
	if d := r.dictVal.Load(); d != nil {
		return d, nil
	}
	r.dictMu.Lock()
	defer r.dictMu.Unlock()
	if d := r.dictVal.Load(); d != nil {
		return d, nil
	}
	var prefix []byte
	hb := make([]byte, BlockHeaderSize)
	for off := int64(HeaderSize); len(prefix) < DictSize; {
		if err := r.readAt(hb[:1], off); err != nil {
			return nil, err
		}
		if hb[0] == frameCommit {
			off += CommitSize
			continue
		}
		if hb[0] != frameBlock {
			return nil, corrupt(r.path, off, 0, "frame type %#x among the dictionary's blocks", hb[0])
		}
		if err := r.readAt(hb, off); err != nil {
			return nil, err
		}
		var h blockHeader
		h.parse(hb)
		if h.codec != CodecS2 {
			return nil, corrupt(r.path, off, h.firstSeq, "block codec %s among the dictionary's first %d raw bytes", h.codec, DictSize)
		}
		n := BlockHeaderSize + int64(h.storedLen)
		if n > int64(r.opts.maxRaw())*2 || (r.footer != nil && off+n > r.footer.Offset) {
			return nil, corrupt(r.path, off, h.firstSeq, "block payload of %d bytes runs past the end of the data", h.storedLen)
		}
		b := make([]byte, n)
		if err := r.readAt(b, off); err != nil {
			return nil, err
		}
		_, payload, _, err := decodeBlock(r.path, b, off, &r.opts, nil, nil)
		if err != nil {
			return nil, err
		}
		prefix = append(prefix, payload...)
		off += n
	}
	d := newDict(prefix)
	r.dictVal.Store(d)
	return d, nil
}

// Open opens a segment for reading. For a sealed segment it loads and checks
// the footer (without reading the records); for an active one Footer
// returns nil and the caller supplies spans or scans. It finds the footer
// from the file's length: when a writer seals the file meanwhile (cutting
// its preallocated zero tail), a read past the new end is retried with the
// new length, a few times; a reader of a file being written uses OpenData.
func Open(fs vfs.FS, path string, opts *Options) (*Reader, error) {
	o := opts.withDefaults()
	f, err := fs.Open(path)
	if err != nil {
		return nil, fmt.Errorf("segment: open %s: %w", path, err)
	}
	for attempt := 1; ; attempt++ {
		r := &Reader{f: f, path: path, opts: o}
		err := r.load()
		if err == nil {
			return r, nil
		}
		if attempt == maxLengthRetries || !errors.Is(err, io.ErrUnexpectedEOF) || !lengthChanged(f, r.size) {
			f.Close()
			return nil, err
		}
	}
}

// maxLengthRetries bounds how often Open and Scan start again when the
// file's length changed while they read it (a seal cut its zero tail).
const maxLengthRetries = 4

// lengthChanged reports whether f is no longer size bytes long.
func lengthChanged(f vfs.File, size int64) bool {
	n, err := f.Size()
	return err == nil && n != size
}

// OpenData opens a segment to read records at spans the caller already
// knows (from the footer of a sealed segment it holds, or from the writer
// of an active one). It checks the header only: it neither takes the
// file's length nor looks for a footer, so it is safe on a file that is
// being written, or sealed while it opens: Seal cuts a preallocated zero
// tail and then writes the footer, and a length taken before that is past
// the end after it. Footer returns nil and Size 0; a read past the data
// fails as a short read.
func OpenData(fs vfs.FS, path string, opts *Options) (*Reader, error) {
	o := opts.withDefaults()
	f, err := fs.Open(path)
	if err != nil {
		return nil, fmt.Errorf("segment: open %s: %w", path, err)
	}
	r := &Reader{f: f, path: path, opts: o}
	if err := r.loadHeader(); err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

func (r *Reader) loadHeader() error {
	hb := make([]byte, HeaderSize)
	if err := r.readAt(hb, 0); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return corrupt(r.path, 0, 0, "file is shorter than the header")
		}
		return err
	}
	var err error
	if r.hdr, err = parseHeader(r.path, hb); err != nil {
		return err
	}
	r.opts.adopt(&r.hdr)
	return nil
}

// load reads the header and, when the file is sealed, the footer. It
// takes the file's length first, so the file must not change meanwhile
// (see OpenData).
func (r *Reader) load() error {
	size, err := r.f.Size()
	if err != nil {
		return fmt.Errorf("segment: stat %s: %w", r.path, err)
	}
	r.size = size
	if size < HeaderSize {
		return corrupt(r.path, 0, 0, "file is %d bytes, shorter than the header", size)
	}
	if err := r.loadHeader(); err != nil {
		return err
	}
	if size < HeaderSize+footerPrefix+TrailerSize {
		return nil
	}
	tb := make([]byte, TrailerSize)
	if err := r.readAt(tb, size-TrailerSize); err != nil {
		return err
	}
	off, ok := parseTrailer(tb)
	if !ok {
		return nil // not sealed
	}
	if off < HeaderSize || off > size-TrailerSize-footerPrefix {
		return corrupt(r.path, size-TrailerSize, 0, "trailer names footer offset %d outside the file", off)
	}
	if size-off > int64(r.opts.MaxFooterSize) {
		return corrupt(r.path, off, 0, "footer of %d bytes exceeds the %d-byte limit", size-off, r.opts.MaxFooterSize)
	}
	fb := make([]byte, size-off)
	if err := r.readAt(fb, off); err != nil {
		return err
	}
	ft, err := parseFooter(r.path, off, fb)
	if err != nil {
		return err
	}
	if ft.Count > 0 && ft.FirstSeq != r.hdr.FirstSeq {
		return corrupt(r.path, off, 0, "footer first seq %d, header says %d", ft.FirstSeq, r.hdr.FirstSeq)
	}
	if ft.Count == 0 && ft.LastMAC != r.hdr.PrevMAC {
		return corrupt(r.path, off, 0, "empty segment's last MAC differs from its header's prev MAC")
	}
	if sec, ok := ft.Sections[SectionBlocks]; ok {
		if r.blocks, err = parseBlockIndex(r.path, ft.SectionOffsets[SectionBlocks], sec, ft.Spans); err != nil {
			return err
		}
	}
	r.footer = ft
	return nil
}

func (r *Reader) readAt(b []byte, off int64) error {
	n, err := r.f.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("segment: read %s at offset %d: %w", r.path, off, err)
}

// ReadAt reads len(b) bytes at file offset off; a short read is an error.
func (r *Reader) ReadAt(b []byte, off int64) error { return r.readAt(b, off) }

// DropSections forgets the footer's extra sections (Footer().Sections),
// which share one buffer with the whole footer: a caller that keeps what it
// needs of them lets the rest (large postings) be freed while the reader
// stays open. Not safe to call concurrently with Footer.
func (r *Reader) DropSections() {
	if r.footer != nil && r.footer.Sections != nil {
		f := *r.footer
		f.Sections = nil
		r.footer = &f
	}
}

// Path returns the file name.
func (r *Reader) Path() string { return r.path }

// Header returns the segment header.
func (r *Reader) Header() Header { return r.hdr }

// Footer returns the footer of a sealed segment, or nil.
func (r *Reader) Footer() *Footer { return r.footer }

// Size returns the file size when opened (0 from OpenData).
func (r *Reader) Size() int64 { return r.size }

// Close closes the file.
func (r *Reader) Close() error { return r.f.Close() }

// ReadSpan reads and decodes every record of span s, checking block CRCs,
// record framing and the MAC links between the span's blocks. The entries'
// Record slices share one buffer owned by the caller.
func (r *Reader) ReadSpan(s Span) ([]Entry, error) {
	return r.ReadSpanScratch(s, &Scratch{})
}

// Scratch holds the buffers of span reads so that a reader of many spans
// (a query) does not allocate per span. Entries returned with a Scratch
// alias it and are valid until its next use. A Scratch is not safe for
// concurrent use.
type Scratch struct {
	file    []byte
	blocks  [][]byte
	entries []Entry
	refs    []blockRef
}

// ReadSpanScratch is ReadSpan using sc's buffers.
func (r *Reader) ReadSpanScratch(s Span, sc *Scratch) ([]Entry, error) {
	// An active segment grows after it was opened, so only a sealed one's
	// size bounds its spans; a short read catches the rest.
	if s.Offset < HeaderSize || s.Length <= 0 || (r.footer != nil && s.Offset+s.Length > r.footer.Offset) {
		return nil, corrupt(r.path, s.Offset, s.FirstSeq, "span of %d bytes at offset %d lies outside the data", s.Length, s.Offset)
	}
	if s.Length > int64(r.opts.MaxFooterSize) {
		return nil, corrupt(r.path, s.Offset, s.FirstSeq, "span of %d bytes exceeds the read limit", s.Length)
	}
	if int64(cap(sc.file)) < s.Length {
		sc.file = make([]byte, s.Length)
	}
	b := sc.file[:s.Length]
	if err := r.readAt(b, s.Offset); err != nil {
		return nil, err
	}
	out := sc.entries[:0]
	next := s.FirstSeq
	nb := 0
	for p := 0; p < len(b); {
		switch b[p] {
		case frameCommit:
			p += CommitSize
			continue
		case frameBlock:
		default:
			return nil, corrupt(r.path, s.Offset+int64(p), next, "frame type %#x inside a span", b[p])
		}
		if nb == len(sc.blocks) {
			sc.blocks = append(sc.blocks, nil)
		}
		h, payload, n, err := decodeBlock(r.path, b[p:], s.Offset+int64(p), &r.opts, sc.blocks[nb], r.dict)
		if err != nil {
			return nil, err
		}
		if h.codec != CodecNone {
			sc.blocks[nb] = payload[:0]
		}
		nb++
		if h.firstSeq != next {
			return nil, corrupt(r.path, s.Offset+int64(p), next, "block starts at seq %d, seq %d expected", h.firstSeq, next)
		}
		if len(out) > 0 && out[len(out)-1].MAC != h.prevMAC {
			return nil, corrupt(r.path, s.Offset+int64(p), next, "block's prev MAC does not match the previous record's MAC")
		}
		if out, err = parseEntries(r.path, s.Offset+int64(p), &h, payload, &r.opts, out); err != nil {
			return nil, err
		}
		next += uint64(h.count)
		p += n
	}
	sc.entries = out
	if uint32(len(out)) != s.Count {
		return nil, corrupt(r.path, s.Offset, s.FirstSeq, "span holds %d records, index says %d", len(out), s.Count)
	}
	return out, nil
}

// decodeBlock parses and checks the block frame at the start of b (file
// offset off) and returns its header, decompressed payload and frame length.
//
// A dictionary block (block codec CodecS2Dict) gets its dictionary from
// dict, called only for one.
func decodeBlock(path string, b []byte, off int64, o *Options, buf []byte, dict func() (*s2.Dict, error)) (blockHeader, []byte, int, error) {
	return decodeBlockUpTo(path, b, off, o, buf, dict, 0)
}

// decodeBlockUpTo is decodeBlock, but of an S2 block (codec 1, or 3 with
// the segment's dictionary) it may
// decompress only a prefix of the payload that holds at least its first
// want bytes (want 0: all of it), to the first element boundary after
// them; the caller tells a prefix by its length (below the header's raw
// length) and parses it with parsePrefix. The CRC is checked over the
// whole stored payload first. To decode a prefix it rewrites, in b, the
// payload's length header, and puts it back before returning: b must be
// the caller's own buffer.
func decodeBlockUpTo(path string, b []byte, off int64, o *Options, buf []byte, dict func() (*s2.Dict, error), want int) (blockHeader, []byte, int, error) {
	var h blockHeader
	if len(b) < BlockHeaderSize {
		return h, nil, 0, corrupt(path, off, 0, "truncated block header (%d bytes)", len(b))
	}
	if b[0] != frameBlock {
		return h, nil, 0, corrupt(path, off, 0, "frame type %#x, want block", b[0])
	}
	h.parse(b)
	if b[2] != 0 || b[3] != 0 {
		return h, nil, 0, corrupt(path, off, h.firstSeq, "reserved block header bytes are not zero")
	}
	if int64(h.storedLen) > int64(len(b)-BlockHeaderSize) {
		return h, nil, 0, corrupt(path, off, h.firstSeq, "block payload of %d bytes runs past the end of the data", h.storedLen)
	}
	n := BlockHeaderSize + int(h.storedLen)
	if got := crcUpdate(crc(b[:72]), b[BlockHeaderSize:n]); got != h.crc {
		return h, nil, 0, corrupt(path, off, h.firstSeq, "block CRC %08x, computed %08x", h.crc, got)
	}
	if h.count == 0 {
		return h, nil, 0, corrupt(path, off, h.firstSeq, "block holds no records")
	}
	if int(h.rawLen) > o.maxRaw() {
		return h, nil, 0, corrupt(path, off, h.firstSeq, "block raw length %d exceeds the %d-byte limit", h.rawLen, o.maxRaw())
	}
	if uint64(h.count) > uint64(h.rawLen)/(MinEncodedRecord+vellum.MACSize+1) {
		return h, nil, 0, corrupt(path, off, h.firstSeq, "block claims %d records in %d raw bytes", h.count, h.rawLen)
	}
	if !o.codec.allows(h.codec) {
		return h, nil, 0, corrupt(path, off, h.firstSeq, "block codec %s differs from the segment's %s", h.codec, o.codec)
	}
	var d *s2.Dict
	if h.codec == CodecS2Dict {
		var err error
		if d, err = dict(); err != nil {
			return h, nil, 0, err
		}
	}
	if (h.codec == CodecS2 || h.codec == CodecS2Dict && d != nil) && want > 0 && want < int(h.rawLen)*3/4 {
		if payload, ok := s2DecodePrefix(buf, b[BlockHeaderSize:n], int(h.rawLen), want, d); ok {
			return h, payload, n, nil
		}
	}
	payload, err := decompress(h.codec, buf, b[BlockHeaderSize:n], int(h.rawLen), d)
	if err != nil {
		return h, nil, 0, corrupt(path, off, h.firstSeq, "block payload: %v", err)
	}
	return h, payload, n, nil
}

// MinEncodedRecord is the size of the smallest canonical record encoding.
const MinEncodedRecord = 26 + 12 + 1 + 8 + 3 + 2

// parseEntries splits a block payload into entries, checking the framing
// against the block header, and appends them to out.
func parseEntries(path string, off int64, h *blockHeader, p []byte, o *Options, out []Entry) ([]Entry, error) {
	return parseRecords(path, off, h, p, o, out, false)
}

// parsePrefix is parseEntries of a prefix of a block's payload (see
// decodeBlockUpTo): it appends the entries of the records the prefix holds
// whole, with every check parseEntries makes of them, and stops at the
// first record the prefix cuts.
func parsePrefix(path string, off int64, h *blockHeader, p []byte, o *Options, out []Entry) ([]Entry, error) {
	return parseRecords(path, off, h, p, o, out, true)
}

func parseRecords(path string, off int64, h *blockHeader, p []byte, o *Options, out []Entry, prefix bool) ([]Entry, error) {
	prev := h.prevMAC
	seq := h.firstSeq
	t := h.firstTime
	for i := uint32(0); i < h.count; i++ {
		if prefix && !wholeRecord(p, o) {
			return out, nil
		}
		n, k := binary.Uvarint(p)
		if k <= 0 {
			return out, corrupt(path, off, seq, "bad record length varint in block")
		}
		if n == 0 || n > uint64(o.MaxRecordSize) {
			return out, corrupt(path, off, seq, "record length %d outside 1..%d", n, o.MaxRecordSize)
		}
		if uint64(len(p)-k) < n+vellum.MACSize {
			return out, corrupt(path, off, seq, "record of %d bytes runs past the block payload", n)
		}
		rec := p[k : k+int(n) : k+int(n)]
		var mac vellum.MAC
		copy(mac[:], p[k+int(n):])
		p = p[k+int(n)+vellum.MACSize:]
		rs, rt, err := vellum.DecodeSeqTime(rec)
		if err != nil {
			return out, corrupt(path, off, seq, "record: %v", err)
		}
		if rs != seq {
			return out, corrupt(path, off, seq, "record carries seq %d, seq %d expected", rs, seq)
		}
		if rt < t {
			return out, corrupt(path, off, seq, "record time goes backwards")
		}
		if i == 0 && rt != h.firstTime {
			return out, corrupt(path, off, seq, "record time differs from the block's first time")
		}
		t = rt
		out = append(out, Entry{Seq: seq, Time: rt, Record: rec, MAC: mac, PrevMAC: prev, Offset: off})
		prev = mac
		seq++
	}
	if len(p) != 0 && !prefix {
		return out, corrupt(path, off, seq, "%d bytes after the block's last record", len(p))
	}
	if t != h.lastTime {
		return out, corrupt(path, off, seq-1, "last record time differs from the block's last time")
	}
	return out, nil
}

// wholeRecord reports whether p starts with a whole record (its length,
// bytes and MAC) or with something that is not one (which the parser
// then reports), rather than with a record a prefix cut short.
func wholeRecord(p []byte, o *Options) bool {
	n, k := binary.Uvarint(p)
	switch {
	case k < 0 || n == 0 || n > uint64(o.MaxRecordSize):
		return true // not a record: corrupt, reported by the parser
	case k == 0:
		return false // the varint runs past the prefix (or p is empty)
	}
	return uint64(len(p)-k) >= n+vellum.MACSize
}

// BlockInfo is what a block frame's header says of its records.
type BlockInfo struct {
	FirstSeq            uint64
	Count               uint32
	FirstTime, LastTime int64 // receipt times of its first and last records
}

// ReadBlockInfo reads span s and returns what each of its blocks holds,
// from their headers, each checked against its CRC (which covers the
// header and the stored payload) without decompressing anything: a
// counter whose postings are exact counts the records of a block that lies
// inside its time range without reading them, and reads only the blocks a
// range boundary cuts.
func (r *Reader) ReadBlockInfo(s Span, sc *Scratch) ([]BlockInfo, error) {
	if s.Offset < HeaderSize || s.Length <= 0 || (r.footer != nil && s.Offset+s.Length > r.footer.Offset) {
		return nil, corrupt(r.path, s.Offset, s.FirstSeq, "span of %d bytes at offset %d lies outside the data", s.Length, s.Offset)
	}
	if s.Length > int64(r.opts.MaxFooterSize) {
		return nil, corrupt(r.path, s.Offset, s.FirstSeq, "span of %d bytes exceeds the read limit", s.Length)
	}
	if int64(cap(sc.file)) < s.Length {
		sc.file = make([]byte, s.Length)
	}
	b := sc.file[:s.Length]
	if err := r.readAt(b, s.Offset); err != nil {
		return nil, err
	}
	var out []BlockInfo
	next := s.FirstSeq
	for p := 0; p < len(b); {
		switch b[p] {
		case frameCommit:
			p += CommitSize
			continue
		case frameBlock:
		default:
			return nil, corrupt(r.path, s.Offset+int64(p), next, "frame type %#x inside a span", b[p])
		}
		if len(b)-p < BlockHeaderSize {
			return nil, corrupt(r.path, s.Offset+int64(p), next, "truncated block header")
		}
		var h blockHeader
		h.parse(b[p:])
		n := BlockHeaderSize + int(h.storedLen)
		switch {
		case int64(h.storedLen) > int64(len(b)-p-BlockHeaderSize):
			return nil, corrupt(r.path, s.Offset+int64(p), next, "block payload of %d bytes runs past the end of the data", h.storedLen)
		case crcUpdate(crc(b[p:p+72]), b[p+BlockHeaderSize:p+n]) != h.crc:
			return nil, corrupt(r.path, s.Offset+int64(p), next, "block CRC %08x does not match its bytes", h.crc)
		case h.firstSeq != next || h.count == 0 || h.lastTime < h.firstTime:
			return nil, corrupt(r.path, s.Offset+int64(p), next, "block header: seq %d (%d expected), %d records, times %d..%d", h.firstSeq, next, h.count, h.firstTime, h.lastTime)
		}
		out = append(out, BlockInfo{FirstSeq: h.firstSeq, Count: h.count, FirstTime: h.firstTime, LastTime: h.lastTime})
		next += uint64(h.count)
		p += n
	}
	if next != s.FirstSeq+uint64(s.Count) {
		return nil, corrupt(r.path, s.Offset, s.FirstSeq, "span holds %d records, index says %d", next-s.FirstSeq, s.Count)
	}
	return out, nil
}

// ReadSpanFrom reads span s like ReadSpanScratch for a reader that wants
// its records in order from receipt time from on, and at most want of
// them (want ≤ 0: all of them): it skips the blocks that end before from,
// and stops once it has decoded want records at or after from, of an S2
// block decompressing only as far as they reach. more reports whether
// records after the last entry returned were left unread (a caller that
// needs more calls again from the last entry's time plus one: receipt
// times increase with seq). The entries of the first block read may
// include records before from. Links between blocks are checked only
// between blocks read in a row.
func (r *Reader) ReadSpanFrom(s Span, from int64, want int, sc *Scratch) (entries []Entry, more bool, err error) {
	if s.Offset < HeaderSize || s.Length <= 0 || (r.footer != nil && s.Offset+s.Length > r.footer.Offset) {
		return nil, false, corrupt(r.path, s.Offset, s.FirstSeq, "span of %d bytes at offset %d lies outside the data", s.Length, s.Offset)
	}
	if s.Length > int64(r.opts.MaxFooterSize) {
		return nil, false, corrupt(r.path, s.Offset, s.FirstSeq, "span of %d bytes exceeds the read limit", s.Length)
	}
	if int64(cap(sc.file)) < s.Length {
		sc.file = make([]byte, s.Length)
	}
	b := sc.file[:s.Length]
	if err := r.readAt(b, s.Offset); err != nil {
		return nil, false, err
	}
	out := sc.entries[:0]
	next := s.FirstSeq
	nb, got := 0, 0
	linked := false // the previous block was read whole, right before this one
	for p := 0; p < len(b); {
		switch b[p] {
		case frameCommit:
			p += CommitSize
			continue
		case frameBlock:
		default:
			return nil, false, corrupt(r.path, s.Offset+int64(p), next, "frame type %#x inside a span", b[p])
		}
		if len(b)-p < BlockHeaderSize {
			return nil, false, corrupt(r.path, s.Offset+int64(p), next, "truncated block header")
		}
		if want > 0 && got >= want {
			sc.entries = out
			return out, true, nil
		}
		var h blockHeader
		h.parse(b[p:])
		if h.firstSeq != next {
			return nil, false, corrupt(r.path, s.Offset+int64(p), next, "block starts at seq %d, seq %d expected", h.firstSeq, next)
		}
		if h.lastTime < from {
			if int64(h.storedLen) > int64(len(b)-p-BlockHeaderSize) {
				return nil, false, corrupt(r.path, s.Offset+int64(p), next, "block payload of %d bytes runs past the end of the data", h.storedLen)
			}
			p += BlockHeaderSize + int(h.storedLen)
			next += uint64(h.count)
			linked = false
			continue
		}
		if nb == len(sc.blocks) {
			sc.blocks = append(sc.blocks, nil)
		}
		// How far into the block the records wanted reach: those before
		// from (by time, assumed even across the block) and want − got
		// more, with the margin readWanted takes.
		wantBytes := 0
		if want > 0 && h.count > 0 && h.lastTime > h.firstTime {
			before := uint64(0)
			if from > h.firstTime {
				before = uint64(float64(from-h.firstTime) / float64(h.lastTime-h.firstTime) * float64(h.count))
			}
			avg := uint64(h.rawLen / h.count)
			wantBytes = int(min(uint64(h.rawLen), (before+uint64(want-got)+2)*avg+uint64(h.rawLen/16)))
		}
		h, payload, n, err := decodeBlockUpTo(r.path, b[p:], s.Offset+int64(p), &r.opts, sc.blocks[nb], r.dict, wantBytes)
		if err != nil {
			return nil, false, err
		}
		if h.codec != CodecNone {
			sc.blocks[nb] = payload[:0]
		}
		if linked && len(out) > 0 && out[len(out)-1].MAC != h.prevMAC {
			return nil, false, corrupt(r.path, s.Offset+int64(p), next, "block's prev MAC does not match the previous record's MAC")
		}
		n0 := len(out)
		whole := len(payload) == int(h.rawLen)
		if !whole {
			if out, err = parsePrefix(r.path, s.Offset+int64(p), &h, payload, &r.opts, out); err != nil {
				return nil, false, err
			}
			if c := countFrom(out[n0:], from); got+c >= want && len(out) > n0 {
				got += c
				sc.entries = out
				return out, true, nil // the rest of this block is unread
			}
			// The margin fell short: decode the whole block.
			out = out[:n0]
			if h, payload, n, err = decodeBlock(r.path, b[p:], s.Offset+int64(p), &r.opts, sc.blocks[nb], r.dict); err != nil {
				return nil, false, err
			}
			if h.codec != CodecNone {
				sc.blocks[nb] = payload[:0]
			}
		}
		nb++
		if out, err = parseEntries(r.path, s.Offset+int64(p), &h, payload, &r.opts, out); err != nil {
			return nil, false, err
		}
		got += countFrom(out[n0:], from)
		linked = true
		next += uint64(h.count)
		p += n
	}
	sc.entries = out
	if next != s.FirstSeq+uint64(s.Count) {
		return nil, false, corrupt(r.path, s.Offset, s.FirstSeq, "span holds %d records, index says %d", next-s.FirstSeq, s.Count)
	}
	return out, false, nil
}

// countFrom returns how many of es have a receipt time at or after from.
func countFrom(es []Entry, from int64) int {
	i := sort.Search(len(es), func(i int) bool { return es[i].Time >= from })
	return len(es) - i
}

// ReadBlocks reads span s like ReadSpanScratch, but decodes only the block
// frames that hold at least one of seqs (ascending): a reader that knows
// which records it wants (from postings) decompresses and checks only
// their blocks. It returns the entries of those blocks, in order, each
// block's at least up to the last of seqs it holds: an S2 block (codec 1)
// whose wanted records lie in its first part is decompressed only that far
// (its CRC is still checked over all of it). Links between blocks are not
// checked, since blocks in between are skipped.
func (r *Reader) ReadBlocks(s Span, seqs []uint64, sc *Scratch) ([]Entry, error) {
	if s.Offset < HeaderSize || s.Length <= 0 || (r.footer != nil && s.Offset+s.Length > r.footer.Offset) {
		return nil, corrupt(r.path, s.Offset, s.FirstSeq, "span of %d bytes at offset %d lies outside the data", s.Length, s.Offset)
	}
	if s.Length > int64(r.opts.MaxFooterSize) {
		return nil, corrupt(r.path, s.Offset, s.FirstSeq, "span of %d bytes exceeds the read limit", s.Length)
	}
	if r.blocks != nil {
		if i := r.spanIndex(s); i >= 0 {
			return r.readIndexed(i, s, seqs, sc)
		}
	}
	if int64(cap(sc.file)) < s.Length {
		sc.file = make([]byte, s.Length)
	}
	b := sc.file[:s.Length]
	if err := r.readAt(b, s.Offset); err != nil {
		return nil, err
	}
	out := sc.entries[:0]
	next := s.FirstSeq
	nb := 0
	for p := 0; p < len(b) && len(seqs) > 0; {
		switch b[p] {
		case frameCommit:
			p += CommitSize
			continue
		case frameBlock:
		default:
			return nil, corrupt(r.path, s.Offset+int64(p), next, "frame type %#x inside a span", b[p])
		}
		if len(b)-p < BlockHeaderSize {
			return nil, corrupt(r.path, s.Offset+int64(p), next, "truncated block header")
		}
		var h blockHeader
		h.parse(b[p:])
		if h.firstSeq != next {
			return nil, corrupt(r.path, s.Offset+int64(p), next, "block starts at seq %d, seq %d expected", h.firstSeq, next)
		}
		end := next + uint64(h.count)
		for len(seqs) > 0 && seqs[0] < next {
			seqs = seqs[1:]
		}
		if len(seqs) == 0 || seqs[0] >= end {
			if int64(h.storedLen) > int64(len(b)-p-BlockHeaderSize) {
				return nil, corrupt(r.path, s.Offset+int64(p), next, "block payload of %d bytes runs past the end of the data", h.storedLen)
			}
			p += BlockHeaderSize + int(h.storedLen)
			next = end
			continue
		}
		var n int
		var err error
		if out, n, err = r.readWanted(b[p:], s.Offset+int64(p), next, h.count, h.rawLen, seqs, sc, nb, out); err != nil {
			return nil, err
		}
		nb++
		next = end
		p += n
	}
	sc.entries = out
	return out, nil
}

// readWanted decodes the block frame at the start of fb (file offset off)
// into sc.blocks[nb], a block that should hold count records from seq
// first, and appends its entries to out, at least up to the last of seqs
// (ascending, the first of them in this block) it holds: of an S2 block,
// only the payload up to that record and a margin (records differ in size)
// is decompressed, when that is well short of all of it (rawLen, as the
// caller read it, guides only). It returns the frame's length.
func (r *Reader) readWanted(fb []byte, off int64, first uint64, count, rawLen uint32, seqs []uint64, sc *Scratch, nb int, out []Entry) ([]Entry, int, error) {
	if nb == len(sc.blocks) {
		sc.blocks = append(sc.blocks, nil)
	}
	last := 0
	for last+1 < len(seqs) && seqs[last+1] < first+uint64(count) {
		last++
	}
	want := 0
	if count > 0 && seqs[last] >= first {
		avg := uint64(rawLen / count)
		want = int(min(uint64(rawLen), (seqs[last]-first+2)*avg+uint64(rawLen/16)))
	}
	h, payload, n, err := decodeBlockUpTo(r.path, fb, off, &r.opts, sc.blocks[nb], r.dict, want)
	if err != nil {
		return out, 0, err
	}
	if h.codec != CodecNone {
		sc.blocks[nb] = payload[:0]
	}
	if h.firstSeq != first || h.count != count {
		return out, 0, corrupt(r.path, off, first, "block holds seq %d..+%d, %d..+%d expected", h.firstSeq, h.count, first, count)
	}
	if len(payload) < int(h.rawLen) {
		n0 := len(out)
		if out, err = parsePrefix(r.path, off, &h, payload, &r.opts, out); err != nil {
			return out, 0, err
		}
		if len(out) > n0 && out[len(out)-1].Seq >= seqs[last] {
			return out, n, nil
		}
		// The margin fell short: decode the whole block.
		out = out[:n0]
		if h, payload, n, err = decodeBlock(r.path, fb, off, &r.opts, sc.blocks[nb], r.dict); err != nil {
			return out, 0, err
		}
		if h.codec != CodecNone {
			sc.blocks[nb] = payload[:0]
		}
	}
	out, err = parseEntries(r.path, off, &h, payload, &r.opts, out)
	return out, n, err
}
