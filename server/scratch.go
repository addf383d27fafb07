package server

import (
	"sync"

	"github.com/vellumlog/vellum"
)

// ingestScratch is what decoding one ingest request allocates — the
// records, the arena their strings live in, the events' offsets and the
// records' attribute maps — kept for the next request once the store has
// encoded the records (ingestRecords with a preparer: the engine keeps
// only the encodings and keys of its own, never the records' strings or
// maps). In batches of 1,000 these were ~1.5 KB per event, about half of
// what the server allocated per event, and so a large share of its GC.
//
// A scratch is used by one request at a time. The invariant between uses:
// recs[:cap(recs)] are zero records, so the fast decoder fills them
// without re-zeroing; maps are empty.
type ingestScratch struct {
	arena  []byte
	recs   []vellum.Record
	starts []int
	maps   []map[string]string
}

var scratches = sync.Pool{New: func() any { return new(ingestScratch) }}

// Bounds on what a pooled scratch keeps, so that one unusual request does
// not pin its memory for the life of the process: the arena of a body up
// to maxPooledBody (as bodyBufs), records and maps of up to
// maxPooledEvents events.
const maxPooledEvents = 4096

func getScratch() *ingestScratch { return scratches.Get().(*ingestScratch) }

// attrs returns an empty attribute map: one of an earlier request's, or a
// new one.
func (sc *ingestScratch) attrs() map[string]string {
	if sc != nil {
		if n := len(sc.maps); n > 0 {
			m := sc.maps[n-1]
			sc.maps[n-1] = nil
			sc.maps = sc.maps[:n-1]
			return m
		}
	}
	return make(map[string]string, 1)
}

// release takes back recs (as decoded into sc, or any records the caller
// owns and will not read again) and starts, and returns sc to the pool.
// Only a caller whose records nothing refers to any more may release: on
// an error path the scratch is simply dropped.
func (sc *ingestScratch) release(recs []vellum.Record, starts []int) {
	sc.reset(recs, starts)
	scratches.Put(sc)
}

// reset is release without returning sc to the pool.
func (sc *ingestScratch) reset(recs []vellum.Record, starts []int) {
	if len(recs) <= maxPooledEvents {
		for i := range recs {
			if m := recs[i].Attributes; m != nil && len(m) <= 8 && len(sc.maps) < maxPooledEvents {
				clear(m)
				sc.maps = append(sc.maps, m)
			}
		}
		if cap(recs) <= maxPooledEvents && cap(recs) >= cap(sc.recs) {
			clear(recs[:cap(recs)])
			sc.recs = recs[:0]
		}
	}
	if cap(starts) <= maxPooledEvents && cap(starts) >= cap(sc.starts) {
		sc.starts = starts[:0]
	}
	if cap(sc.arena) > maxPooledBody {
		sc.arena = nil
	}
}
