package engine

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/index"
	"github.com/vellumlog/vellum/query"
	"github.com/vellumlog/vellum/segment"
)

// TestQueryMatchesOracle runs random queries against a store of several
// segments (sealed and active, some spans indexed with summaries) and pages
// through every result with Page.Next, comparing with the exact answer
// computed by scanning every record with query.Match.
func TestQueryMatchesOracle(t *testing.T) {
	// Small segments of the default codec (plain S2 blocks), and
	// S2-dictionary segments past the dictionary, with dictionary blocks
	// and a block index.
	for _, size := range []int64{24 << 10, 48 << 10} {
		t.Run(fmt.Sprintf("segment=%dKiB", size>>10), func(t *testing.T) {
			testQueryMatchesOracle(t, size)
		})
	}
}

func testQueryMatchesOracle(t *testing.T, segSize int64) {
	dir := t.TempDir()
	o := testOpts(t)
	if segSize >= 48<<10 { // about 100 KiB of records: past the dictionary
		o.Codec = segment.CodecS2Dict
		o.MaxOpenSegments = 2 // readers reopened (header only) by the LRU
		t.Cleanup(func() { requireDictBlocks(t, dir) })
	}
	o.SegmentSize = segSize
	o.BlockSize = 2 << 10
	o.DictBlockSize = 1 << 10
	base := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	var ticks atomic.Int64 // Now is called from appending goroutines and the flush loop
	o.Now = func() time.Time { return base.Add(time.Duration(ticks.Add(1)) * time.Millisecond) }
	rng := rand.New(rand.NewPCG(7, 7))
	e := open(t, dir, o)
	n := 0
	for n < 1500 {
		batch := 1 + rng.IntN(20)
		recs := make([]vellum.Record, batch)
		for i := range recs {
			recs[i] = rec(n)
			recs[i].Outcome.Status = vellum.Statuses[rng.IntN(len(vellum.Statuses))]
			recs[i].Model.Name = fmt.Sprintf("m%d", rng.IntN(3))
			n++
		}
		if _, err := e.Append(ctx, recs...); err != nil {
			t.Fatal(err)
		}
	}
	// Reopen half way through the checks so both the rebuilt index (from
	// footers and the active tail) and the live one are exercised.
	var all []vellum.Record
	for r, err := range e.Scan(ctx, 1, 0) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, r)
	}
	first, last := all[0].Time, all[len(all)-1].Time
	randomQuery := func() query.Query {
		q := query.Query{Limit: 1 + rng.IntN(60), Desc: rng.IntN(2) == 0}
		pick := all[rng.IntN(len(all))]
		switch rng.IntN(9) { // 8: the time range alone
		case 0:
			q.TenantID = pick.TenantID
		case 1:
			q.TenantID, q.Action = pick.TenantID, pick.Action
		case 2:
			q.Action = "approval."
		case 3:
			q.UserID = pick.UserID
		case 4:
			q.Outcome, q.Model = pick.Outcome.Status, pick.Model.Name
		case 5:
			q.SessionID = pick.SessionID
		case 6:
			q.Tenants = []string{"tenant-1", "tenant-3"}
		case 7:
			q.TenantID = "nobody"
		}
		if rng.IntN(2) == 0 {
			span := last.Sub(first)
			q.Since = first.Add(time.Duration(rng.Int64N(int64(span))))
			q.Until = q.Since.Add(time.Duration(rng.Int64N(int64(span))))
		}
		return q
	}
	check := func(t *testing.T, e *Engine, round int) {
		for i := 0; i < 60; i++ {
			q := randomQuery()
			var want []uint64
			for j := range all {
				if q.Match(&all[j]) {
					want = append(want, all[j].Seq)
				}
			}
			if q.Desc {
				slices.Reverse(want)
			}
			var got []uint64
			pq := q
			for pages := 0; ; pages++ {
				page, err := e.Query(ctx, pq)
				if err != nil {
					t.Fatalf("round %d query %+v: %v", round, pq, err)
				}
				for k, r := range page.Records {
					got = append(got, r.Seq)
					if k == 0 && len(got) == 1 && r.Seq == all[r.Seq-1].Seq && !reflect.DeepEqual(r, all[r.Seq-1]) {
						t.Fatalf("record %d differs from Scan's", r.Seq)
					}
				}
				if page.Next == nil {
					break
				}
				if len(page.Records) != pq.Limit {
					t.Fatalf("a page of %d records with limit %d has a next cursor", len(page.Records), pq.Limit)
				}
				pq.After = page.Next
				if pages > len(all) {
					t.Fatal("paging does not end")
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("round %d query %+v:\n got %v\nwant %v", round, q, got, want)
			}
		}
	}
	check(t, e, 0)
	e.Close()
	e = open(t, dir, o)
	defer e.Close()
	if e.index.idx.Len() == 0 {
		t.Fatal("no spans indexed after reopen")
	}
	check(t, e, 1)
}

func TestQuerySkipsSpansBySummary(t *testing.T) {
	o := testOpts(t)
	o.BlockSize = 1 << 10
	e := open(t, t.TempDir(), o)
	defer e.Close()
	for i := 0; i < 400; i++ {
		r := rec(i)
		r.TenantID = "common"
		if i == 200 {
			r.TenantID = "rare"
		}
		e.Append(ctx, r)
	}
	known := 0
	e.index.idx.Ascend(-1<<63, func(en *index.Entry) bool {
		if en.Sum.Known() && !en.Sum.MayMatch(&query.Query{TenantID: "rare"}) {
			known++
		}
		return true
	})
	if known < e.index.idx.Len()-2 {
		t.Fatalf("summaries rule out only %d of %d spans for a value in one of them", known, e.index.idx.Len())
	}
	page, err := e.Query(ctx, query.Query{TenantID: "rare"})
	if err != nil || len(page.Records) != 1 || page.Records[0].Seq != 201 {
		t.Fatalf("page %+v, %v", page, err)
	}
}

func TestQueryRejectsBadQuery(t *testing.T) {
	e := open(t, t.TempDir(), testOpts(t))
	defer e.Close()
	if _, err := e.Query(ctx, query.Query{Limit: 5000}); err == nil {
		t.Fatal("limit over the maximum accepted")
	}
}
