package engine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/index"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/query"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

// postRec returns a record whose filter fields take few values (so that
// every combination has matches), with sessions and traces shared by
// runs of records, and some fields empty.
func postRec(rng *rand.Rand, i int) vellum.Record {
	r := rec(i)
	r.TenantID = fmt.Sprintf("tenant-%d", rng.IntN(4))
	r.UserID = fmt.Sprintf("user-%d", rng.IntN(6))
	r.Action = []string{"tool.call", "tool.result", "approval.granted", "approval.denied", "model.decision", "a.b.c"}[rng.IntN(6)]
	r.Tool.Name = []string{"", "web_search", "read_file"}[rng.IntN(3)]
	r.Model.Name = []string{"", "m1", "m2"}[rng.IntN(3)]
	r.Outcome.Status = vellum.Statuses[rng.IntN(len(vellum.Statuses))]
	r.SessionID = fmt.Sprintf("s-%d", i/7)
	r.TraceID = fmt.Sprintf("trace-%d", rng.IntN(300))
	if rng.IntN(8) == 0 {
		r.UserID, r.SessionID, r.TraceID = "", "", ""
	}
	if rng.IntN(3) > 0 {
		r.EventTime = eventBase.Add(time.Duration(i) * time.Second)
	}
	return r
}

var eventBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// filterSetters are the query filters postings answer, each set from a
// record (or to a value no record has).
var filterSetters = []func(q *query.Query, r *vellum.Record, absent bool){
	func(q *query.Query, r *vellum.Record, absent bool) { q.TenantID = pick(r.TenantID, absent) },
	func(q *query.Query, r *vellum.Record, absent bool) { q.UserID = pick(r.UserID, absent) },
	func(q *query.Query, r *vellum.Record, absent bool) {
		q.Action = r.Action
		if absent {
			q.Action = "nothing.here"
		} else if len(r.Action)%2 == 0 {
			q.Action = r.Action[:slices.Index([]byte(r.Action), '.')+1] // a prefix
		}
	},
	func(q *query.Query, r *vellum.Record, absent bool) { q.Tool = pick(r.Tool.Name, absent) },
	func(q *query.Query, r *vellum.Record, absent bool) { q.Model = pick(r.Model.Name, absent) },
	func(q *query.Query, r *vellum.Record, absent bool) {
		q.Outcome = r.Outcome.Status
		if absent {
			q.Outcome = vellum.StatusPending
		}
	},
	func(q *query.Query, r *vellum.Record, absent bool) { q.SessionID = pick(r.SessionID, absent) },
	func(q *query.Query, r *vellum.Record, absent bool) { q.TraceID = pick(r.TraceID, absent) },
	func(q *query.Query, r *vellum.Record, absent bool) {
		q.Tenants = []string{r.TenantID, "tenant-2"}
		if absent {
			q.Tenants = []string{"nobody", "no-one"}
		}
	},
}

func pick(v string, absent bool) string {
	if absent || v == "" {
		return "absent-value"
	}
	return v
}

// TestQueryPostingsOracle runs every combination of the indexed filters
// (with random time ranges, cursors, orders and page sizes) against a
// store of many sealed segments and an active one, and compares every
// page and every count with a scan of all records: on the live store,
// after a reopen (postings from footers and rebuilt from the active
// segment's records), and after more appends that seal more segments.
func TestQueryPostingsOracle(t *testing.T) {
	// Small segments of the default codec (plain S2 blocks), and
	// S2-dictionary segments past the dictionary, with dictionary blocks
	// and a block index.
	for _, size := range []int64{32 << 10, 48 << 10} {
		t.Run(fmt.Sprintf("segment=%dKiB", size>>10), func(t *testing.T) {
			testQueryPostingsOracle(t, size)
		})
	}
}

func testQueryPostingsOracle(t *testing.T, segSize int64) {
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
	var ticks atomic.Int64
	o.Now = func() time.Time { return base.Add(time.Duration(ticks.Add(1)) * time.Millisecond) }
	rng := rand.New(rand.NewPCG(13, 13))
	e := open(t, dir, o)
	n := 0
	appendSome := func(e *Engine, count int) {
		for stop := n + count; n < stop; {
			recs := make([]vellum.Record, 1+rng.IntN(25))
			for i := range recs {
				recs[i] = postRec(rng, n)
				n++
			}
			if _, err := e.Append(ctx, recs...); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendSome(e, 1500)
	check := func(t *testing.T, e *Engine, round string) {
		var all []vellum.Record
		for r, err := range e.Scan(ctx, 1, 0) {
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, r)
		}
		first, last := all[0].Time, all[len(all)-1].Time
		for mask := 0; mask < 1<<len(filterSetters); mask++ {
			q := query.Query{Limit: 1 + rng.IntN(40), Desc: rng.IntN(2) == 0}
			src := &all[rng.IntN(len(all))]
			absent := rng.IntN(10) == 0
			for i, set := range filterSetters {
				if mask&(1<<i) != 0 {
					set(&q, src, absent && i == bitsLow(mask))
				}
			}
			if rng.IntN(2) == 0 {
				span := last.Sub(first)
				q.Since = first.Add(time.Duration(rng.Int64N(int64(span))))
				q.Until = q.Since.Add(time.Duration(rng.Int64N(int64(span))))
			}
			if rng.IntN(6) == 0 {
				q.EventSince = eventBase.Add(time.Duration(rng.IntN(len(all))) * time.Second)
				q.EventUntil = q.EventSince.Add(time.Duration(rng.IntN(len(all))) * time.Second)
			}
			checkQuery(t, e, round, q, all)
		}
	}
	check(t, e, "live")
	e.Close()
	e = open(t, dir, o)
	check(t, e, "reopened")
	appendSome(e, 900)
	check(t, e, "appended after reopen")
	e.Close()
	o.VerifyOnOpen = true
	e = open(t, dir, o)
	defer func() { e.Close() }()
	check(t, e, "verified on open")
	// Without the decoded-list cache, and with one so small that a query's
	// lists evict each other.
	for _, size := range []int64{-1, 4 << 10} {
		e.Close()
		o.PostingsCache, o.VerifyOnOpen = size, false
		e = open(t, dir, o)
		check(t, e, fmt.Sprintf("list cache %d", size))
	}
	sealed := e.index.snapshot().sealed
	with := 0
	for _, si := range sealed {
		if si.post != nil {
			with++
		}
	}
	if len(sealed) < 5 || with != len(sealed) {
		t.Fatalf("%d of %d sealed segments have postings", with, len(sealed))
	}
}

func bitsLow(mask int) int {
	for i := 0; ; i++ {
		if mask&(1<<i) != 0 {
			return i
		}
	}
}

// checkQuery pages through q and compares the records with the oracle,
// and the count with the number of matches.
func checkQuery(t *testing.T, e *Engine, round string, q query.Query, all []vellum.Record) {
	t.Helper()
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
			t.Fatalf("%s: query %+v: %v", round, pq, err)
		}
		for _, r := range page.Records {
			got = append(got, r.Seq)
			if !reflect.DeepEqual(r, all[r.Seq-1]) {
				t.Fatalf("%s: record %d differs from Scan's", round, r.Seq)
			}
		}
		if page.Next == nil {
			break
		}
		pq.After = page.Next
		if pages > len(all) {
			t.Fatal("paging does not end")
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: query %+v:\n got %v\nwant %v", round, q, got, want)
	}
	if n, err := e.Count(ctx, q); err != nil || n != uint64(len(want)) {
		t.Fatalf("%s: count %+v = %d (%v), want %d", round, q, n, err, len(want))
	}
}

// TestPostingsLegacySegments: segments sealed without postings (written
// before they existed; here by NoPostings) are answered through their
// spans, in a store that mixes them with segments that have postings.
func TestPostingsLegacySegments(t *testing.T) {
	dir := t.TempDir()
	o := testOpts(t)
	o.SegmentSize = 16 << 10
	o.BlockSize = 2 << 10
	o.NoPostings = true
	rng := rand.New(rand.NewPCG(3, 1))
	e := open(t, dir, o)
	n := 0
	add := func(e *Engine, k int) {
		for i := 0; i < k; i++ {
			if _, err := e.Append(ctx, postRec(rng, n)); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	add(e, 300)
	e.Close()
	o.NoPostings = false
	e = open(t, dir, o)
	defer e.Close()
	add(e, 300)
	var all []vellum.Record
	for r, err := range e.Scan(ctx, 1, 0) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, r)
	}
	legacy, with := 0, 0
	for _, si := range e.index.snapshot().sealed {
		if si.post == nil {
			legacy++
		} else {
			with++
		}
	}
	if legacy == 0 || with == 0 {
		t.Fatalf("want a mix of segments: %d without postings, %d with", legacy, with)
	}
	for i := 0; i < 200; i++ {
		q := query.Query{Limit: 1 + rng.IntN(30), Desc: i%2 == 0}
		src := &all[rng.IntN(len(all))]
		filterSetters[rng.IntN(len(filterSetters))](&q, src, false)
		filterSetters[rng.IntN(len(filterSetters))](&q, src, false)
		checkQuery(t, e, "mixed", q, all)
	}
}

// TestPostingsConcurrentQueries: queries and counts through the postings
// while appends fill and seal segments (run with -race): every record
// returned matches, and counts never shrink.
func TestPostingsConcurrentQueries(t *testing.T) {
	o := testOpts(t)
	o.SegmentSize = 16 << 10
	o.BlockSize = 2 << 10
	e := open(t, t.TempDir(), o)
	defer e.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(5, 6))
		for i := 0; i < 1500; i += 10 {
			recs := make([]vellum.Record, 10)
			for j := range recs {
				recs[j] = postRec(rng, i+j)
			}
			if _, err := e.Append(ctx, recs...); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var last uint64
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		q := query.Query{TenantID: "tenant-1", Action: "approval.", Limit: 50, Desc: last%2 == 0}
		page, err := e.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Records {
			if !q.Match(&r) {
				t.Fatalf("record %d does not match", r.Seq)
			}
		}
		n, err := e.Count(ctx, q)
		if err != nil || n < last {
			t.Fatalf("count %d after %d (%v)", n, last, err)
		}
		last = n
		tq := query.Query{TraceID: "trace-7", Limit: 5}
		tp, err := e.Query(ctx, tq)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range tp.Records {
			if r.TraceID != "trace-7" {
				t.Fatalf("record %d has trace %q", r.Seq, r.TraceID)
			}
		}
	}
	if last == 0 {
		t.Fatal("nothing counted")
	}
}

// TestVerifyOnOpenRefusesForgedPostings: with VerifyOnOpen, a sealed
// segment whose postings differ from its records (a forger who fixes the
// CRCs) stops Open, since queries and counts would trust them.
func TestVerifyOnOpenRefusesForgedPostings(t *testing.T) {
	dir := t.TempDir()
	o := testOpts(t)
	o.SegmentSize = 16 << 10
	rng := rand.New(rand.NewPCG(8, 8))
	e := open(t, dir, o)
	for i := 0; i < 200; i++ {
		if _, err := e.Append(ctx, postRec(rng, i)); err != nil {
			t.Fatal(err)
		}
	}
	e.Close()
	path := layout.SegmentPath(dir, 1)
	r, err := segment.Open(vfs.Default, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := r.Footer().SectionOffsets[index.SectionPostings]
	n := len(r.Footer().Sections[index.SectionPostings])
	r.Close()
	if n == 0 {
		t.Fatal("segment 1 has no postings")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[at+int64(n)-1] ^= 1 // an ordinal of the last hashed entry
	os.Chmod(path, 0o644)
	if err := os.WriteFile(path, segment.RecomputeCRCs(b), 0o444); err != nil {
		t.Fatal(err)
	}
	// Without VerifyOnOpen the store opens (the footer's CRC verifies);
	// with it, the forgery is found.
	e2, err := Open(dir, o)
	if err != nil {
		t.Fatalf("open without verification: %v", err)
	}
	e2.Close()
	o.VerifyOnOpen = true
	if _, err := Open(dir, o); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "postings") {
		t.Fatalf("open with VerifyOnOpen: %v, want ErrCorrupt naming the postings", err)
	}
}

// TestPostingsLag: while the postings goroutine is held back, queries and
// counts read the active segment's records its postings do not cover yet
// from its spans, in order, and agree with the oracle; once it catches
// up, they use the postings.
func TestPostingsLag(t *testing.T) {
	o := testOpts(t)
	o.BlockSize = 2 << 10
	var hold atomic.Bool
	applied := atomic.Int64{}
	o.postingsHook = func() {
		for hold.Load() {
			time.Sleep(time.Millisecond)
		}
		applied.Add(1)
	}
	e := open(t, t.TempDir(), o)
	defer e.Close()
	rng := rand.New(rand.NewPCG(4, 4))
	n := 0
	add := func(batches int) {
		for range batches {
			recs := make([]vellum.Record, 1+rng.IntN(20))
			for i := range recs {
				recs[i] = postRec(rng, n)
				n++
			}
			if _, err := e.Append(ctx, recs...); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(30)
	hold.Store(true)
	before := applied.Load()
	add(60) // queued, not applied
	check := func(round string) {
		var all []vellum.Record
		for r, err := range e.Scan(ctx, 1, 0) {
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, r)
		}
		for i := 0; i < 300; i++ {
			q := query.Query{Limit: 1 + rng.IntN(40), Desc: i%2 == 0}
			src := &all[rng.IntN(len(all))]
			for k := 0; k < 1+rng.IntN(3); k++ {
				filterSetters[rng.IntN(len(filterSetters))](&q, src, false)
			}
			checkQuery(t, e, round, q, all)
		}
	}
	check("held")
	if applied.Load() != before {
		t.Fatal("the postings goroutine applied batches while held")
	}
	hold.Store(false)
	add(10)
	check("caught up")
}

// TestPostingsOfItemsWithoutValues: a record the engine writes itself
// through an item built without index.ValuesOf is indexed from its
// encoding, so queries by its fields find it.
func TestPostingsOfItemsWithoutValues(t *testing.T) {
	e := open(t, t.TempDir(), testOpts(t))
	defer e.Close()
	r := rec(1)
	r.Action = "system.note"
	enc, err := r.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.AppendPrepared(ctx, &Prepared{items: []item{{enc: enc, keys: keysOf(&r)}}, size: len(enc)}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []query.Query{{Action: "system.note"}, {Action: "system.", TenantID: r.TenantID}} {
		if n, err := e.Count(ctx, q); err != nil || n != 1 {
			t.Fatalf("count %+v = %d (%v)", q, n, err)
		}
		if p, err := e.Query(ctx, q); err != nil || len(p.Records) != 1 {
			t.Fatalf("query %+v: %d records (%v)", q, len(p.Records), err)
		}
	}
}
