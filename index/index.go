package index

import (
	"math"

	"github.com/google/btree"

	"github.com/vellumlog/vellum/segment"
)

// Entry is one indexed span: which segment, where in it, and its summary.
type Entry struct {
	Seg  uint64
	Span segment.Span
	Sum  Summary
}

func less(a, b *Entry) bool {
	if a.Span.FirstTime != b.Span.FirstTime {
		return a.Span.FirstTime < b.Span.FirstTime
	}
	return a.Span.FirstSeq < b.Span.FirstSeq
}

// Index orders spans by (first time, first seq). Because receipt times
// increase with seq, that is also seq order, and every span's time range
// ends before the next one's begins. Not safe for concurrent use.
type Index struct {
	t *btree.BTreeG[*Entry]
}

// New returns an empty index.
func New() *Index { return &Index{t: btree.NewG(32, less)} }

// Add inserts entries (replacing any with the same key).
func (x *Index) Add(es ...*Entry) {
	for _, e := range es {
		x.t.ReplaceOrInsert(e)
	}
}

// Len returns the number of spans indexed.
func (x *Index) Len() int { return x.t.Len() }

// RemoveThrough deletes every span whose last seq is at most seq (retention
// removes whole segments from the front).
func (x *Index) RemoveThrough(seq uint64) {
	for {
		e, ok := x.t.Min()
		if !ok || e.Span.LastSeq() > seq {
			return
		}
		x.t.DeleteMin()
	}
}

// Ascend calls fn with the spans that may hold records at or after time lo,
// in ascending order, until fn returns false.
func (x *Index) Ascend(lo int64, fn func(*Entry) bool) {
	start := &Entry{Span: segment.Span{FirstTime: lo, FirstSeq: math.MaxUint64}}
	// The span holding lo starts at or before it.
	x.t.DescendLessOrEqual(start, func(e *Entry) bool {
		if e.Span.LastTime >= lo {
			start = e
		}
		return false
	})
	x.t.AscendGreaterOrEqual(start, func(e *Entry) bool { return fn(e) })
}

// Descend calls fn with the spans that start before time hi, in descending
// order, until fn returns false.
func (x *Index) Descend(hi int64, fn func(*Entry) bool) {
	if hi == math.MinInt64 {
		return
	}
	pivot := &Entry{Span: segment.Span{FirstTime: hi - 1, FirstSeq: math.MaxUint64}}
	x.t.DescendLessOrEqual(pivot, func(e *Entry) bool { return fn(e) })
}
