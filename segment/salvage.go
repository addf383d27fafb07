package segment

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/vellumlog/vellum"
)

// DamageKind says what Salvage found wrong at a place of a segment file.
type DamageKind uint8

// Kinds of damage.
const (
	// DamageHeader: the header does not verify. Its fields were read as
	// they are but not trusted: the first seq and the MAC before it come
	// from the first readable block.
	DamageHeader DamageKind = iota + 1
	// DamageBlock: a block frame fails its CRC or its own checks, but its
	// payload decoded: its records were delivered marked damaged.
	// Their content may be altered; MACs and checkpoints tell which.
	DamageBlock
	// DamageLost: bytes that could not be read as frames, or a block whose
	// payload does not decode. The records in them are lost; FirstSeq and
	// Count name them when the readable neighbours tell.
	DamageLost
	// DamageCommit: a commit frame does not verify, or is missing before
	// the footer. The blocks it closes were checked on their own.
	DamageCommit
	// DamageFooter: the footer frame or trailer does not verify, or says
	// something other than the records: the segment's Merkle root, span
	// index and footer sections are unknown.
	DamageFooter
)

func (k DamageKind) String() string {
	switch k {
	case DamageHeader:
		return "header"
	case DamageBlock:
		return "block"
	case DamageLost:
		return "lost"
	case DamageCommit:
		return "commit"
	case DamageFooter:
		return "footer"
	}
	return fmt.Sprintf("damage(%d)", uint8(k))
}

// Damage is one place of a segment file that does not verify.
type Damage struct {
	Kind   DamageKind
	Offset int64 // file offset where it starts
	Length int64 // bytes it spans
	// FirstSeq and Count are the records it affects: delivered anyway
	// (DamageBlock) or lost (DamageLost). Zero when none or unknown.
	FirstSeq uint64
	Count    uint64
	Reason   string
}

// SalvageResult is what Salvage could read of a damaged segment.
type SalvageResult struct {
	// Header is the header as read; when HeaderOK is false its CRC or
	// fields did not verify, and FirstSeq and PrevMAC come from the first
	// readable block.
	Header   Header
	HeaderOK bool
	// Sealed reports that the file ends in a footer and trailer (the
	// trailer names a footer frame), whether or not they verify; Footer
	// is set when they verify and agree with the records read.
	Sealed bool
	Footer *Footer
	// Damage lists every place that does not verify, in file order.
	Damage []Damage
	// Records counts the records delivered; FirstSeq and LastSeq are the
	// first and last of them (0 when none), LastMAC the MAC of the last.
	Records           uint64
	FirstSeq, LastSeq uint64
	LastMAC           vellum.MAC
	// Spans are the spans of the records read, when no bytes were lost
	// (otherwise the layout is unknown and Spans is nil).
	Spans []Span
	// TornAt is the offset of an incomplete final batch of an unsealed
	// segment (blocks with no commit frame after them and nothing
	// readable beyond), whose records were never acknowledged and are not
	// delivered; -1 when there is none.
	TornAt      int64
	TornRecords uint64
	FileSize    int64
}

// Salvage reads every record that can still be read from a segment image
// that does not verify, for a verifier that must say what exactly is
// damaged. Unlike Scan it never stops at damage: a block whose CRC fails
// is decoded anyway and its records delivered with damaged set (their
// bytes may not be the ones written);
// bytes that cannot be read as frames are skipped to the next frame that
// verifies, and the records they held are reported lost. Every record is
// delivered once, in file order, with the MAC before it (the block's prev
// MAC for a block's first record). Records of a batch are delivered when
// its commit frame is reached (verified or not), or at the end of a sealed
// segment; an unsealed segment's final batch with no commit frame after it
// is an incomplete write and is not delivered (TornAt). fn's Entry.Record
// is valid only during the call; a non-nil error from fn stops Salvage
// and is returned. Salvage never panics on hostile input and never
// allocates more for a block than the options' maximum block size.
func Salvage(path string, b []byte, opts *Options, fn func(e Entry, damaged bool) error) (*SalvageResult, error) {
	o := opts.withDefaults()
	s := &salvager{path: path, b: b, o: &o, fn: fn, res: &SalvageResult{FileSize: int64(len(b)), TornAt: -1}, end: len(b), batchStart: -1, footerAt: -1}
	if err := s.run(); err != nil {
		return nil, err
	}
	return s.res, nil
}

type salvager struct {
	path string
	b    []byte
	o    *Options
	fn   func(Entry, bool) error
	res  *SalvageResult

	end        int  // where frames end: the footer, or the end of the file
	footerAt   int  // the footer offset the trailer names, or -1
	batchStart int  // start of the current batch, or -1 after lost bytes
	resume     bool // the next block follows lost bytes: take its own first seq
	// batchDamaged: a block of the current batch does not verify, which
	// explains a commit CRC that fails.
	batchDamaged bool
	next         uint64
	lastTime     int64
	lost         int // index in res.Damage of a loss whose records are not yet counted, or -1
	anyLost      bool
	spans        spanBuilder
	pend         []salvBlock
	// S2-dictionary segments: the first DictSize raw bytes, while every
	// block before decoded whole (prefixBad otherwise: the dictionary, and
	// every dictionary block's records, are lost), and the dictionary.
	prefix    []byte
	prefixBad bool
	dict      *s2.Dict
}

// addRaw notes a block's payload (complete: it decoded whole) as part of
// the dictionary while the segment's first DictSize raw bytes last.
func (s *salvager) addRaw(h *blockHeader, payload []byte, complete bool) {
	if s.res.Header.Codec != CodecS2Dict || h.codec != CodecS2 || len(s.prefix) >= DictSize || s.prefixBad {
		return
	}
	if !complete {
		s.prefixBad = true
		return
	}
	s.prefix = append(s.prefix, payload[:min(len(payload), DictSize-len(s.prefix))]...)
	if len(s.prefix) == DictSize {
		s.dict = newDict(s.prefix)
	}
}

type salvBlock struct {
	off     int
	h       blockHeader
	entries []Entry
	damaged bool
}

func (s *salvager) damage(d Damage) { s.res.Damage = append(s.res.Damage, d) }

func (s *salvager) run() error {
	b, res := s.b, s.res
	s.lost = -1
	if len(b) < HeaderSize || string(b[:8]) != headerMagic {
		s.damage(Damage{Kind: DamageLost, Length: int64(len(b)), Reason: "no segment header (file shorter than 128 bytes or bad magic)"})
		s.anyLost = true
		return nil
	}
	if hdr, err := parseHeader(s.path, b); err == nil {
		res.Header, res.HeaderOK = hdr, true
		s.next = hdr.FirstSeq
		res.LastMAC = hdr.PrevMAC
		s.o.adopt(&hdr)
	} else {
		res.Header = rawHeader(b)
		s.damage(Damage{Kind: DamageHeader, Length: HeaderSize, Reason: reasonOf(err)})
		if m := int(res.Header.MaxRecordSize); m > s.o.MaxRecordSize && m <= MaxRecordSizeLimit {
			s.o.MaxRecordSize = m
		}
	}
	target := int(res.Header.SpanTarget)
	if target <= 0 || target > maxSpanTarget {
		target = s.o.BlockSize
	}
	s.spans = spanBuilder{target: target}
	s.findFooter()

	s.batchStart = HeaderSize
	for off := HeaderSize; off < s.end; {
		next, err := s.frame(off)
		if err != nil {
			return err
		}
		off = next
	}
	if len(s.pend) > 0 {
		if res.Footer != nil || s.footerAt >= 0 {
			// A seal follows only synced batches: these were acknowledged.
			s.damage(Damage{Kind: DamageCommit, Offset: int64(s.end), Reason: "blocks with no commit frame before the footer"})
			if err := s.deliver(s.end); err != nil {
				return err
			}
		} else {
			res.TornAt = int64(s.pend[0].off)
			for _, p := range s.pend {
				res.TornRecords += uint64(len(p.entries))
			}
			s.pend = nil
		}
	}
	if s.lost >= 0 && res.Footer != nil && res.Footer.Count > 0 {
		if d := &res.Damage[s.lost]; d.FirstSeq > 0 && res.Footer.LastSeq >= d.FirstSeq {
			d.Count = res.Footer.LastSeq - d.FirstSeq + 1
		}
	}
	s.checkFooter()
	if !s.anyLost {
		res.Spans = s.spans.finish()
	}
	return nil
}

// ParseHeader parses and checks the header at the start of b, the bytes
// of the segment file path.
func ParseHeader(path string, b []byte) (Header, error) { return parseHeader(path, b) }

// RawHeader reads the header's fields at the start of b without checking
// its CRC or values, for a verifier describing a damaged segment; false
// when b is shorter than a header or does not start with the magic.
func RawHeader(b []byte) (Header, bool) {
	if len(b) < HeaderSize || string(b[:8]) != headerMagic {
		return Header{}, false
	}
	return rawHeader(b), true
}

// EndsInTrailer reports whether b ends in a trailer's magic: the file
// claims to be sealed, whether or not its footer verifies.
func EndsInTrailer(b []byte) bool {
	return len(b) >= HeaderSize+footerPrefix+TrailerSize && string(b[len(b)-8:]) == trailerMagic
}

// TrailerCount returns the record count that b's trailer claims, without
// checking the footer's CRC: a hint for sizing buffers, never a fact (ok is
// false when b does not end in a trailer).
func TrailerCount(b []byte) (n uint64, ok bool) {
	if !EndsInTrailer(b) {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b[len(b)-TrailerSize+8:]), true
}

// rawHeader reads a header's fields without checking them.
func rawHeader(b []byte) Header {
	le := binary.LittleEndian
	h := Header{
		Codec: Codec(b[12]), Number: le.Uint64(b[16:]), FirstSeq: le.Uint64(b[40:]),
		Created: time.Unix(0, int64(le.Uint64(b[88:]))).UTC(), SpanTarget: le.Uint32(b[96:]), MaxRecordSize: le.Uint32(b[100:]),
	}
	copy(h.StoreID[:], b[24:40])
	copy(h.KeyID[:], b[48:56])
	copy(h.PrevMAC[:], b[56:88])
	return h
}

// findFooter locates the footer the trailer names and bounds the walk
// there. A footer that does not verify is damage; the bytes before it are
// still walked.
func (s *salvager) findFooter() {
	b := s.b
	if len(b) < HeaderSize+footerPrefix+TrailerSize {
		return
	}
	t := b[len(b)-TrailerSize:]
	off := int64(binary.LittleEndian.Uint64(t))
	magic := string(t[120:]) == trailerMagic
	inside := off >= HeaderSize && off <= int64(len(b)-TrailerSize-footerPrefix)
	if !inside || b[off] != frameFooter {
		if magic {
			s.res.Sealed = true
			s.damage(Damage{Kind: DamageFooter, Offset: int64(len(b) - TrailerSize), Length: TrailerSize,
				Reason: fmt.Sprintf("the trailer names a footer at offset %d, where there is none", off)})
			s.end = len(b) - TrailerSize
		}
		return
	}
	ft, err := parseFooter(s.path, off, b[off:])
	switch {
	case err != nil && !magic:
		return // not a footer: an unsealed segment
	case err != nil:
		s.damage(Damage{Kind: DamageFooter, Offset: off, Length: int64(len(b)) - off, Reason: reasonOf(err)})
	case !magic:
		s.damage(Damage{Kind: DamageFooter, Offset: int64(len(b) - 8), Length: 8, Reason: fmt.Sprintf("trailer magic %q, want %q", t[120:], trailerMagic)})
		s.res.Footer = ft
	default:
		s.res.Footer = ft
	}
	s.footerAt = int(off)
	s.end = int(off)
	s.res.Sealed = true
}

// checkFooter compares a footer that verifies with the records read.
func (s *salvager) checkFooter() {
	res, ft := s.res, s.res.Footer
	if ft == nil {
		return
	}
	why := ""
	switch {
	case s.anyLost:
		why = "" // counts cannot be compared; the loss is reported
	case ft.Count != res.Records || (ft.Count > 0 && (ft.FirstSeq != res.FirstSeq || ft.LastSeq != res.LastSeq)):
		why = fmt.Sprintf("the footer says %d records (seq %d..%d), the segment holds %d (seq %d..%d)", ft.Count, ft.FirstSeq, ft.LastSeq, res.Records, res.FirstSeq, res.LastSeq)
	case ft.LastMAC != res.LastMAC:
		why = "the footer's last MAC differs from the last record's MAC"
	default:
		spans := s.spans.view()
		if len(spans) != len(ft.Spans) {
			why = fmt.Sprintf("the footer indexes %d spans, the data holds %d", len(ft.Spans), len(spans))
		} else {
			for i := range spans {
				if spans[i] != ft.Spans[i] {
					why = fmt.Sprintf("the footer's span %d differs from the data", i)
					break
				}
			}
		}
	}
	if why != "" {
		s.damage(Damage{Kind: DamageFooter, Offset: ft.Offset, Length: res.FileSize - ft.Offset, Reason: why})
		res.Footer = nil
	}
}

// frame reads the frame at off and returns where the next one starts.
func (s *salvager) frame(off int) (int, error) {
	b := s.b
	switch b[off] {
	case frameBlock:
		if n, ok := s.block(off); ok {
			return off + n, nil
		}
	case frameCommit:
		if off+CommitSize <= s.end && b[off+1]|b[off+2]|b[off+3] == 0 {
			return off + CommitSize, s.commit(off)
		}
	}
	return s.resync(off), nil
}

// block reads the block frame at off. ok is false when the frame cannot
// be delimited: its header is unreadable, or its CRC fails and no valid
// frame follows where its length says it ends.
func (s *salvager) block(off int) (int, bool) {
	b := s.b[off:s.end]
	if len(b) < BlockHeaderSize {
		return 0, false
	}
	var h blockHeader
	h.parse(b)
	if int64(h.storedLen) > int64(len(b)-BlockHeaderSize) {
		return 0, false
	}
	n := BlockHeaderSize + int(h.storedLen)
	var why string
	if got := crcUpdate(crc(b[:72]), b[BlockHeaderSize:n]); got != h.crc {
		if !s.validAt(off + n) {
			return 0, false
		}
		why = fmt.Sprintf("block CRC %08x, computed %08x", h.crc, got)
	}
	switch {
	case why != "":
	case b[2] != 0 || b[3] != 0:
		why = "reserved block header bytes are not zero"
	case !s.res.Header.Codec.allows(h.codec) && s.res.HeaderOK:
		why = fmt.Sprintf("block codec %s differs from the segment's %s", h.codec, s.res.Header.Codec)
	}
	first := s.next
	switch {
	case s.resume || first == 0:
		// After lost bytes (or a damaged header) the block's own first
		// seq resumes the count.
		first = h.firstSeq
	case why == "" && h.firstSeq != first:
		why = fmt.Sprintf("block starts at seq %d, seq %d expected", h.firstSeq, first)
		first = h.firstSeq
	}
	// The chain value before the block: the last record read when the
	// block follows it, not a header field that may itself be damaged.
	prev := h.prevMAC
	if !s.resume && (len(s.pend) > 0 || s.res.Records > 0 || s.res.HeaderOK) {
		prev = s.lastMAC()
		if why == "" && h.prevMAC != prev {
			why = "block's prev MAC does not match the previous record's MAC"
		}
	}
	s.resume = false
	entries, perr, complete := s.entries(&h, b[BlockHeaderSize:n], int64(off), first, prev, why == "")
	if !complete && uint64(len(entries)) >= uint64(h.count) {
		complete = true // every record was read before the payload went wrong
	}
	if complete {
		why = join(why, perr)
	}
	// A loss before this block ends where this block begins.
	if s.lost >= 0 {
		if d := &s.res.Damage[s.lost]; d.FirstSeq > 0 && first > d.FirstSeq {
			d.Count = first - d.FirstSeq
		}
		s.lost = -1
	}
	if (why != "" || !complete) && len(entries) > 0 {
		s.damage(Damage{Kind: DamageBlock, Offset: int64(off), Length: int64(n), FirstSeq: first, Count: uint64(len(entries)), Reason: join(why, map[bool]string{false: "the payload does not decode to its end"}[complete])})
	}
	if !complete {
		// The block is delimited, but records from the damage on cannot
		// be read.
		s.anyLost = true
		lost := uint64(h.count) - uint64(len(entries))
		if uint64(len(entries)) > uint64(h.count) {
			lost = 0
		}
		reason := fmt.Sprintf("the block's payload does not decode past record %d of %d (%s)", len(entries), h.count, perr)
		if len(entries) == 0 {
			reason = fmt.Sprintf("the block's payload does not decode (%s)", perr)
		}
		if why != "" {
			// The block does not verify: its record count may be
			// damaged too. The next block that verifies tells how many
			// records were lost.
			lost = 0
		}
		s.damage(Damage{Kind: DamageLost, Offset: int64(off), Length: int64(n), FirstSeq: first + uint64(len(entries)), Count: lost, Reason: reason})
		if lost == 0 {
			s.lost = len(s.res.Damage) - 1
		}
		// The chain resumes from the next block's own prev MAC.
		s.resume = true
	}
	if why != "" || !complete {
		s.batchDamaged = true
	}
	if len(entries) > 0 {
		s.pend = append(s.pend, salvBlock{off: off, h: h, entries: entries, damaged: why != "" || !complete})
	}
	s.next = first + uint64(len(entries))
	if !complete {
		s.next = first + uint64(h.count)
	}
	return n, true
}

// entries decodes a block's payload as far as it goes, numbering records
// from first. A reason is returned for what stopped it or was wrong.
// complete is false when the payload did not decode to its end: the
// records from the returned ones on are lost.
func (s *salvager) entries(h *blockHeader, stored []byte, off int64, first uint64, prev vellum.MAC, trusted bool) (out []Entry, why string, complete bool) {
	if h.codec > CodecS2Dict {
		return nil, fmt.Sprintf("unknown codec %d", h.codec), false
	}
	if int(h.rawLen) > s.o.maxRaw() {
		return nil, fmt.Sprintf("raw length %d exceeds the %d-byte limit", h.rawLen, s.o.maxRaw()), false
	}
	if h.count == 0 || uint64(h.count) > uint64(h.rawLen)/(MinEncodedRecord+vellum.MACSize+1) {
		return nil, fmt.Sprintf("block claims %d records in %d raw bytes", h.count, h.rawLen), false
	}
	// Entries outlive this call (until the batch's commit frame), so the
	// payload is never a reused buffer.
	payload, err := decompress(h.codec, nil, stored, int(h.rawLen), s.dict)
	complete = err == nil
	s.addRaw(h, payload, complete)
	if err != nil {
		why = err.Error()
		if h.codec != CodecS2 {
			return nil, why, false
		}
		// What decodes before the damage still holds whole records.
		payload = s2Prefix(stored, int(h.rawLen))
	}
	out = make([]Entry, 0, h.count)
	p := payload
	for i := uint32(0); i < h.count; i++ {
		n, k := binary.Uvarint(p)
		if k <= 0 || n == 0 || n > uint64(s.o.MaxRecordSize) || uint64(len(p)-k) < n+vellum.MACSize {
			if !complete {
				return out, why, false
			}
			return out, fmt.Sprintf("record %d of %d does not parse", i+1, h.count), false
		}
		rec := p[k : k+int(n) : k+int(n)]
		var mac vellum.MAC
		copy(mac[:], p[k+int(n):])
		p = p[k+int(n)+vellum.MACSize:]
		seq := first + uint64(i)
		rs, rt, err := vellum.DecodeSeqTime(rec)
		if !complete && (err != nil || rs != seq) {
			// S2 reports damage where it notices it, which can be well
			// after where the output went wrong (a flipped copy offset
			// copies the wrong bytes without complaint). In a prefix of
			// a block that did not decode, the first record that does
			// not parse or carries the wrong seq marks where the bytes
			// went wrong: it and what follows are lost, not records.
			return out, why, false
		}
		switch {
		case err != nil:
			why = join(why, fmt.Sprintf("seq %d: %v", seq, err))
		case rs != seq:
			why = join(why, fmt.Sprintf("record at seq %d carries seq %d", seq, rs))
		case rt < s.lastTime:
			why = join(why, fmt.Sprintf("seq %d: time goes backwards", seq))
		}
		if err == nil && rt > s.lastTime && trusted {
			// Only a block that verifies moves the clock on: a damaged
			// time must not make every later record look out of order.
			s.lastTime = rt
		}
		out = append(out, Entry{Seq: seq, Time: rt, Record: rec, MAC: mac, PrevMAC: prev, Offset: off})
		prev = mac
	}
	if len(p) != 0 {
		why = join(why, fmt.Sprintf("%d bytes after the block's last record", len(p)))
	}
	return out, why, complete
}

func (s *salvager) lastMAC() vellum.MAC {
	if n := len(s.pend); n > 0 {
		es := s.pend[n-1].entries
		return es[len(es)-1].MAC
	}
	return s.res.LastMAC
}

// commit handles the commit frame at off: it closes the batch, verified or
// not, and delivers its records.
func (s *salvager) commit(off int) error {
	b, le := s.b, binary.LittleEndian
	fr := b[off : off+CommitSize]
	covered := int(le.Uint32(fr[4:]))
	why := ""
	switch {
	case fr[20]|fr[21]|fr[22]|fr[23] != 0:
		why = "reserved commit frame bytes are not zero"
	case s.batchStart < 0:
		// After lost bytes the batch's start is unknown and its CRC
		// covers the loss, which is reported already.
	case covered != off-s.batchStart:
		why = fmt.Sprintf("commit frame covers %d bytes, %d lie since the previous commit", covered, off-s.batchStart)
	case crcUpdate(crc(b[s.batchStart:off]), fr[:16]) != le.Uint32(fr[16:]) && s.batchDamaged:
		// Its CRC covers a damaged block, reported already.
	case crcUpdate(crc(b[s.batchStart:off]), fr[:16]) != le.Uint32(fr[16:]):
		why = fmt.Sprintf("commit CRC %08x, computed %08x", le.Uint32(fr[16:]), crcUpdate(crc(b[s.batchStart:off]), fr[:16]))
	case len(s.pend) == 0:
		why = "commit frame with no block before it"
	case le.Uint64(fr[8:]) != s.next-1:
		why = fmt.Sprintf("commit frame says last seq %d, blocks end at %d", le.Uint64(fr[8:]), s.next-1)
	}
	if why != "" {
		s.damage(Damage{Kind: DamageCommit, Offset: int64(off), Length: CommitSize, Reason: why})
	}
	if err := s.deliver(off + CommitSize); err != nil {
		return err
	}
	s.batchStart = off + CommitSize
	s.batchDamaged = false
	return nil
}

// deliver hands the pending batch's records to fn.
func (s *salvager) deliver(end int) error {
	res := s.res
	for _, pb := range s.pend {
		s.spans.block(int64(pb.off), &pb.h)
		span := s.spans.open.FirstSeq
		for _, e := range pb.entries {
			e.Span = span
			if s.fn != nil {
				if err := s.fn(e, pb.damaged); err != nil {
					return err
				}
			}
			if res.Records == 0 {
				res.FirstSeq = e.Seq
			}
			res.Records++
			res.LastSeq, res.LastMAC = e.Seq, e.MAC
		}
	}
	s.spans.commit(int64(end))
	s.pend = s.pend[:0]
	return nil
}

// lose records the bytes [off, off+n) as lost, holding count records from
// first when known.
func (s *salvager) lose(off, n int, first, count uint64, why string) {
	s.anyLost = true
	s.batchStart = -1
	s.resume = true
	if len(s.res.Damage) > 0 {
		if d := &s.res.Damage[len(s.res.Damage)-1]; d.Kind == DamageLost && d.Offset+d.Length == int64(off) {
			d.Length += int64(n)
			if count > 0 && d.FirstSeq > 0 {
				d.Count = first + count - d.FirstSeq
			}
			return
		}
	}
	if first == 0 {
		first = s.next
	}
	s.damage(Damage{Kind: DamageLost, Offset: int64(off), Length: int64(n), FirstSeq: first, Count: count, Reason: why})
	if count == 0 {
		s.lost = len(s.res.Damage) - 1
	} else {
		s.lost = -1
	}
}

// resync skips from off to the next frame that verifies on its own (a
// block whose CRC holds or a commit frame whose CRC holds over what it
// covers) or to the end, and reports the skipped bytes as lost. The
// batch the skipped bytes belonged to is dropped from pending only if it
// had no blocks read (blocks read before stay pending: their CRCs held).
func (s *salvager) resync(off int) int {
	q := s.findValid(off + 1)
	s.lose(off, q-off, 0, 0, fmt.Sprintf("%d bytes from offset %d do not read as frames", q-off, off))
	return q
}

// findValid returns the first offset at or after from where a frame
// verifies on its own, or s.end. The CRC work is bounded so that crafted
// input cannot make it quadratic; past the budget it gives up.
func (s *salvager) findValid(from int) int {
	budget := 4*len(s.b) + 1<<20
	for q := from; q < s.end; q++ {
		if s.b[q] != frameBlock && s.b[q] != frameCommit {
			continue
		}
		ok, cost := s.verifies(q)
		if budget -= cost; budget < 0 {
			return s.end
		}
		if ok {
			return q
		}
	}
	return s.end
}

// validAt reports whether a frame that verifies (or the end of the frames)
// starts at off: evidence that a damaged block before it was delimited
// right. A commit frame after a damaged block cannot verify (its CRC
// covers the damage), so for it the structure must fit exactly.
func (s *salvager) validAt(off int) bool {
	if off == s.end {
		return true
	}
	if off > s.end {
		return false
	}
	if ok, _ := s.verifies(off); ok {
		return true
	}
	b := s.b
	if b[off] == frameCommit && off+CommitSize <= s.end && b[off+1]|b[off+2]|b[off+3]|b[off+20]|b[off+21]|b[off+22]|b[off+23] == 0 {
		start := s.batchStart
		if start < 0 {
			return false
		}
		return int(binary.LittleEndian.Uint32(b[off+4:])) == off-start
	}
	return false
}

// verifies reports whether a block or commit frame at q verifies on its
// own, and how many bytes of CRC that took.
func (s *salvager) verifies(q int) (bool, int) {
	b, le := s.b[:s.end], binary.LittleEndian
	switch b[q] {
	case frameBlock:
		if len(b)-q < BlockHeaderSize || b[q+2]|b[q+3] != 0 || b[q+1] > byte(CodecS2Dict) || le.Uint32(b[q+4:]) == 0 {
			return false, 0
		}
		n := BlockHeaderSize + int(le.Uint32(b[q+36:]))
		if n > len(b)-q || int(le.Uint32(b[q+32:])) > s.o.maxRaw() {
			return false, 0
		}
		return crcUpdate(crc(b[q:q+72]), b[q+BlockHeaderSize:q+n]) == le.Uint32(b[q+72:]), n
	case frameCommit:
		if len(b)-q < CommitSize || b[q+1]|b[q+2]|b[q+3]|b[q+20]|b[q+21]|b[q+22]|b[q+23] != 0 {
			return false, 0
		}
		covered := int(le.Uint32(b[q+4:]))
		if covered == 0 || covered > q-HeaderSize {
			return false, 0
		}
		return crcUpdate(crc(b[q-covered:q]), b[q:q+16]) == le.Uint32(b[q+16:]), covered
	}
	return false, 0
}

func join(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
