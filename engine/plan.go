package engine

// Query planning with postings. A query with at least one indexed filter
// (tenant, user, session, trace, action or its prefix, tool, outcome,
// model, or a tenant scope) walks the segments in its order; in each it
// looks its filters up in the segment's postings, intersects them (the
// shortest list drives, index.Intersect), keeps the ordinals of the spans
// that overlap its time range, and reads only the blocks that hold them,
// checking every record with the exact predicate as before. A segment
// without postings (sealed before they existed, or whose section does not
// parse) is read span by span. Queries with only a time range keep the
// time-index walk (query.go).

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/vellumlog/vellum/index"
	"github.com/vellumlog/vellum/query"
	"github.com/vellumlog/vellum/segment"
)

// pkey is a postings key a query's filter selects.
type pkey struct {
	field byte
	value string
}

// planKeys returns the postings keys of q's filters; the tenant scope is
// returned apart, since it is a union.
func planKeys(q *query.Query) []pkey {
	var keys []pkey
	add := func(f byte, v string) {
		if v != "" {
			keys = append(keys, pkey{f, v})
		}
	}
	add(index.FieldTenant, q.TenantID)
	add(index.FieldUser, q.UserID)
	if a := q.Action; a != "" {
		if a[len(a)-1] == '.' {
			add(index.FieldActionPrefix, a)
		} else {
			add(index.FieldAction, a)
		}
	}
	add(index.FieldTool, q.Tool)
	add(index.FieldModel, q.Model)
	add(index.FieldOutcome, q.Outcome)
	add(index.FieldSession, q.SessionID)
	add(index.FieldTrace, q.TraceID)
	return keys
}

// usesPostings reports whether q has a filter the postings answer.
func usesPostings(q *query.Query) bool { return len(planKeys(q)) > 0 || len(q.Tenants) > 0 }

// segView is one segment as a planned query walks it.
type segView struct {
	si    *segInfo
	spans []segment.Span
	first uint64 // the segment's first seq (ordinal 0)
	// Postings: a sealed segment's (post), or the active one's (live),
	// which covers records up to n. Neither: read its spans.
	post *index.Postings
	live *index.PostingsBuilder
}

// segViews returns the snapshot's segments in the query's order.
func (qr *queryRun) segViews() []segView {
	s := qr.snap
	out := make([]segView, 0, len(s.sealed)+1)
	for _, si := range s.sealed {
		if si.footer.Count == 0 || si.footer.LastTime < qr.lo || si.footer.FirstTime >= qr.hi || si.hdr.FirstSeq > qr.last {
			continue
		}
		out = append(out, segView{si: si, spans: si.footer.Spans, first: si.hdr.FirstSeq, post: si.post})
	}
	if a := s.active; a != nil && a.state.Count > 0 && a.seg.hdr.FirstSeq <= qr.last {
		spans := a.spans
		if a.hasOpen {
			spans = append(spans[:len(spans):len(spans)], a.open)
		}
		out = append(out, segView{si: a.seg, spans: spans, first: a.seg.hdr.FirstSeq, live: a.post})
	}
	if qr.q.Desc {
		slices.Reverse(out)
	}
	return out
}

// window returns the spans [i0, i1) of v that overlap the query's time
// range, and the ordinals [lo, hi) that can match: those spans' records,
// bounded by the query's seq bounds (its snapshot, cursor).
func (qr *queryRun) window(v *segView) (i0, i1 int, lo, hi uint64) {
	sp := v.spans
	i0 = sort.Search(len(sp), func(i int) bool { return sp[i].LastTime >= qr.lo })
	i1 = sort.Search(len(sp), func(i int) bool { return sp[i].FirstTime >= qr.hi })
	if i0 >= i1 {
		return i0, i0, 0, 0
	}
	first, last := sp[i0].FirstSeq, sp[i1-1].LastSeq()
	last = min(last, qr.last)
	if a := qr.q.After; a != nil {
		if qr.q.Desc {
			last = min(last, a.Seq-1)
		} else {
			first = max(first, a.Seq+1)
		}
	}
	if first > last {
		return i0, i1, 0, 0
	}
	return i0, i1, first - v.first, last - v.first + 1
}

// postingLists returns the lists of v's postings that q's keys and tenant
// scope select for the ordinals [lo, hi), and hi2, hi bounded by what the
// postings cover. ok is false when v has no usable postings; exact is
// false when a list is only a superset (a hashed field's). The active
// segment's postings may lag its durable records (postings.go): tail is
// the first ordinal they do not cover yet (hi when they cover all), whose
// records the caller reads. nil lists with ok set means that no record of
// v matches.
func (qr *queryRun) postingLists(v *segView, keys []pkey, lo, hi uint64) (lists []index.List, exact, ok bool, tail, hi2 uint64, err error) {
	tail = hi
	lists = make([]index.List, 0, len(keys)+1)
	switch {
	case v.post != nil:
		for _, k := range keys {
			if !v.post.Has(k.field, k.value) {
				return nil, true, true, tail, hi, nil // a value the segment lacks: no record
			}
		}
		read, cache := v.si.readAt(), qr.e.index.cache
		for _, k := range keys {
			l, err := v.post.LookupCached(read, cache, k.field, k.value)
			if err != nil {
				return nil, false, false, tail, hi, fmt.Errorf("%w: %s: %w", ErrCorrupt, v.si.path, err)
			}
			lists = append(lists, l)
		}
		if len(qr.q.Tenants) > 0 {
			ts := make([]index.List, 0, len(qr.q.Tenants))
			for _, t := range qr.q.Tenants {
				l, err := v.post.LookupCached(read, cache, index.FieldTenant, t)
				if err != nil {
					return nil, false, false, tail, hi, fmt.Errorf("%w: %s: %w", ErrCorrupt, v.si.path, err)
				}
				ts = append(ts, l)
			}
			lists = append(lists, index.Union(ts))
		}
		hi = min(hi, uint64(v.post.Records()))
	case v.live != nil:
		ix := qr.e.index
		ix.postMu.RLock()
		// A hashed field is searched record by record: take a view
		// under the lock and search it after, so that publishing
		// never waits for the search.
		var hashed []index.HashedView
		var hashedKeys []string
		for _, k := range keys {
			if k.field >= index.FieldSession {
				hashed, hashedKeys = append(hashed, v.live.Hashed(k.field)), append(hashedKeys, k.value)
				continue
			}
			lists = append(lists, v.live.Lookup(k.field, k.value))
		}
		if len(qr.q.Tenants) > 0 {
			ts := make([]index.List, 0, len(qr.q.Tenants))
			for _, t := range qr.q.Tenants {
				ts = append(ts, v.live.Lookup(index.FieldTenant, t))
			}
			lists = append(lists, index.Union(ts))
		}
		n := v.live.Len()
		ix.postMu.RUnlock()
		for i, hv := range hashed {
			lists = append(lists, hv.Lookup(hashedKeys[i]))
		}
		tail = max(lo, min(hi, uint64(n)))
		hi = tail
	default:
		return nil, false, false, tail, hi, nil
	}
	exact = true
	for i := range lists {
		exact = exact && !lists[i].Candidates()
	}
	return lists, exact, true, tail, hi, nil
}

// walkPostings answers the query segment by segment with postings.
func (qr *queryRun) walkPostings(ctx context.Context) error {
	keys := planKeys(qr.q)
	for _, v := range qr.segViews() {
		if err := ctx.Err(); err != nil {
			return err
		}
		i0, i1, lo, hi := qr.window(&v)
		if lo >= hi {
			continue
		}
		lists, _, ok, tail, phi, err := qr.postingLists(&v, keys, lo, hi)
		if err != nil {
			return err
		}
		switch {
		case !ok:
			err = qr.legacySegment(ctx, &v, i0, i1)
		case tail < hi && qr.q.Desc:
			// Newest first: the records the postings do not cover yet,
			// then those they do.
			if err = qr.readTail(ctx, &v, tail, i1); err == nil && !qr.full() {
				err = qr.pageLists(ctx, &v, lists, lo, phi)
			}
		default:
			if err = qr.pageLists(ctx, &v, lists, lo, phi); err == nil && !qr.full() && tail < hi {
				err = qr.readTail(ctx, &v, tail, i1)
			}
		}
		if err != nil {
			return err
		}
		if qr.full() {
			return nil
		}
	}
	return nil
}

// legacySegment answers the query in a segment without postings, as
// before they existed: a sealed one through the time index and span
// summaries, restricted to the segment's time range (receipt times
// increase strictly with seq, so segments' ranges do not overlap); the
// active one span by span.
func (qr *queryRun) legacySegment(ctx context.Context, v *segView, i0, i1 int) error {
	if v.si.footer == nil {
		return qr.readSpans(ctx, v, i0, i1)
	}
	lo, hi := qr.lo, qr.hi
	qr.lo, qr.hi = max(lo, v.spans[i0].FirstTime), min(hi, v.spans[i1-1].LastTime+1)
	defer func() { qr.lo, qr.hi = lo, hi }()
	return qr.walkIndex(ctx, !qr.q.Desc)
}

// readTail reads, in the query's order, the records of v from ordinal tail
// on (in spans before i1), which its postings do not cover yet.
func (qr *queryRun) readTail(ctx context.Context, v *segView, tail uint64, i1 int) error {
	from := v.first + tail
	j := sort.Search(i1, func(i int) bool { return v.spans[i].LastSeq() >= from })
	qr.minSeq = from
	defer func() { qr.minSeq = 0 }()
	return qr.readSpans(ctx, v, j, i1)
}

// readSpans reads spans [i0, i1) of v in the query's order.
func (qr *queryRun) readSpans(ctx context.Context, v *segView, i0, i1 int) error {
	for k := range i1 - i0 {
		i := i0 + k
		if qr.q.Desc {
			i = i1 - 1 - k
		}
		if err := qr.span(ctx, v.si, v.spans[i]); err != nil || qr.full() {
			return err
		}
	}
	return nil
}

// pageLists fills the page from the ordinals in [lo, hi) of v that every
// one of lists holds, in the query's order. It intersects the lists a
// chunk of ordinals at a time, nearest the query's start first, so that a
// page of a common value (outcome=denied over a week) builds and reads
// only the ordinals it needs, not every match of the segment: the first
// chunk is sized from the shortest list's density to hold the records the
// page still needs, and each next one is twice as long.
func (qr *queryRun) pageLists(ctx context.Context, v *segView, lists []index.List, lo, hi uint64) error {
	if len(lists) == 0 || lo >= hi {
		return nil
	}
	records := hi
	if v.post != nil {
		records = uint64(v.post.Records())
	}
	n := lists[0].Len()
	for i := range lists {
		n = min(n, lists[i].Len())
	}
	if n == 0 {
		return nil
	}
	// Ordinals that hold, at the shortest list's density, the records
	// the page needs, and half again.
	need := uint64(qr.q.Limit - len(qr.out))
	chunk := max(minChunk, need*records/uint64(n)*3/2)
	take := func(si *segInfo, en *segment.Entry) (bool, error) {
		err := qr.take(si, en)
		return qr.full(), err
	}
	for lo < hi {
		a, b := lo, hi
		if hi-lo > chunk {
			if qr.q.Desc {
				a = hi - chunk
			} else {
				b = lo + chunk
			}
		}
		if qr.q.Desc {
			hi = a
		} else {
			lo = b
		}
		qr.ords = index.IntersectAppend(qr.ords[:0], lists, uint32(a), uint32(b))
		if err := qr.visit(ctx, v, qr.ords, take, qr.want); err != nil || qr.full() {
			return err
		}
		chunk *= 2
	}
	return nil
}

// minChunk is the fewest ordinals pageLists intersects at a time.
const minChunk = 1024

// want returns how many more records the page needs.
func (qr *queryRun) want() int { return qr.q.Limit - len(qr.out) }

// visit reads the records at ordinals ords (ascending) of v, span by span
// and only their blocks, and calls fn with each in the query's order until
// it says stop. want, when not nil, says how many more records the caller
// needs: of a span, only the blocks of that many of its ordinals are read
// at a time (visitSpan).
func (qr *queryRun) visit(ctx context.Context, v *segView, ords []uint32, fn func(*segInfo, *segment.Entry) (bool, error), want func() int) error {
	desc := qr.q.Desc
	for len(ords) > 0 {
		// The span holding the next ordinal in the query's order, and
		// the ordinals it holds.
		next := ords[0]
		if desc {
			next = ords[len(ords)-1]
		}
		seq := v.first + uint64(next)
		si := sort.Search(len(v.spans), func(i int) bool { return v.spans[i].LastSeq() >= seq })
		if si == len(v.spans) || v.spans[si].FirstSeq > seq {
			return fmt.Errorf("%w: %s: postings name seq %d, which no span holds", ErrCorrupt, v.si.path, seq)
		}
		sp := v.spans[si]
		lo, hi := uint32(sp.FirstSeq-v.first), uint32(sp.LastSeq()-v.first)
		var group []uint32
		if desc {
			j := sort.Search(len(ords), func(i int) bool { return ords[i] >= lo })
			group, ords = ords[j:], ords[:j]
		} else {
			j := sort.Search(len(ords), func(i int) bool { return ords[i] > hi })
			group, ords = ords[:j], ords[j:]
		}
		if stop, err := qr.visitSpan(v, sp, group, fn, want); err != nil || stop {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// visitSpan is visit's turn at one span sp of v and the ordinals of it in
// group (ascending, not empty): it reads the blocks of the next want() of
// them in the query's order (or all of them), serves fn every ordinal of
// the group whose record those blocks hold, and reads again only when
// records of those were rejected (fn said neither stop nor matched) and
// the next ordinals lie in blocks not read yet. It reports whether fn said
// stop.
func (qr *queryRun) visitSpan(v *segView, sp segment.Span, group []uint32, fn func(*segInfo, *segment.Entry) (bool, error), want func() int) (bool, error) {
	desc := qr.q.Desc
	for len(group) > 0 {
		// The ordinals whose blocks are read now: the next want() of the
		// group in the query's order, or all of it.
		part := group
		if want != nil {
			if w := want(); w > 0 && w < len(group) {
				if desc {
					part = group[len(group)-w:]
				} else {
					part = group[:w]
				}
			}
		}
		qr.seqs = qr.seqs[:0]
		for _, o := range part {
			qr.seqs = append(qr.seqs, v.first+uint64(o))
		}
		entries, err := v.si.readBlocks(sp, qr.seqs, qr.sc)
		if err != nil {
			return false, err
		}
		// Every ordinal of the group whose record the blocks read hold is
		// served; the first that they do not hold (past part) ends the
		// turn.
		at, served := 0, 0
		for served < len(group) {
			o := group[served]
			if desc {
				o = group[len(group)-1-served]
			}
			s := v.first + uint64(o)
			i, found := findEntry(entries, s, at)
			if !found {
				if served < len(part) {
					return false, fmt.Errorf("%w: %s: seq %d is not in the blocks of its span", ErrCorrupt, v.si.path, s)
				}
				break
			}
			at = i
			served++
			stop, err := fn(v.si, &entries[i])
			if err != nil || stop {
				return stop, err
			}
		}
		if desc {
			group = group[:len(group)-served]
		} else {
			group = group[served:]
		}
	}
	return false, nil
}

// findEntry returns the index of the entry of seq s in entries (ascending
// by seq: whole blocks, with gaps between them), trying first where s lies
// if entries run without a gap from at.
func findEntry(entries []segment.Entry, s uint64, at int) (int, bool) {
	if at < len(entries) {
		i := at + int(int64(s)-int64(entries[at].Seq))
		if i >= 0 && i < len(entries) && entries[i].Seq == s {
			return i, true
		}
	}
	return slices.BinarySearchFunc(entries, s, func(e segment.Entry, s uint64) int {
		switch {
		case e.Seq < s:
			return -1
		case e.Seq > s:
			return 1
		}
		return 0
	})
}
