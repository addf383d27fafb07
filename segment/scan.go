package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/vfs"
)

// ScanResult describes a segment read from end to end: its header, what is
// committed, whether it is sealed, and whether a torn final batch follows the
// committed data.
type ScanResult struct {
	Header Header
	// State is the committed data: everything up to the last commit frame
	// that verifies (or, for a sealed segment, up to the footer).
	State State
	// Sealed reports a valid footer; Footer is then set and agrees with
	// the scan.
	Sealed bool
	Footer *Footer
	// FileSize is the file's length.
	FileSize int64
	// TornAt is the offset where an incomplete final batch starts (equal
	// to State.Size), or -1. TornReason says what was incomplete.
	TornAt     int64
	TornReason string
	// ZeroTail is how many zero bytes follow the committed data to the end
	// of an unsealed file: the preallocated space not yet written
	// (FORMAT.md, "Preallocated files"), which is not a torn tail.
	ZeroTail int64

	spans spanBuilder
	// raw is the committed records' raw payload size, prefix its first
	// DictSize bytes (S2-dictionary segments only), for OpenAppend.
	raw    int64
	prefix []byte
}

// Spans returns the spans of the committed records.
func (sr *ScanResult) Spans() []Span { return sr.spans.view() }

// Scan reads the whole segment at path in order, calls fn for every record of
// every committed batch (in seq order, after the batch's commit frame has
// verified), and reports where the committed data ends. An incomplete final
// batch is not an error: it is reported in TornAt. Damage followed by data a
// later commit frame vouches for is corruption: Scan returns a
// *CorruptError naming the offset and seq. fn's Entry.Record is valid only
// during the call. A non-nil error from fn stops the scan and is returned.
func Scan(fs vfs.FS, path string, opts *Options, fn func(Entry) error) (*ScanResult, error) {
	o := opts.withDefaults()
	f, err := fs.Open(path)
	if err != nil {
		return nil, fmt.Errorf("segment: open %s: %w", path, err)
	}
	defer f.Close()
	b, err := readWhole(f, path)
	if err != nil {
		return nil, err
	}
	return ScanBytes(path, b, &o, fn)
}

// readWhole reads all of f. A file that got shorter while it was read (a
// writer sealed it, cutting its preallocated zero tail) is read again
// with its new length, a few times.
func readWhole(f vfs.File, path string) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		size, err := f.Size()
		if err != nil {
			return nil, fmt.Errorf("segment: stat %s: %w", path, err)
		}
		b := make([]byte, size)
		n, err := f.ReadAt(b, 0)
		if int64(n) == size {
			return b, nil
		}
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		if attempt == maxLengthRetries || !lengthChanged(f, size) {
			return nil, fmt.Errorf("segment: read %s: %w", path, err)
		}
	}
}

// ScanBytes is Scan over a file's bytes already in memory.
func ScanBytes(path string, b []byte, opts *Options, fn func(Entry) error) (*ScanResult, error) {
	o := opts.withDefaults()
	hdr, err := parseHeader(path, b)
	if err != nil {
		return nil, err
	}
	o.adopt(&hdr)
	s := scanner{path: path, b: b, o: &o, fn: fn}
	s.res = &ScanResult{
		Header:   hdr,
		FileSize: int64(len(b)),
		TornAt:   -1,
		State:    State{Size: HeaderSize, LastSeq: hdr.FirstSeq - 1, LastMAC: hdr.PrevMAC},
		spans:    spanBuilder{target: int(hdr.SpanTarget)},
	}
	s.nextSeq = hdr.FirstSeq
	s.prev = hdr.PrevMAC
	if err := s.run(); err != nil {
		return nil, err
	}
	return s.res, nil
}

type scanner struct {
	path string
	b    []byte
	o    *Options
	fn   func(Entry) error
	res  *ScanResult

	good    int // end of the last verified commit frame
	pend    []pendBlock
	nextSeq uint64
	prev    vellum.MAC
	last    int64 // last record time
	bufs    [][]byte
	ents    [][]Entry
	// S2-dictionary segments: the first DictSize raw bytes decoded so far
	// and, once complete, the dictionary.
	prefix []byte
	dict   *s2.Dict
}

// dictFn returns the dictionary for a dictionary block, which may follow
// only DictSize raw bytes of plain blocks.
func (s *scanner) dictFn() (*s2.Dict, error) {
	if s.dict == nil {
		return nil, fmt.Errorf("dictionary block before the segment's first %d raw bytes", DictSize)
	}
	return s.dict, nil
}

// addRaw notes a decoded block's payload: part of the dictionary while
// fewer than DictSize raw bytes came before.
func (s *scanner) addRaw(payload []byte) {
	if s.res.Header.Codec != CodecS2Dict || len(s.prefix) >= DictSize {
		return
	}
	s.prefix = append(s.prefix, payload[:min(len(payload), DictSize-len(s.prefix))]...)
	if len(s.prefix) == DictSize {
		s.dict = newDict(s.prefix)
	}
}

type pendBlock struct {
	off     int
	h       blockHeader
	entries []Entry
}

func (s *scanner) run() error {
	b := s.b
	s.good = HeaderSize
	off := HeaderSize
	for off < len(b) {
		switch b[off] {
		case frameBlock:
			var buf []byte
			if len(s.bufs) > len(s.pend) {
				buf = s.bufs[len(s.pend)]
			}
			h, payload, n, err := decodeBlock(s.path, b[off:], int64(off), s.o, buf, s.dictFn)
			if err != nil {
				return s.damage(off, reasonOf(err))
			}
			s.addRaw(payload)
			if len(s.bufs) <= len(s.pend) {
				s.bufs = append(s.bufs, nil)
			}
			if h.codec != CodecNone {
				s.bufs[len(s.pend)] = payload
			}
			if h.firstSeq != s.nextSeq {
				return s.damage(off, fmt.Sprintf("block starts at seq %d, seq %d expected", h.firstSeq, s.nextSeq))
			}
			if h.prevMAC != s.prev {
				return s.damage(off, "block's prev MAC does not match the previous record's MAC")
			}
			if h.firstTime < s.last {
				return s.damage(off, "block time goes backwards")
			}
			// Entry slices are reused per pending block, like the
			// decompression buffers: fn sees entries only during the call.
			var ents []Entry
			if len(s.ents) > len(s.pend) {
				ents = s.ents[len(s.pend)][:0]
			}
			entries, err := parseEntries(s.path, int64(off), &h, payload, s.o, ents)
			if err != nil {
				return s.damage(off, reasonOf(err))
			}
			if len(s.ents) <= len(s.pend) {
				s.ents = append(s.ents, nil)
			}
			s.ents[len(s.pend)] = entries
			s.pend = append(s.pend, pendBlock{off: off, h: h, entries: entries})
			s.nextSeq += uint64(h.count)
			s.prev = entries[len(entries)-1].MAC
			s.last = h.lastTime
			off += n
		case frameCommit:
			if len(b)-off < CommitSize {
				return s.damage(off, "truncated commit frame")
			}
			if err := s.checkCommit(off); err != nil {
				return s.damage(off, reasonOf(err))
			}
			if err := s.commit(off + CommitSize); err != nil {
				return err
			}
			off += CommitSize
		case frameFooter:
			return s.footer(off)
		case 0:
			if len(s.pend) == 0 && allZero(b[off:]) {
				// A preallocated, never-written tail: the log ends here.
				s.res.ZeroTail = int64(len(b) - off)
				return nil
			}
			return s.damage(off, "zero bytes where a frame should start")
		default:
			return s.damage(off, fmt.Sprintf("unknown frame type %#x", b[off]))
		}
	}
	if len(s.pend) > 0 {
		return s.damage(off, "final batch has no commit frame")
	}
	return nil
}

// allZero reports whether every byte of b is zero.
func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func (s *scanner) checkCommit(off int) error {
	le := binary.LittleEndian
	fr := s.b[off : off+CommitSize]
	// Reserved bytes must be zero: bytes 20-23 lie outside the CRC, so
	// this check is what keeps every byte of a segment accounted for.
	if fr[1]|fr[2]|fr[3]|fr[20]|fr[21]|fr[22]|fr[23] != 0 {
		return errors.New("reserved commit frame bytes are not zero")
	}
	if covered := int(le.Uint32(fr[4:])); covered != off-s.good {
		return fmt.Errorf("commit frame covers %d bytes, %d lie since the previous commit", covered, off-s.good)
	}
	if got := crcUpdate(crc(s.b[s.good:off]), fr[:16]); got != le.Uint32(fr[16:]) {
		return fmt.Errorf("commit CRC %08x, computed %08x", le.Uint32(fr[16:]), got)
	}
	if len(s.pend) == 0 {
		return errors.New("commit frame with no block before it")
	}
	if last := le.Uint64(fr[8:]); last != s.nextSeq-1 {
		return fmt.Errorf("commit frame says last seq %d, blocks end at %d", last, s.nextSeq-1)
	}
	return nil
}

// commit makes the pending batch part of the committed state and hands its
// records to fn.
func (s *scanner) commit(end int) error {
	st := &s.res.State
	for _, pb := range s.pend {
		s.res.spans.block(int64(pb.off), &pb.h)
		if st.Count == 0 {
			st.FirstSeq = pb.h.firstSeq
			st.FirstTime = pb.h.firstTime
		}
		st.Count += uint64(pb.h.count)
		s.res.raw += int64(pb.h.rawLen)
		if s.fn != nil {
			span := s.res.spans.open.FirstSeq
			for _, e := range pb.entries {
				e.Span = span
				if err := s.fn(e); err != nil {
					return err
				}
			}
		}
		st.LastSeq = pb.h.firstSeq + uint64(pb.h.count) - 1
		st.LastTime = pb.h.lastTime
		st.LastMAC = pb.entries[len(pb.entries)-1].MAC
	}
	s.res.spans.commit(int64(end))
	s.res.prefix = s.prefix[:min(int64(len(s.prefix)), s.res.raw)]
	st.Size = int64(end)
	s.good = end
	s.pend = s.pend[:0]
	return nil
}

func (s *scanner) footer(off int) error {
	b := s.b
	if len(s.pend) > 0 {
		return s.damage(off, "footer follows blocks that have no commit frame")
	}
	tOff, ok := int64(-1), false
	if len(b)-off >= footerPrefix+TrailerSize {
		tOff, ok = parseTrailer(b[len(b)-TrailerSize:])
	}
	if !ok || tOff != int64(off) {
		return s.damage(off, "incomplete footer (a seal that did not finish)")
	}
	ft, err := parseFooter(s.path, int64(off), b[off:])
	if err != nil {
		return s.damage(off, reasonOf(err))
	}
	st := s.res.State
	lastSeq := st.LastSeq
	if st.Count == 0 {
		lastSeq = 0
	}
	switch {
	case ft.Count != st.Count, ft.FirstSeq != st.FirstSeq, ft.LastSeq != lastSeq:
		return corrupt(s.path, int64(off), lastSeq, "footer says %d records (seq %d..%d), the segment holds %d (seq %d..%d)", ft.Count, ft.FirstSeq, ft.LastSeq, st.Count, st.FirstSeq, lastSeq)
	case ft.LastMAC != st.LastMAC:
		return corrupt(s.path, int64(off), lastSeq, "footer's last MAC %s differs from the last record's MAC %s", ft.LastMAC, st.LastMAC)
	case ft.FirstTime != st.FirstTime || ft.LastTime != st.LastTime:
		return corrupt(s.path, int64(off), lastSeq, "footer's time range differs from the records'")
	}
	spans := s.res.spans.finish()
	if len(spans) != len(ft.Spans) {
		return corrupt(s.path, int64(off), 0, "footer indexes %d spans, the data holds %d", len(ft.Spans), len(spans))
	}
	for i := range spans {
		if spans[i] != ft.Spans[i] {
			return corrupt(s.path, int64(off), ft.Spans[i].FirstSeq, "footer span %d differs from the data", i)
		}
	}
	if sec, ok := ft.Sections[SectionBlocks]; ok {
		// Like the span index, the block index is a function of the
		// data: rebuilt, it must be the same bytes.
		rebuilt := s.res.spans.blocks.clone()
		if !bytes.Equal(sec, rebuilt.section()) {
			return corrupt(s.path, ft.SectionOffsets[SectionBlocks], 0, "footer's block index (section %d) differs from the data's blocks", SectionBlocks)
		}
	}
	s.res.Sealed = true
	s.res.Footer = ft
	return nil
}

// damage handles bytes at off that do not verify. If a later commit frame
// verifies, acknowledged data lies beyond the damage: that is corruption.
// Otherwise the bytes from the last good commit on are a torn tail.
func (s *scanner) damage(off int, reason string) error {
	if s.sealedFooter() {
		// A seal is written only after every batch was synced: in a
		// segment whose footer verifies, no damage can be a torn tail.
		return corrupt(s.path, int64(off), s.nextSeqAtGood(), "%s; the segment is sealed (its footer verifies), so these bytes were acknowledged", reason)
	}
	if q := laterCommit(s.b, s.good, off); q >= 0 {
		return corrupt(s.path, int64(off), s.nextSeqAtGood(), "%s; a valid commit frame at offset %d shows acknowledged data after it", reason, q)
	}
	s.res.TornAt = int64(s.good)
	s.res.TornReason = fmt.Sprintf("offset %d: %s", off, reason)
	s.pend = s.pend[:0]
	return nil
}

func (s *scanner) nextSeqAtGood() uint64 { return s.res.State.LastSeq + 1 }

// sealedFooter reports whether the file ends in a trailer and footer that
// verify.
func (s *scanner) sealedFooter() bool {
	b := s.b
	if len(b) < HeaderSize+footerPrefix+TrailerSize {
		return false
	}
	off, ok := parseTrailer(b[len(b)-TrailerSize:])
	if !ok || off < HeaderSize || off > int64(len(b)-TrailerSize-footerPrefix) {
		return false
	}
	_, err := parseFooter(s.path, off, b[off:])
	return err == nil
}

// laterCommit returns the offset of a commit frame after off whose CRC
// verifies over the bytes it covers, all of which lie at or after good; or
// -1. Crafted data full of commit-like bytes could make this search
// quadratic, so its CRC work is bounded; past the budget it answers as if
// a later commit had been found, failing closed: damage is then reported as
// corruption rather than cut back as a torn tail.
func laterCommit(b []byte, good, off int) int {
	le := binary.LittleEndian
	budget := 4*len(b) + 1<<20
	for q := off + 1; q+CommitSize <= len(b); q++ {
		if b[q] != frameCommit || b[q+1] != 0 || b[q+2] != 0 || b[q+3] != 0 {
			continue
		}
		covered := int(le.Uint32(b[q+4:]))
		start := q - covered
		if covered == 0 || start < good {
			continue
		}
		if budget -= covered; budget < 0 {
			return q
		}
		if crcUpdate(crc(b[start:q]), b[q:q+16]) == le.Uint32(b[q+16:]) {
			return q
		}
	}
	return -1
}

// Truncate cuts an active segment back to the end of its committed data,
// after keeping a copy of the whole file as <path>.broken-<unix-ns>, and
// syncs both the file and the directory. It returns the copy's name.
func Truncate(fs vfs.FS, path string, sr *ScanResult) (string, error) {
	if sr.Sealed {
		return "", fmt.Errorf("%w: %s", ErrSealed, path)
	}
	broken := fmt.Sprintf("%s.broken-%d", path, time.Now().UnixNano())
	if err := copyFile(fs, path, broken); err != nil {
		return "", fmt.Errorf("segment: keep %s before cutting its tail: %w", broken, err)
	}
	f, err := fs.OpenWrite(path)
	if err != nil {
		return "", fmt.Errorf("segment: open %s to cut its tail: %w", path, err)
	}
	defer f.Close()
	if err := f.Truncate(sr.State.Size); err != nil {
		return "", fmt.Errorf("segment: truncate %s to %d: %w", path, sr.State.Size, err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("segment: sync %s: %w", path, err)
	}
	if err := fs.SyncDir(dirOf(path)); err != nil {
		return "", fmt.Errorf("segment: sync directory of %s: %w", path, err)
	}
	sr.FileSize = sr.State.Size
	sr.TornAt = -1
	sr.ZeroTail = 0
	return broken, nil
}

func copyFile(fs vfs.FS, from, to string) error {
	b, err := vfs.ReadFile(fs, from)
	if err != nil {
		return err
	}
	f, err := fs.Create(to)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return fs.SyncDir(dirOf(to))
}

// reasonOf returns what a *CorruptError says was wrong, without its place,
// which the caller reports itself; other errors as they are.
func reasonOf(err error) string {
	var ce *CorruptError
	if errors.As(err, &ce) {
		return ce.Reason
	}
	return err.Error()
}
