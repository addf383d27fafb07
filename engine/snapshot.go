package engine

import (
	"container/list"
	"errors"
	"fmt"
	"sort"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/index"
	"github.com/vellumlog/vellum/segment"
)

// What readers see of the log: an immutable snapshot of its segments and
// durable end, replaced (never changed) by the committer after every
// durable batch and every seal, and by a purge (indexer.dropSealed).
// Readers load it without a lock and never block the committer; see
// indexer for how it is published.

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
	// post holds the segment's postings, one per durable record from its
	// first; read under indexer.postMu (postings.go). Nil when unusable.
	post *index.PostingsBuilder
	// preallocated is the zero-filled room left in the file after the
	// durable data (Stats).
	preallocated int64
}

// segInfo is one segment as readers see it. num, path and hdr never
// change; footer, post and sums are set when the committer seals the
// segment (or recovery finds it sealed), before a snapshot lists it as
// sealed, and never change after.
type segInfo struct {
	num    uint64
	path   string
	hdr    segment.Header
	footer *segment.Footer // nil while active
	files  *segmentFiles
	// post is a sealed segment's postings (footer section 4), set with
	// footer; nil for a segment sealed without them (postings.go).
	post *index.Postings
	// sums are a sealed segment's span summaries (sums[i] of
	// footer.Spans[i]), the ones the time index holds; set with footer;
	// nil when its footer has none usable. The footer keeps no copy of
	// their section (postings.go, compactFooter).
	sums []index.Summary

	// Guarded by files.mu (files.go): the open reader, if any, its place
	// in the LRU of open readers, how many reads use it now, and whether
	// retention removed the segment (never opened again).
	reader *segment.Reader
	elem   *list.Element
	users  int
	purged bool
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
	r, err := si.files.acquire(si)
	if err != nil {
		return nil, err
	}
	defer si.files.release(si)
	entries, err := r.ReadSpanScratch(sp, sc)
	if err != nil {
		if errors.Is(err, segment.ErrCorrupt) {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return nil, err // an I/O error names its file; it is not corruption
	}
	return entries, nil
}

// readSpanFrom reads the records of one span from time from on, as many as
// want of them (segment.Reader.ReadSpanFrom), with sc's buffers.
func (si *segInfo) readSpanFrom(sp segment.Span, from int64, want int, sc *segment.Scratch) ([]segment.Entry, bool, error) {
	r, err := si.files.acquire(si)
	if err != nil {
		return nil, false, err
	}
	defer si.files.release(si)
	entries, more, err := r.ReadSpanFrom(sp, from, want, sc)
	if err != nil {
		return nil, false, corruptOr(err)
	}
	return entries, more, nil
}

// readBlockInfo returns what the blocks of one span hold, from their
// checked headers (segment.Reader.ReadBlockInfo), with sc's buffers.
func (si *segInfo) readBlockInfo(sp segment.Span, sc *segment.Scratch) ([]segment.BlockInfo, error) {
	r, err := si.files.acquire(si)
	if err != nil {
		return nil, err
	}
	defer si.files.release(si)
	bs, err := r.ReadBlockInfo(sp, sc)
	if err != nil {
		return nil, corruptOr(err)
	}
	return bs, nil
}

// markPurged closes the segment's reader and refuses to open it again:
// retention removed its file.
func (si *segInfo) markPurged() { si.files.purge(si) }

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
