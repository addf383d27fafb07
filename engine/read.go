package engine

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sort"
	"sync"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/segment"
)

// Get returns the record with sequence number seq, with KeyID, PrevMAC and
// MAC filled in. It fails with ErrNotFound for a seq the store does not hold.
func (e *Engine) Get(ctx context.Context, seq uint64) (vellum.Record, error) {
	if err := ctx.Err(); err != nil {
		return vellum.Record{}, err
	}
	s := e.snap.Load()
	if seq == 0 || seq < s.first || seq > s.last {
		return vellum.Record{}, fmt.Errorf("%w: seq %d (the store holds %d..%d)", ErrNotFound, seq, s.first, s.last)
	}
	si, spans := s.locate(seq)
	if si == nil {
		return vellum.Record{}, fmt.Errorf("%w: seq %d", ErrNotFound, seq)
	}
	i := sort.Search(len(spans), func(i int) bool { return spans[i].LastSeq() >= seq })
	if i == len(spans) {
		return vellum.Record{}, fmt.Errorf("%w: seq %d", ErrNotFound, seq)
	}
	entries, err := si.readSpan(e, spans[i])
	if err != nil {
		return vellum.Record{}, err
	}
	for _, en := range entries {
		if en.Seq == seq {
			return decodeEntry(si, en)
		}
	}
	return vellum.Record{}, fmt.Errorf("%w: seq %d missing from its span in %s", ErrCorrupt, seq, si.path)
}

// Scan yields the records with seq in [from, to] in order; to = 0 means up
// to the last durable record when the scan starts. Records appended during
// the scan are not included. The iteration stops at the first error, which
// it yields.
func (e *Engine) Scan(ctx context.Context, from, to uint64) iter.Seq2[vellum.Record, error] {
	return func(yield func(vellum.Record, error) bool) {
		for r, err := range e.scan(from, to) {
			if err == nil {
				err = ctx.Err()
			}
			if !yield(r, err) || err != nil {
				return
			}
		}
	}
}

func (e *Engine) scan(from, to uint64) iter.Seq2[vellum.Record, error] {
	return func(yield func(vellum.Record, error) bool) {
		for si, en := range e.scanEntries(from, to) {
			if en.Record == nil {
				yield(vellum.Record{}, en.err)
				return
			}
			r, err := decodeEntry(si, en.Entry)
			if !yield(r, err) || err != nil {
				return
			}
		}
	}
}

// rawEntry is a stored record before decoding, or an error (Record nil).
type rawEntry struct {
	segment.Entry
	err error
}

// scanEntries yields the stored records with seq in [from, to] (to = 0: the
// last durable one) without decoding them. An entry is valid only until the
// next one is yielded. A failure is yielded as an entry with a nil Record
// and err set, and ends the iteration.
func (e *Engine) scanEntries(from, to uint64) iter.Seq2[*segInfo, rawEntry] {
	return func(yield func(*segInfo, rawEntry) bool) {
		s := e.snap.Load()
		if to == 0 || to > s.last {
			to = s.last
		}
		if from < s.first {
			from = s.first
		}
		sc := scratchPool.Get().(*segment.Scratch)
		defer scratchPool.Put(sc)
		for seq := from; seq <= to; {
			si, spans := s.locate(seq)
			i := sort.Search(len(spans), func(i int) bool { return spans[i].LastSeq() >= seq })
			if si == nil || i == len(spans) {
				yield(nil, rawEntry{err: fmt.Errorf("%w: seq %d is in no segment's index", ErrCorrupt, seq)})
				return
			}
			// Read spans until this segment is done; the next turn of the
			// outer loop locates the next segment.
			for ; i < len(spans) && seq <= to; i++ {
				entries, err := si.readSpanScratch(e, spans[i], sc)
				if err != nil {
					yield(si, rawEntry{err: err})
					return
				}
				for _, en := range entries {
					if en.Seq < seq || en.Seq > to {
						continue
					}
					if !yield(si, rawEntry{Entry: en}) {
						return
					}
				}
				seq = spans[i].LastSeq() + 1
			}
		}
	}
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

func (si *segInfo) readSpan(e *Engine, sp segment.Span) ([]segment.Entry, error) {
	return si.readSpanScratch(e, sp, &segment.Scratch{})
}

// scratchPool recycles span-read buffers across queries.
var scratchPool = sync.Pool{New: func() any { return new(segment.Scratch) }}

func (si *segInfo) readSpanScratch(e *Engine, sp segment.Span, sc *segment.Scratch) ([]segment.Entry, error) {
	r, err := si.open(e)
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

func (si *segInfo) open(e *Engine) (*segment.Reader, error) {
	si.rmu.Lock()
	defer si.rmu.Unlock()
	if si.reader == nil {
		if e.filesClosed.Load() {
			return nil, ErrClosed
		}
		r, err := segment.Open(e.fs, si.path, e.opts.segmentOptions())
		if err != nil {
			return nil, err
		}
		si.reader = r
	}
	return si.reader, nil
}

func decodeEntry(si *segInfo, en segment.Entry) (vellum.Record, error) {
	var r vellum.Record
	if err := r.UnmarshalBinary(en.Record); err != nil {
		return r, fmt.Errorf("%w: %s offset %d seq %d: %w", ErrCorrupt, si.path, en.Offset, en.Seq, err)
	}
	r.KeyID = si.hdr.KeyID.String()
	r.PrevMAC = en.PrevMAC
	r.MAC = en.MAC
	return r, nil
}
