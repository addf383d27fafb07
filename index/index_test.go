package index

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/vellumlog/vellum/query"
	"github.com/vellumlog/vellum/segment"
)

type rec struct{ tenant, user, action, tool, model, status string }

func randRecs(rng *rand.Rand, n, tenants int) []rec {
	actions := []string{"tool.call", "tool.result", "approval.granted", "approval.denied", "model.decision"}
	statuses := []string{"success", "failure", "denied", "approved"}
	out := make([]rec, n)
	for i := range out {
		out[i] = rec{
			tenant: fmt.Sprintf("t%d", rng.IntN(tenants)),
			user:   fmt.Sprintf("u%d", rng.IntN(1000)),
			action: actions[rng.IntN(len(actions))],
			tool:   fmt.Sprintf("tool%d", rng.IntN(5)),
			model:  fmt.Sprintf("m%d", rng.IntN(3)),
			status: statuses[rng.IntN(len(statuses))],
		}
	}
	return out
}

func match(q *query.Query, r rec) bool {
	return (q.TenantID == "" || q.TenantID == r.tenant) && (q.UserID == "" || q.UserID == r.user) &&
		q.MatchAction(r.action) && (q.Tool == "" || q.Tool == r.tool) && (q.Model == "" || q.Model == r.model) &&
		(q.Outcome == "" || q.Outcome == r.status)
}

// TestSummaryNoFalseNegatives checks, over random spans and queries, that a
// summary never rules out a span holding a matching record, and that it
// does rule out most spans for values they lack.
func TestSummaryNoFalseNegatives(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	skipped, absent := 0, 0
	for span := 0; span < 300; span++ {
		recs := randRecs(rng, 1+rng.IntN(300), 1+rng.IntN(30))
		var b Builder
		for _, r := range recs {
			k := KeysOf(r.tenant, r.user, r.action, r.tool, r.model, r.status)
			b.Add(&k)
		}
		sum := b.Build()
		for qi := 0; qi < 50; qi++ {
			src := recs[rng.IntN(len(recs))]
			q := query.Query{}
			switch rng.IntN(6) {
			case 0:
				q.TenantID = src.tenant
			case 1:
				q.UserID = src.user
			case 2:
				q.Action = src.action
			case 3:
				q.Action = src.action[:len("tool.")]
				if src.action[:5] != "tool." {
					q.Action = "approval."
				}
			case 4:
				q.Tool, q.Outcome = src.tool, src.status
			case 5:
				q.TenantID, q.Model = fmt.Sprintf("t%d", 100+rng.IntN(100)), src.model // absent tenant
			}
			any := false
			for _, r := range recs {
				if match(&q, r) {
					any = true
					break
				}
			}
			may := sum.MayMatch(&q)
			if any && !may {
				t.Fatalf("span %d: summary rules out %+v, which a record matches", span, q)
			}
			if !any {
				absent++
				if !may {
					skipped++
				}
			}
		}
	}
	if absent == 0 || float64(skipped)/float64(absent) < 0.9 {
		t.Fatalf("summaries skip only %d of %d spans without a match", skipped, absent)
	}
}

func TestSummaryFoldsSmall(t *testing.T) {
	var b Builder
	k := KeysOf("acme", "alice", "tool.call", "web_search", "m", "success")
	b.Add(&k)
	s := b.Build()
	if len(s.Bloom) > 2 {
		t.Fatalf("a one-record span kept %d words", len(s.Bloom))
	}
	if !s.MayMatch(&query.Query{TenantID: "acme", Action: "tool.", Outcome: "success"}) {
		t.Fatal("false negative after folding")
	}
	if s.MayMatch(&query.Query{Outcome: "denied"}) {
		t.Fatal("outcome bits are exact")
	}
	var zero Summary
	if !zero.MayMatch(&query.Query{TenantID: "x"}) {
		t.Fatal("an unknown summary must match everything")
	}
}

func TestMarshalSummaries(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var sums []Summary
	for i := 0; i < 20; i++ {
		var b Builder
		for _, r := range randRecs(rng, 1+rng.IntN(200), 10) {
			k := KeysOf(r.tenant, r.user, r.action, r.tool, r.model, r.status)
			b.Add(&k)
		}
		sums = append(sums, b.Build())
	}
	sums = append(sums, Summary{})
	enc := MarshalSummaries(sums)
	got, err := UnmarshalSummaries(enc, len(sums))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sums) {
		t.Fatal("round trip differs")
	}
	if _, err := UnmarshalSummaries(enc, len(sums)+1); err == nil {
		t.Fatal("count mismatch accepted")
	}
	for cut := 0; cut < len(enc); cut += 7 {
		if _, err := UnmarshalSummaries(enc[:cut], len(sums)); err == nil {
			t.Fatalf("truncated section (%d bytes) accepted", cut)
		}
	}
}

func TestAscendDescend(t *testing.T) {
	x := New()
	// 50 spans of 10 records; record seq s has time 10*s.
	for i := 0; i < 50; i++ {
		first := uint64(i*10 + 1)
		x.Add(&Entry{Seg: uint64(i / 10), Span: segment.Span{FirstSeq: first, Count: 10, FirstTime: int64(first) * 10, LastTime: int64(first+9) * 10}})
	}
	collect := func(f func(fn func(*Entry) bool)) []uint64 {
		var out []uint64
		f(func(e *Entry) bool { out = append(out, e.Span.FirstSeq); return len(out) < 3 })
		return out
	}
	tests := []struct {
		name string
		f    func(fn func(*Entry) bool)
		want []uint64
	}{
		{"ascend from the start", func(fn func(*Entry) bool) { x.Ascend(math.MinInt64, fn) }, []uint64{1, 11, 21}},
		{"ascend inside a span", func(fn func(*Entry) bool) { x.Ascend(1500, fn) }, []uint64{141, 151, 161}},
		{"ascend at a span's first time", func(fn func(*Entry) bool) { x.Ascend(1010, fn) }, []uint64{101, 111, 121}},
		{"ascend in a gap", func(fn func(*Entry) bool) { x.Ascend(1105, fn) }, []uint64{111, 121, 131}},
		{"descend from the end", func(fn func(*Entry) bool) { x.Descend(math.MaxInt64, fn) }, []uint64{491, 481, 471}},
		{"descend inside a span", func(fn func(*Entry) bool) { x.Descend(1500, fn) }, []uint64{141, 131, 121}},
		{"descend at a span's first time", func(fn func(*Entry) bool) { x.Descend(1010, fn) }, []uint64{91, 81, 71}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := collect(tt.f); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	x.RemoveThrough(100)
	if x.Len() != 40 {
		t.Fatalf("Len after RemoveThrough = %d", x.Len())
	}
}

// TestKeysOverflowMakesSummaryUnknown: an action with more dotted prefixes
// than Keys holds must not produce a summary that rules out its span.
func TestKeysOverflowMakesSummaryUnknown(t *testing.T) {
	action := "a.b.c.d.e.f.g.h.i.j.k"
	var b Builder
	k := KeysOf("t", "u", action, "tool", "model", "success")
	b.Add(&k)
	s := b.Build()
	for _, q := range []query.Query{{Action: action}, {Action: "a.b.c.d.e.f.g.h.i."}, {Model: "model"}} {
		if !s.MayMatch(&q) {
			t.Fatalf("summary rules out %+v, which the record matches", q)
		}
	}
}
