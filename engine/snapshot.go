package engine

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

// What readers see of the log: an immutable snapshot of its segments and
// durable end, replaced (never changed) by the committer after every
// durable batch and every seal. Readers load it without a lock and never
// block the committer; see indexer for how it is published.

// snapshot is an immutable view of the log.
type snapshot struct {
	sealed []*segInfo // in order; shared between snapshots, append-only
	active *activeView
	// first and last seq the store holds (last is durable); first > last
	// when empty.
	first, last uint64
}

// activeView is the durable part of the active segment.
type activeView struct {
	seg     *segInfo
	state   segment.State
	spans   []segment.Span // closed spans: shared, never modified
	open    segment.Span
	hasOpen bool
}

// segInfo is one segment as readers see it. num, path and hdr never
// change; footer is set once, when the committer seals the segment, before
// a snapshot lists it as sealed.
type segInfo struct {
	num    uint64
	path   string
	hdr    segment.Header
	footer *segment.Footer // nil while active
	files  *segmentFiles

	mu     sync.Mutex // guards reader and purged
	reader *segment.Reader
	purged bool // removed by retention: never opened again
}

// segmentFiles opens segment readers on first use for every segInfo of an
// engine, and refuses to once the engine is closed.
type segmentFiles struct {
	fs     vfs.FS
	opts   *segment.Options
	closed atomic.Bool
}

// lastSeqOf returns the last seq of a sealed segment (its first seq - 1
// when empty).
func lastSeqOf(si *segInfo) uint64 {
	if si.footer.Count == 0 {
		return si.hdr.FirstSeq - 1
	}
	return si.footer.LastSeq
}

// locate returns the segment holding seq and its spans.
func (s *snapshot) locate(seq uint64) (*segInfo, []segment.Span) {
	if a := s.active; a != nil && seq >= a.seg.hdr.FirstSeq {
		if !a.hasOpen {
			return a.seg, a.spans
		}
		return a.seg, append(a.spans[:len(a.spans):len(a.spans)], a.open)
	}
	i := sort.Search(len(s.sealed), func(i int) bool { return lastSeqOf(s.sealed[i]) >= seq })
	if i == len(s.sealed) || s.sealed[i].hdr.FirstSeq > seq {
		return nil, nil
	}
	return s.sealed[i], s.sealed[i].footer.Spans
}

// segment returns the segment numbered num in the snapshot, or nil.
func (s *snapshot) segment(num uint64) *segInfo {
	if s.active != nil && s.active.seg.num == num {
		return s.active.seg
	}
	i := sort.Search(len(s.sealed), func(i int) bool { return s.sealed[i].num >= num })
	if i < len(s.sealed) && s.sealed[i].num == num {
		return s.sealed[i]
	}
	return nil
}

// readSpan reads the records of one span, with sc's buffers.
func (si *segInfo) readSpan(sp segment.Span, sc *segment.Scratch) ([]segment.Entry, error) {
	r, err := si.open()
	if err != nil {
		return nil, err
	}
	entries, err := r.ReadSpanScratch(sp, sc)
	if err != nil {
		if errors.Is(err, segment.ErrCorrupt) {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return nil, err // an I/O error names its file; it is not corruption
	}
	return entries, nil
}

func (si *segInfo) open() (*segment.Reader, error) {
	si.mu.Lock()
	defer si.mu.Unlock()
	if si.reader == nil {
		if si.files.closed.Load() {
			return nil, ErrClosed
		}
		if si.purged {
			return nil, fmt.Errorf("%w: segment %d was purged by retention", ErrNotFound, si.num)
		}
		r, err := segment.Open(si.files.fs, si.path, si.files.opts)
		if err != nil {
			return nil, err
		}
		si.reader = r
	}
	return si.reader, nil
}

func (si *segInfo) closeReader() {
	si.mu.Lock()
	defer si.mu.Unlock()
	if si.reader != nil {
		si.reader.Close()
		si.reader = nil
	}
}

// decode decodes one of the segment's entries, with the chain fields the
// encoding does not hold.
func (si *segInfo) decode(en segment.Entry) (vellum.Record, error) {
	var r vellum.Record
	if err := r.UnmarshalBinary(en.Record); err != nil {
		return r, fmt.Errorf("%w: %s offset %d seq %d: %w", ErrCorrupt, si.path, en.Offset, en.Seq, err)
	}
	r.KeyID = si.hdr.KeyID.String()
	r.PrevMAC = en.PrevMAC
	r.MAC = en.MAC
	return r, nil
}
