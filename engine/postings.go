package engine

// Record-level postings (segment/FORMAT.md, "Postings"; package index):
// the active segment's are built in memory as its records become durable,
// written into its footer (section 4) at seal and rebuilt from its records
// on open; a sealed segment's are parsed from its footer on open, and only
// their key tables stay in memory: lists are read from the file when a
// query needs them (plan.go).

import (
	"bytes"
	"log/slog"
	"maps"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/index"
	"github.com/vellumlog/vellum/segment"
)

// postJob is a durable batch for the postings goroutine, or, with done
// set, a barrier it closes once every earlier job is applied.
type postJob struct {
	post  *index.PostingsBuilder // the active segment's builder when the batch was queued
	seg   *segInfo
	first uint64
	keys  []*index.Keys // the records' summary keys
	encs  [][]byte      // their encodings, in the same order
	done  chan struct{}
	// gathered is set on a job queuePostings gathered from small
	// batches: its slices are the indexer's, given back once applied.
	gathered bool
}

// postSlices are the slices of a gathered job, kept for the next.
type postSlices struct {
	keys []*index.Keys
	encs [][]byte
}

// startPostings starts the goroutine that adds durable batches to the
// active segment's postings, so that the commit path only queues them.
// Queries read what is not indexed yet from its spans (plan.go).
func (ix *indexer) startPostings() {
	if ix.noPostings {
		return
	}
	ix.postCh, ix.postDone = make(chan postJob, 256), make(chan struct{})
	ix.postFree = make(chan postSlices, 4)
	go func(ch chan postJob) {
		defer close(ix.postDone)
		for j := range ch {
			if ix.postHook != nil {
				ix.postHook()
			}
			if j.done != nil {
				close(j.done)
			} else {
				ix.applyJob(j)
			}
			ix.postBusy.Add(-1)
		}
	}(ix.postCh)
}

// applyJob adds a job's records to its postings and gives a gathered
// job's slices back for the next.
func (ix *indexer) applyJob(j postJob) {
	ix.addPostings(j.post, j.seg, j.first, j.keys, j.encs)
	if j.gathered {
		// Cleared, so as not to hold the records; kept for the next
		// gathered job (none is made while 4 wait).
		clear(j.keys)
		clear(j.encs)
		select {
		case ix.postFree <- postSlices{j.keys[:0], j.encs[:0]}:
		default:
		}
	}
}

// postInline is the most records of a job the flusher adds itself when
// the postings goroutine has nothing queued (handPostings): a serial
// caller's record then costs its few postings (a microsecond or two)
// instead of waking the postings goroutine, which cost the caller more
// on a two-core machine (PERFORMANCE.md, serial appends).
const postInline = 16

// stopPostings applies what is queued and stops the goroutine, once the
// committer has stopped.
func (ix *indexer) stopPostings() {
	if ix.postCh != nil {
		ix.handPostings()
		close(ix.postCh)
		<-ix.postDone
		ix.postCh = nil
	}
}

// postCoalesce is how many records of small durable batches are gathered
// into one job for the postings goroutine while more records are waiting
// to be written. Adding a few records at a time finds the builder's tables
// gone from the caches (a thousand callers' stacks pass through them
// between two batches of ten records) and pays a wake-up for each batch;
// several hundred at a time keep the few keys of tenant, action, tool,
// model and outcome in the nearest cache. Records not added yet are read
// from the active segment's spans by queries (plan.go), so this bounds
// how many that can be.
const postCoalesce = 512

// queuePostings hands a durable batch's new records, which start at seq
// first of the active segment seg, to the postings goroutine: their
// summary keys and encodings, which it reads the values from. A batch of
// fewer than postCoalesce records is gathered with the next ones until
// that many are (handPostings hands them over sooner, when no records
// wait). A full queue (256 jobs behind) makes the flusher wait, which
// bounds memory. The flusher only.
func (ix *indexer) queuePostings(seg *segInfo, first uint64, keys []*index.Keys, encs [][]byte) {
	switch {
	case ix.noPostings || len(encs) == 0:
	case ix.postCh == nil:
		ix.handPostings()
		ix.addPostings(ix.post, seg, first, keys, encs)
	default:
		p := &ix.postPend
		if len(p.encs) > 0 && (p.post != ix.post || p.first+uint64(len(p.encs)) != first) {
			ix.handPostings() // not the records these follow: never merged
		}
		if len(p.encs) == 0 && len(encs) >= postCoalesce {
			ix.postBusy.Add(1)
			ix.postCh <- postJob{post: ix.post, seg: seg, first: first, keys: keys, encs: encs}
			return
		}
		if len(p.encs) == 0 {
			// The batch's own slices, until a second batch joins.
			*p = postJob{post: ix.post, seg: seg, first: first, keys: keys, encs: encs}
			return
		}
		if !p.gathered {
			k, e := p.keys, p.encs
			select {
			case s := <-ix.postFree:
				p.keys, p.encs = s.keys, s.encs
			default:
				p.keys, p.encs = make([]*index.Keys, 0, 2*postCoalesce), make([][]byte, 0, 2*postCoalesce)
			}
			p.keys, p.encs, p.gathered = append(p.keys, k...), append(p.encs, e...), true
		}
		p.keys, p.encs = append(p.keys, keys...), append(p.encs, encs...)
		if len(p.encs) >= postCoalesce {
			ix.handPostings()
		}
	}
}

// handPostings hands the records gathered by queuePostings to the
// postings goroutine. The flusher calls it when no records wait to be
// written, so that an idle store's postings are complete. The flusher
// only.
func (ix *indexer) handPostings() {
	p := &ix.postPend
	if len(p.encs) == 0 {
		return
	}
	j := *p
	*p = postJob{}
	// Without the goroutine, or with nothing queued for it (every earlier
	// job applied: the builder takes records in seq order), a small job is
	// applied here. A test's hook holds the goroutine back: then every job
	// goes through it.
	if ix.postCh == nil || (len(j.encs) <= postInline && ix.postHook == nil && ix.postBusy.Load() == 0) {
		ix.applyJob(j)
		return
	}
	ix.postBusy.Add(1)
	ix.postCh <- j
}

// syncPostings waits until every queued batch is in the postings. Flush
// loop only.
func (ix *indexer) syncPostings() {
	ix.handPostings()
	if ix.postCh != nil {
		d := make(chan struct{})
		ix.postBusy.Add(1)
		ix.postCh <- postJob{done: d}
		<-d
	}
}

// postAddChunk is how many records addPostings adds per hold of postMu,
// so that a query waits at most for that many (tens of microseconds).
const postAddChunk = 256

// addPostings adds a durable batch's new records, which start at seq
// first, to the active segment seg's postings post: their values read
// from their encodings (encs), the exact fields' hashes taken from their
// summary keys (keys), which the appending goroutines computed. The
// postings goroutine (or the flush loop before it starts and after it
// stops); it holds postMu, which queries take to read the builder, a
// chunk of records at a time. A builder out of step with the batches (a
// bug) is left as it is: queries read the records it lacks from the spans,
// and the seal writes no section 4 (postingsSection).
func (ix *indexer) addPostings(post *index.PostingsBuilder, seg *segInfo, first uint64, keys []*index.Keys, encs [][]byte) {
	if len(encs) == 0 || ix.noPostings || post == nil {
		return
	}
	if want := seg.hdr.FirstSeq + uint64(post.Len()); first != want {
		// Cannot happen unless a bug: without postings, queries read the
		// segment's spans, which is always correct, only slower.
		if ix.postWarned != post {
			ix.postWarned = post
			ix.log.Warn("active segment postings out of step; queries will read its spans", slog.String("segment", seg.path),
				slog.Uint64("seq", first), slog.Uint64("expected", want))
		}
		return
	}
	var f vellum.Fields
	for c := 0; c < len(encs); c += postAddChunk {
		ix.postMu.Lock()
		for i := c; i < min(c+postAddChunk, len(encs)); i++ {
			if err := vellum.PeekFields(encs[i], &f); err != nil {
				// The engine's own encoding (cannot happen unless a bug):
				// the builder stops here, out of step, as above.
				ix.postMu.Unlock()
				ix.log.Warn("active segment postings stopped; queries will read its spans", slog.String("segment", seg.path),
					slog.Uint64("seq", first+uint64(i)), slog.String("error", err.Error()))
				return
			}
			var k *index.Keys
			if i < len(keys) {
				k = keys[i]
			}
			post.AddKeyed(&f, k)
		}
		ix.postMu.Unlock()
	}
}

// postingsSection returns footer section 4 for the active segment's seal,
// or nil when its postings do not cover exactly its count records. Flush
// loop only: it first waits for the postings goroutine.
func (ix *indexer) postingsSection(count uint64) []byte {
	ix.syncPostings()
	ix.postMu.RLock()
	defer ix.postMu.RUnlock()
	if ix.noPostings || ix.post == nil || uint64(ix.post.Len()) != count {
		return nil
	}
	return ix.post.Marshal()
}

// compactFooter keeps in memory what readers need of a sealed segment's
// footer sections, once, and not the sections themselves: it parses
// section 4 into si.post (the postings' lists stay on disk) and, unless
// the seal already set them, the span summaries into si.sums, and
// replaces si.footer by a copy without those two sections whose others
// (the Merkle section) no longer share the footer's buffer. A section that
// does not parse is logged and left unused: queries then read the
// segment's spans (vellum verify reports it).
func compactFooter(si *segInfo, log *slog.Logger) {
	ft := *si.footer
	if b, ok := ft.Sections[segment.SectionSummaries]; ok && si.sums == nil {
		sums, err := index.UnmarshalSummaries(b, len(ft.Spans))
		if err != nil {
			log.Warn("segment summaries unusable; queries will read its spans", slog.String("segment", si.path), slog.String("error", err.Error()))
		} else {
			si.sums = sums
		}
	}
	sec, ok := ft.Sections[index.SectionPostings]
	if ok {
		p, err := index.ParsePostings(sec, ft.Count)
		if err != nil {
			log.Warn("segment postings unusable; queries will read its spans", slog.String("segment", si.path), slog.String("error", err.Error()))
		} else {
			p.SetBase(ft.SectionOffsets[index.SectionPostings])
			si.post = p
		}
	}
	ft.Sections = make(map[uint16][]byte, len(si.footer.Sections))
	for typ, b := range si.footer.Sections {
		if typ != index.SectionPostings && typ != segment.SectionSummaries {
			ft.Sections[typ] = bytes.Clone(b)
		}
	}
	ft.SectionOffsets = maps.Clone(si.footer.SectionOffsets)
	si.footer = &ft
	si.files.mu.Lock()
	if si.reader != nil {
		si.reader.DropSections() // its footer buffer holds the postings
	}
	si.files.mu.Unlock()
}

// readAt returns a ReadAt on the segment's file, for its postings.
func (si *segInfo) readAt() index.ReadAt {
	return func(b []byte, off int64) error {
		r, err := si.files.acquire(si)
		if err != nil {
			return err
		}
		defer si.files.release(si)
		return r.ReadAt(b, off)
	}
}

// readBlocks reads the blocks of span sp that hold seqs, with sc's buffers.
func (si *segInfo) readBlocks(sp segment.Span, seqs []uint64, sc *segment.Scratch) ([]segment.Entry, error) {
	r, err := si.files.acquire(si)
	if err != nil {
		return nil, err
	}
	defer si.files.release(si)
	entries, err := r.ReadBlocks(sp, seqs, sc)
	if err != nil {
		return nil, corruptOr(err)
	}
	return entries, nil
}
