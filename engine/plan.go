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

// candidates returns the ordinals in [lo, hi) of v whose postings match
// every key and the tenant scope, ascending; ok is false when v has no
// usable postings; exact is false when a list is only a superset (a hashed
// field's). The active segment's postings may lag its durable records
// (postings.go): tail is the first ordinal they do not cover yet (hi when
// they cover all), whose records the caller reads.
func (qr *queryRun) candidates(v *segView, keys []pkey, lo, hi uint64) (ords []uint32, exact, ok bool, tail uint64, err error) {
	lists, exact, ok, tail, hi, err := qr.postingLists(v, keys, lo, hi)
	if err != nil || !ok || lo >= hi || lists == nil {
		return nil, exact, ok, tail, err
	}
	return index.Intersect(lists, uint32(lo), uint32(hi)), exact, true, tail, nil
}

// postingLists returns the lists of v's postings that q's keys and tenant
// scope select, and the ordinal hi bounded by what the postings cover (see
// candidates for ok, exact and tail). nil lists with ok set means that no
// record of v matches.
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
		ords, _, ok, tail, err := qr.candidates(&v, keys, lo, hi)
		if err != nil {
			return err
		}
		take := func(si *segInfo, en *segment.Entry) (bool, error) {
			err := qr.take(si, en)
			return qr.full(), err
		}
		switch {
		case !ok:
			err = qr.legacySegment(ctx, &v, i0, i1)
		case tail < hi && qr.q.Desc:
			// Newest first: the records the postings do not cover yet,
			// then those they do.
			if err = qr.readTail(ctx, &v, tail, i1); err == nil && !qr.full() {
				err = qr.visit(ctx, &v, ords, take)
			}
		default:
			if err = qr.visit(ctx, &v, ords, take); err == nil && !qr.full() && tail < hi {
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

// visit reads the records at ordinals ords (ascending) of v, span by span
// and only their blocks, and calls fn with each in the query's order until
// it says stop.
func (qr *queryRun) visit(ctx context.Context, v *segView, ords []uint32, fn func(*segInfo, *segment.Entry) (bool, error)) error {
	desc := qr.q.Desc
	var seqs []uint64
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
		seqs = seqs[:0]
		for _, o := range group {
			seqs = append(seqs, v.first+uint64(o))
		}
		entries, err := v.si.readBlocks(sp, seqs, qr.sc)
		if err != nil {
			return err
		}
		for k := range seqs {
			s := seqs[k]
			if desc {
				s = seqs[len(seqs)-1-k]
			}
			i, found := slices.BinarySearchFunc(entries, s, func(e segment.Entry, s uint64) int {
				switch {
				case e.Seq < s:
					return -1
				case e.Seq > s:
					return 1
				}
				return 0
			})
			if !found {
				return fmt.Errorf("%w: %s: seq %d is not in the blocks of its span", ErrCorrupt, v.si.path, s)
			}
			stop, err := fn(v.si, &entries[i])
			if err != nil || stop {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}
