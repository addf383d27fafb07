package engine

import (
	"context"
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
	s := e.index.snapshot()
	if seq == 0 || seq < s.first || seq > s.last {
		return vellum.Record{}, fmt.Errorf("%w: seq %d (the store holds %d..%d)", ErrNotFound, seq, s.first, s.last)
	}
	si, spans := s.locate(seq)
	i := sort.Search(len(spans), func(i int) bool { return spans[i].LastSeq() >= seq })
	if si == nil || i == len(spans) {
		return vellum.Record{}, fmt.Errorf("%w: seq %d", ErrNotFound, seq)
	}
	entries, err := si.readSpan(spans[i], &segment.Scratch{})
	if err != nil {
		return vellum.Record{}, err
	}
	for _, en := range entries {
		if en.Seq == seq {
			return si.decode(en)
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
		for si, en := range scanEntries(e.index.snapshot(), from, to) {
			if en.Record == nil {
				yield(vellum.Record{}, en.err)
				return
			}
			r, err := si.decode(en.Entry)
			if err == nil {
				err = ctx.Err()
			}
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

// scratchPool recycles span-read buffers across scans and queries.
var scratchPool = sync.Pool{New: func() any { return new(segment.Scratch) }}

// scanEntries yields the stored records of snapshot s with seq in [from,
// to] (to = 0: its last durable one) without decoding them. An entry is
// valid only until the next one is yielded. A failure is yielded as an
// entry with a nil Record and err set, and ends the iteration.
func scanEntries(s *snapshot, from, to uint64) iter.Seq2[*segInfo, rawEntry] {
	return func(yield func(*segInfo, rawEntry) bool) {
		if to == 0 || to > s.last {
			to = s.last
		}
		from = max(from, s.first)
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
				entries, err := si.readSpan(spans[i], sc)
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
