package engine

import (
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/vellumlog/vellum/index"
	"github.com/vellumlog/vellum/segment"
)

// indexer keeps what readers find records by, and changes it in one step:
// the snapshot of the log (segments and durable end) and the time index of
// closed spans with their summaries (package index), which queries walk to
// skip spans that cannot match.
//
// Who owns what:
//   - mu guards idx and orders every snapshot swap with the index change
//     that goes with it, so a query that loads the snapshot and walks the
//     index under mu.RLock sees the two agree. Readers that need no index
//     (Get, Scan, proofs) load snap without mu.
//   - pend, pendFirst, sums and lastSum are the active segment's summary
//     state. They belong to the committer's flusher (committer.flushing:
//     the flush loop, or an appending goroutine writing its own batch),
//     which calls noteKeys, publish and the postings' queuePostings and
//     handPostings; the flush loop alone seals (sealSection, sealed,
//     postingsSection), and Open uses all of it before the loop starts.
//     Readers call snapshot, querySnapshot, ascend and descend; a purge
//     calls dropSealed (purged.go), under mu.
type indexer struct {
	log *slog.Logger

	mu     sync.RWMutex
	idx    *index.Index
	snap   atomic.Pointer[snapshot]
	notify notifier // wakes tailing readers (replication) at every publish

	// The summary keys of durable active-segment records whose span is
	// still open (pend[i] is seq pendFirst+i), the summaries of the
	// active segment's closed spans (written into its footer at seal), and
	// the summary of its last span while a seal is under way.
	pend      []index.Keys
	pendFirst uint64
	sums      []index.Summary
	lastSum   *index.Summary

	// post holds the active segment's postings (postings.go). The
	// pointer is set at open and by the flush loop at seal (under mu),
	// and read by the flusher (publish, queuePostings, which hands it to
	// the postings goroutine with each job). The builder's contents are changed
	// under postMu by the postings goroutine and read under
	// postMu.RLock by queries: not under mu, so that publishing never
	// waits for a batch being added. A new builder starts with each
	// segment, so a reader holding an older snapshot keeps a consistent
	// one.
	post       *index.PostingsBuilder
	postMu     sync.RWMutex
	postWarned *index.PostingsBuilder // whoever adds postings (addPostings): a builder found out of step
	noPostings bool                   // Options.NoPostings
	// cache holds sealed segments' lists decoded for queries and counts
	// (plan.go, count.go); safe for concurrent use.
	cache *index.Cache

	// The postings goroutine (postings.go) adds durable batches to post
	// off the commit path; postCh is nil before it starts and after it
	// stops, and then batches are added at once.
	postCh   chan postJob
	postDone chan struct{}
	// postPend gathers small batches for the postings goroutine
	// (queuePostings); the flusher's.
	postPend postJob
	postFree chan postSlices // gathered jobs' slices, given back by the postings goroutine
	postHook func()          // tests: called before each job
	// postBusy counts the jobs sent to the postings goroutine and not yet
	// applied: while it is 0, the flusher applies a small job itself
	// (handPostings).
	postBusy atomic.Int32
}

func newIndexer(log *slog.Logger) *indexer {
	ix := &indexer{log: log, idx: index.New(), post: &index.PostingsBuilder{}}
	ix.snap.Store(&snapshot{first: 1})
	return ix
}

// snapshot returns the latest snapshot, for readers that need no index.
func (ix *indexer) snapshot() *snapshot { return ix.snap.Load() }

// ascend calls visit with the index entries from time lo on, in order,
// under the read lock, together with the snapshot they agree with.
func (ix *indexer) ascend(lo int64, visit func(*index.Entry) bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	ix.idx.Ascend(lo, visit)
}

// descend is ascend backwards from time hi.
func (ix *indexer) descend(hi int64, visit func(*index.Entry) bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	ix.idx.Descend(hi, visit)
}

// querySnapshot returns the snapshot whose spans the index holds.
func (ix *indexer) querySnapshot() *snapshot {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.snap.Load()
}

// activeIndex is what recovery rebuilt of the active segment's index: the
// summaries of its closed spans (sums[i] is spans[i]'s) and the keys of the
// records of its open span, the last of spans, from seq keysFirst on.
type activeIndex struct {
	spans     []segment.Span
	sums      []index.Summary
	keys      []index.Keys
	keysFirst uint64
	post      *index.PostingsBuilder // its postings, rebuilt from its records
}

// restore sets up the index when the store opens: every sealed segment's
// spans with the summaries from its footer, and what recovery rebuilt of
// the active segment numbered seg. The snapshot lists the sealed segments;
// the committer publishes the active one.
func (ix *indexer) restore(sealed []*segInfo, seg uint64, active activeIndex) {
	for _, si := range sealed {
		ix.addSealed(si)
	}
	for i, sum := range active.sums {
		ix.idx.Add(&index.Entry{Seg: seg, Span: active.spans[i], Sum: sum})
	}
	ix.sums = active.sums
	ix.pend, ix.pendFirst = slices.Clone(active.keys), active.keysFirst
	ix.post = active.post
	if ix.post == nil {
		ix.post = &index.PostingsBuilder{}
	}
	s := &snapshot{sealed: sealed, first: 1}
	if len(sealed) > 0 {
		s.first = sealed[0].hdr.FirstSeq
		s.last = lastSeqOf(sealed[len(sealed)-1])
	}
	ix.snap.Store(s)
}

// addSealed adds a sealed segment's spans, with the summaries from its
// footer (si.sums), to the index. A footer without usable summaries is
// indexed with unknown summaries: queries then read its spans.
func (ix *indexer) addSealed(si *segInfo) {
	spans, sums := si.footer.Spans, si.sums
	for i, sp := range spans {
		en := &index.Entry{Seg: si.num, Span: sp}
		if sums != nil {
			en.Sum = sums[i]
		}
		ix.idx.Add(en)
	}
}

// noteKeys records the summary keys of a durable batch's new records,
// which start at seq first.
func (ix *indexer) noteKeys(first uint64, keys []*index.Keys) {
	if len(keys) == 0 {
		return
	}
	if len(ix.pend) == 0 {
		ix.pendFirst = first
	}
	for _, k := range keys {
		ix.pend = append(ix.pend, *k)
	}
}

// publish makes the active segment's durable state visible to readers: it
// indexes the spans that closed since the last call and swaps the snapshot,
// in one step under mu.
func (ix *indexer) publish(seg *segInfo, w *segment.Writer) {
	closed, open, hasOpen := w.SpanView()
	st := w.State()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.indexClosedSpans(seg.num, closed)
	old := ix.snap.Load()
	first := old.first
	if len(old.sealed) == 0 {
		first = seg.hdr.FirstSeq
	}
	// The snapshot and its active view in one allocation: one per batch,
	// which for serial appends is one per record (issue 14).
	n := &activeSnapshot{
		snap: snapshot{sealed: old.sealed, first: first, last: st.LastSeq},
		view: activeView{seg: seg, state: st, spans: closed, open: open, hasOpen: hasOpen, post: ix.post,
			preallocated: w.Preallocated()},
	}
	n.snap.active = &n.view
	ix.snap.Store(&n.snap)
	ix.notify.wake()
}

// activeSnapshot is a snapshot with an active segment and its view, as
// publish makes them.
type activeSnapshot struct {
	snap snapshot
	view activeView
}

// indexClosedSpans summarizes the active segment's spans that closed since
// the last call and adds them to the index. The caller holds mu.
func (ix *indexer) indexClosedSpans(seg uint64, closed []segment.Span) {
	for j := len(ix.sums); j < len(closed); j++ {
		sum := ix.summarize(closed[j])
		ix.sums = append(ix.sums, sum)
		ix.idx.Add(&index.Entry{Seg: seg, Span: closed[j], Sum: sum})
	}
}

// summarize builds the summary of span sp from the pending keys, which must
// start at its first seq, and drops them.
func (ix *indexer) summarize(sp segment.Span) index.Summary {
	n := int(sp.Count)
	if len(ix.pend) < n || ix.pendFirst != sp.FirstSeq {
		// Keys missing (cannot happen unless a bug): an unknown summary
		// is always correct, only slower.
		ix.pend, ix.pendFirst = nil, sp.LastSeq()+1
		return index.Summary{}
	}
	var b index.Builder
	for i := range n {
		b.Add(&ix.pend[i])
	}
	// Move the open span's keys to the front rather than reslice: the
	// array is then reused, where a resliced one lost the room of every
	// span summarized and noteKeys kept reallocating it. A span is about
	// 64 KiB of records, so this copies less than a span's keys.
	ix.pend = ix.pend[:copy(ix.pend, ix.pend[n:])]
	ix.pendFirst += uint64(n)
	if cap(ix.pend) > 4*len(ix.pend)+1024 {
		ix.pend = append([]index.Keys(nil), ix.pend...)
	}
	return b.Build()
}

// sealSection returns the footer section of the active segment's span
// summaries, for its seal: the closed spans' and the open span's, which is
// the segment's last. The open span is indexed once the seal succeeds
// (sealed).
func (ix *indexer) sealSection(seg *segInfo, w *segment.Writer) ([]byte, []index.Summary) {
	closed, open, hasOpen := w.SpanView()
	ix.mu.Lock()
	ix.indexClosedSpans(seg.num, closed)
	ix.mu.Unlock()
	sums := ix.sums
	if hasOpen {
		last := ix.summarize(open)
		ix.lastSum = &last
		sums = append(sums[:len(sums):len(sums)], last)
	}
	return index.MarshalSummaries(sums), sums
}

// sealed records that the active segment seg was sealed with footer ft: its
// last span joins the index, it joins the snapshot's sealed segments, and
// the snapshot has no active segment until the next one is published.
func (ix *indexer) sealed(seg *segInfo, ft *segment.Footer) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.lastSum != nil && len(ft.Spans) > 0 {
		ix.idx.Add(&index.Entry{Seg: seg.num, Span: ft.Spans[len(ft.Spans)-1], Sum: *ix.lastSum})
	}
	ix.pend, ix.pendFirst, ix.sums, ix.lastSum = nil, 0, nil, nil
	ix.postMu.RLock()
	ix.post = ix.post.Next() // sized as the sealed segment's lists
	ix.postMu.RUnlock()
	old := ix.snap.Load()
	ix.snap.Store(&snapshot{sealed: append(old.sealed, seg), first: old.first, last: old.last})
}
