package engine

import (
	"context"
	"fmt"
	"sort"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/index"
	"github.com/vellumlog/vellum/query"
	"github.com/vellumlog/vellum/segment"
)

// Count returns how many records match q's filters and time ranges (its
// Limit, order, cursor and MaxSeq are ignored), among the records durable
// when it starts. Where the postings answer exactly (every filter on an
// exactly indexed field, no event-time range) it reads no record but those
// of the spans at the edges of the time range; session and trace ids are
// hashed in the postings, so their candidates are read and checked, as
// are the records of segments without postings. q is normalized first; an
// invalid q returns a *query.ParamError.
func (e *Engine) Count(ctx context.Context, q query.Query) (uint64, error) {
	q.Limit, q.After, q.Desc, q.MaxSeq = 0, nil, false, 0
	if err := q.Normalize(); err != nil {
		return 0, err
	}
	lo, hi := q.Bounds()
	if lo >= hi {
		return 0, nil
	}
	qr := &queryRun{e: e, q: &q, lo: lo, hi: hi, sc: scratchPool.Get().(*segment.Scratch)}
	defer scratchPool.Put(qr.sc)
	qr.snap = e.index.querySnapshot()
	qr.last = qr.snap.last
	c := &counter{qr: qr, events: !q.EventSince.IsZero() || !q.EventUntil.IsZero()}
	keys := planKeys(&q)
	indexed := (len(keys) > 0 || len(q.Tenants) > 0) && !e.opts.NoPostings
	for _, v := range qr.segViews() {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		i0, i1, olo, ohi := qr.window(&v)
		if olo >= ohi {
			continue
		}
		var err error
		switch {
		case indexed && len(keys) == 1 && len(q.Tenants) == 0 && !c.events && v.post != nil && keys[0].field < index.FieldSession && c.whole(&v, i0, i1, olo, ohi):
			// One exact filter over a whole segment: its key says how many.
			c.n += uint64(v.post.Count(keys[0].field, keys[0].value))
		case !indexed:
			err = c.spans(&v, i0, i1, !c.events && len(keys) == 0 && len(q.Tenants) == 0)
		default:
			lists, exact, ok, tail, hi, cerr := qr.postingLists(&v, keys, olo, ohi)
			switch {
			case cerr != nil:
				err = cerr
			case !ok:
				err = c.spans(&v, i0, i1, false)
			default:
				if lists != nil && exact && !c.events {
					err = c.exact(ctx, &v, lists, i0, i1, olo, hi)
				} else if lists != nil && olo < hi {
					err = c.ordinals(ctx, &v, index.Intersect(lists, uint32(olo), uint32(hi)))
				}
				if err == nil && tail < ohi {
					// The active segment's records its postings do not
					// cover yet are read.
					from := v.first + tail
					j := sort.Search(i1, func(i int) bool { return v.spans[i].LastSeq() >= from })
					qr.minSeq = from
					err = c.spans(&v, j, i1, false)
					qr.minSeq = 0
				}
			}
		}
		if err != nil {
			return 0, err
		}
	}
	return c.n, nil
}

// counter counts the matches of one Count.
type counter struct {
	qr     *queryRun
	events bool // q has an event-time range, which only the records say
	n      uint64
	f      vellum.Fields
}

// inside reports whether every record of sp lies in the query's time range
// and snapshot, so that its postings matches count without reading.
func (c *counter) inside(sp segment.Span) bool {
	return sp.FirstTime >= c.qr.lo && sp.LastTime < c.qr.hi && sp.LastSeq() <= c.qr.last
}

// whole reports whether the window [olo, ohi) of spans [i0, i1) is all of
// v and every span of it lies inside the query's range.
func (c *counter) whole(v *segView, i0, i1 int, olo, ohi uint64) bool {
	return i0 == 0 && i1 == len(v.spans) && olo == 0 && ohi == v.spans[len(v.spans)-1].LastSeq()-v.first+1 &&
		c.inside(segment.Span{FirstTime: v.spans[0].FirstTime, LastTime: v.spans[i1-1].LastTime, FirstSeq: v.spans[0].FirstSeq,
			Count: uint32(ohi)})
}

// spans counts the matches in spans [i0, i1) of v; whole, when set, lets
// spans inside the time range count without reading (a time-only count).
func (c *counter) spans(v *segView, i0, i1 int, whole bool) error {
	for _, sp := range v.spans[i0:i1] {
		if whole && c.inside(sp) {
			c.n += uint64(sp.Count)
			continue
		}
		entries, err := v.si.readSpan(sp, c.qr.sc)
		if err != nil {
			return err
		}
		for i := range entries {
			if err := c.entry(v.si, &entries[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// ordinals counts the matches among candidate ordinals ords of v, each
// read and checked.
func (c *counter) ordinals(ctx context.Context, v *segView, ords []uint32) error {
	return c.qr.visit(ctx, v, ords, func(si *segInfo, en *segment.Entry) (bool, error) { return false, c.entry(si, en) }, nil)
}

// exact counts the matches in ordinals [olo, ohi) of spans [i0, i1) of v
// from exact lists: every record a list names matches the filters, so in
// the spans that lie inside the query's time range the lists' common
// ordinals are counted without building them (index.CountAnd, a popcount
// of the lists' ANDed bitmaps where they are dense); in the spans at the
// range's edges, so are those of the blocks inside the range (their
// headers, checked by CRC, give their times), and only the records of the
// blocks the range's boundary cuts are read and their times checked.
func (c *counter) exact(ctx context.Context, v *segView, lists []index.List, i0, i1 int, olo, ohi uint64) error {
	var read []uint32
	run, runLo, runHi := false, uint64(0), uint64(0) // ordinals of consecutive spans inside the range
	flush := func() {
		if run {
			c.n += uint64(index.CountAnd(lists, uint32(runLo), uint32(runHi)))
			run = false
		}
	}
	for _, sp := range v.spans[i0:i1] {
		a, b := max(sp.FirstSeq-v.first, olo), min(sp.LastSeq()-v.first+1, ohi)
		if a >= b {
			continue
		}
		if c.inside(sp) {
			if run && a == runHi {
				runHi = b
			} else {
				flush()
				run, runLo, runHi = true, a, b
			}
			continue
		}
		flush()
		// A span the range's boundary cuts: of its blocks, those inside
		// the range count like whole spans, those outside not at all,
		// and only those the boundary cuts are read.
		blocks, err := v.si.readBlockInfo(sp, c.qr.sc)
		if err != nil {
			return err
		}
		for _, bl := range blocks {
			x, y := max(bl.FirstSeq-v.first, a), min(bl.FirstSeq+uint64(bl.Count)-v.first, b)
			switch {
			case x >= y || bl.LastTime < c.qr.lo || bl.FirstTime >= c.qr.hi:
			case bl.FirstTime >= c.qr.lo && bl.LastTime < c.qr.hi && bl.FirstSeq+uint64(bl.Count)-1 <= c.qr.last:
				c.n += uint64(index.CountAnd(lists, uint32(x), uint32(y)))
			default:
				read = index.IntersectAppend(read, lists, uint32(x), uint32(y))
			}
		}
	}
	flush()
	return c.ordinals(ctx, v, read)
}

// entry counts en when it matches.
func (c *counter) entry(si *segInfo, en *segment.Entry) error {
	qr := c.qr
	if en.Time < qr.lo || en.Time >= qr.hi || en.Seq > qr.last || en.Seq < qr.minSeq {
		return nil
	}
	if err := vellum.PeekFields(en.Record, &c.f); err != nil {
		return fmt.Errorf("%w: %s offset %d seq %d: %w", ErrCorrupt, si.path, en.Offset, en.Seq, err)
	}
	if !matchFields(qr.q, &c.f) {
		return nil
	}
	if c.events {
		r, err := si.decode(*en)
		if err != nil {
			return err
		}
		if !qr.q.Match(&r) {
			return nil
		}
	}
	c.n++
	return nil
}
