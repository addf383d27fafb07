package engine

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/index"
	"github.com/vellumlog/vellum/query"
	"github.com/vellumlog/vellum/segment"
)

// candidateBatch is how many spans a query takes from the index per turn of
// the index lock, so that queries never hold the lock during I/O and never
// delay the committer's publishing for long.
const candidateBatch = 32

// visitBatch bounds the spans a query looks at per turn of the index lock,
// counting those its summaries rule out.
const visitBatch = 4096

type candidate struct {
	seg  uint64
	span segment.Span
}

// Query answers q from the time index: it walks the spans that overlap q's
// time range in q's order, skips those whose summaries rule out q's
// filters, and reads, filters and decodes the rest until it has q.Limit
// records. Records are those durable when the query starts; paging with
// Page.Next (q.After) is stable while appends continue, because positions
// only grow; q.MaxSeq, when set, bounds it to the log as it stood at the
// first page. q is normalized first; an invalid q returns a *query.ParamError.
func (e *Engine) Query(ctx context.Context, q query.Query) (query.Page, error) {
	if err := q.Normalize(); err != nil {
		return query.Page{}, err
	}
	lo, hi := q.Bounds()
	if q.After != nil {
		if q.Desc {
			hi = min(hi, q.After.Time+1)
		} else {
			lo = max(lo, q.After.Time)
		}
	}
	if lo >= hi {
		return query.Page{}, nil
	}
	qr := &queryRun{e: e, q: &q, lo: lo, hi: hi, sc: scratchPool.Get().(*segment.Scratch)}
	defer scratchPool.Put(qr.sc)
	qr.snap = e.index.querySnapshot()
	qr.last = qr.snap.last
	if q.MaxSeq != 0 && q.MaxSeq < qr.last {
		qr.last = q.MaxSeq // the cursor's high-water seq bounds every page
	}
	a := qr.snap.active
	qr.openFirst = qr.snap.last + 1
	if a != nil && a.hasOpen {
		qr.openFirst = a.open.FirstSeq
	}
	var err error
	switch {
	case usesPostings(&q) && !e.opts.NoPostings:
		err = qr.walkPostings(ctx) // plan.go
	case q.Desc:
		if a != nil && a.hasOpen {
			err = qr.span(ctx, a.seg, a.open)
		}
		if err == nil && !qr.full() {
			err = qr.walkIndex(ctx, false)
		}
	default:
		err = qr.walkIndex(ctx, true)
		if err == nil && !qr.full() && a != nil && a.hasOpen {
			err = qr.span(ctx, a.seg, a.open)
		}
	}
	if err != nil {
		return query.Page{}, err
	}
	page := query.Page{Records: qr.out}
	if qr.full() {
		last := query.PositionOf(&qr.out[len(qr.out)-1])
		page.Next = &last
	}
	return page, nil
}

type queryRun struct {
	e         *Engine
	q         *query.Query
	lo, hi    int64
	snap      *snapshot
	last      uint64 // no record after this seq: the snapshot's, or q.MaxSeq
	openFirst uint64 // spans from here on are newer than the snapshot's index view
	minSeq    uint64 // no record before this seq (plan.go's tail of the active segment)
	out       []vellum.Record
	f         vellum.Fields
	sc        *segment.Scratch
	ords      []uint32 // plan.go's buffers, reused across segments
	seqs      []uint64
}

func (qr *queryRun) full() bool { return len(qr.out) >= qr.q.Limit }

// walkIndex reads the indexed spans in order, a batch of candidates per
// turn of the index lock.
func (qr *queryRun) walkIndex(ctx context.Context, asc bool) error {
	lo, hi := qr.lo, qr.hi
	for !qr.full() {
		var cands []candidate
		done := true
		visited := 0
		visit := func(en *index.Entry) bool {
			sp := en.Span
			if asc && (sp.FirstTime >= hi || sp.FirstSeq >= qr.openFirst || sp.FirstSeq > qr.last) {
				return false
			}
			if !asc && sp.LastTime < lo {
				return false
			}
			if sp.FirstSeq >= qr.openFirst {
				return true // newer than the snapshot: the open span covers it
			}
			if len(cands) == candidateBatch || visited == visitBatch {
				done = false
				return false
			}
			visited++
			if en.Sum.MayMatch(qr.q) {
				cands = append(cands, candidate{en.Seg, sp})
			}
			// Resume after this span next turn.
			if asc {
				lo = sp.LastTime + 1
			} else {
				hi = sp.FirstTime
			}
			return true
		}
		if asc {
			qr.e.index.ascend(lo, visit)
		} else {
			qr.e.index.descend(hi, visit)
		}
		for _, c := range cands {
			if err := ctx.Err(); err != nil {
				return err
			}
			si := qr.snap.segment(c.seg)
			if si == nil {
				continue // expired by retention since the snapshot
			}
			if err := qr.span(ctx, si, c.span); err != nil {
				return err
			}
			if qr.full() {
				return nil
			}
		}
		if done || lo >= hi {
			return nil
		}
	}
	return nil
}

// span reads one span and appends its matching records in query order.
func (qr *queryRun) span(ctx context.Context, si *segInfo, sp segment.Span) error {
	if sp.LastTime < qr.lo || sp.FirstTime >= qr.hi || sp.FirstSeq > qr.last {
		return nil
	}
	if !qr.q.Desc && timeOnly(qr.q) {
		return qr.spanFrom(ctx, si, sp)
	}
	entries, err := si.readSpan(sp, qr.sc)
	if err != nil {
		return err
	}
	if qr.q.Desc {
		slices.Reverse(entries)
	}
	for i := range entries {
		if err := qr.take(si, &entries[i]); err != nil || qr.full() {
			return err
		}
	}
	return ctx.Err()
}

// spanFrom is span for a query in time order whose only filter is its time
// range, so that nearly every record read from the range's start is taken:
// it reads only the blocks from the range's start on, and only as far as
// the records the page still needs reach (segment.Reader.ReadSpanFrom),
// reading on where some were not taken (a cursor's position, the
// snapshot's last seq).
func (qr *queryRun) spanFrom(ctx context.Context, si *segInfo, sp segment.Span) error {
	from := qr.lo
	for {
		entries, more, err := si.readSpanFrom(sp, from, qr.q.Limit-len(qr.out), qr.sc)
		if err != nil {
			return err
		}
		for i := range entries {
			if err := qr.take(si, &entries[i]); err != nil || qr.full() {
				return err
			}
		}
		if !more || len(entries) == 0 {
			return ctx.Err()
		}
		from = entries[len(entries)-1].Time + 1
	}
}

// timeOnly reports whether q filters by nothing but its receipt-time range
// (and cursor).
func timeOnly(q *query.Query) bool {
	return len(planKeys(q)) == 0 && len(q.Tenants) == 0 && q.EventSince.IsZero() && q.EventUntil.IsZero()
}

// pageRoom is the most records a page makes room for at once, so that a
// sparse query with a large limit does not allocate for records it will
// not find.
const pageRoom = 128

// take appends en to the page when it matches the query.
func (qr *queryRun) take(si *segInfo, en *segment.Entry) error {
	r, ok, err := qr.match(si, en)
	if ok {
		if n := min(qr.q.Limit, pageRoom); len(qr.out) == 1 && cap(qr.out) < n {
			// A page of more than one record: room for (most of) it at
			// once, rather than copying ~544-byte records as the slice
			// doubles (a page of 100 allocated 2.5 times its size).
			qr.out = append(make([]vellum.Record, 0, n), qr.out...)
		}
		qr.out = append(qr.out, r)
	}
	return err
}

// match reports whether en matches the query, and decodes it when it does.
func (qr *queryRun) match(si *segInfo, en *segment.Entry) (vellum.Record, bool, error) {
	if en.Time < qr.lo || en.Time >= qr.hi || en.Seq > qr.last || en.Seq < qr.minSeq {
		return vellum.Record{}, false, nil
	}
	if err := vellum.PeekFields(en.Record, &qr.f); err != nil {
		return vellum.Record{}, false, fmt.Errorf("%w: %s offset %d seq %d: %w", ErrCorrupt, si.path, en.Offset, en.Seq, err)
	}
	if !matchFields(qr.q, &qr.f) {
		return vellum.Record{}, false, nil
	}
	r, err := si.decode(*en)
	if err != nil {
		return r, false, err
	}
	return r, qr.q.Match(&r), nil
}

// matchFields is q.Match on the indexed fields of an encoding, so records
// that do not match are never decoded. It may say yes where Match says no
// (Match is checked after decoding), never the reverse.
func matchFields(q *query.Query, f *vellum.Fields) bool {
	eq := func(want string, got []byte) bool { return want == "" || string(got) == want }
	if !eq(q.TenantID, f.TenantID) || !eq(q.UserID, f.UserID) || !eq(q.SessionID, f.SessionID) ||
		!eq(q.TraceID, f.TraceID) || !eq(q.Tool, f.Tool) || !eq(q.Outcome, f.Status) || !eq(q.Model, f.Model) {
		return false
	}
	if q.Action != "" {
		if q.Action[len(q.Action)-1] == '.' {
			if !bytes.HasPrefix(f.Action, []byte(q.Action)) {
				return false
			}
		} else if string(f.Action) != q.Action {
			return false
		}
	}
	if len(q.Tenants) > 0 {
		if _, ok := slices.BinarySearch(q.Tenants, string(f.TenantID)); !ok {
			return false
		}
	}
	if q.After != nil {
		c := query.Position{Time: f.Time, Seq: f.Seq}.Compare(*q.After)
		if q.Desc && c >= 0 || !q.Desc && c <= 0 {
			return false
		}
	}
	return true
}
