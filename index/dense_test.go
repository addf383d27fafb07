package index

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/vellumlog/vellum"
)

// TestDenseCountAnd checks CountAnd and Intersect over every mix of list
// forms (deltas, section bitmaps, Dense bitmaps, Dense ordinals) against a
// naive intersection, for random ranges, including word edges.
func TestDenseCountAnd(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, records := range []int{1, 63, 64, 65, 1000, 70000} {
		for _, dens := range [][]int{{2, 3}, {20, 2}, {100, 500}, {3, 3, 7}, {1, 40}} {
			t.Run(fmt.Sprintf("records=%d/every=%v", records, dens), func(t *testing.T) {
				var raw [][]uint32
				for _, d := range dens {
					var l []uint32
					for o := range records {
						if rng.IntN(d) == 0 {
							l = append(l, uint32(o))
						}
					}
					raw = append(raw, l)
				}
				forms := func(l []uint32) []List {
					if len(l) == 0 {
						return []List{{}}
					}
					deltas := List{ords: l, count: len(l)}
					bm := appendBitmap(nil, l)
					sec, err := decodeList(bm, listBitmap, len(l), uint32(records))
					if err != nil {
						t.Fatal(err)
					}
					return []List{deltas, sec, deltas.Dense(records), sec.Dense(records)}
				}
				for range 30 {
					lo := uint32(rng.IntN(records + 1))
					hi := lo + uint32(rng.IntN(records+1-int(lo)+1))
					var want []uint32
					for o := lo; o < hi; o++ {
						in := true
						for _, l := range raw {
							_, ok := slices.BinarySearch(l, o)
							in = in && ok
						}
						if in {
							want = append(want, o)
						}
					}
					lists := make([]List, len(raw))
					for f := range 4 {
						for i, l := range raw {
							fs := forms(l)
							lists[i] = fs[(f+i)%len(fs)]
						}
						if got := CountAnd(lists, lo, hi); got != len(want) {
							t.Fatalf("form %d [%d,%d): CountAnd %d, want %d", f, lo, hi, got, len(want))
						}
						if got := Intersect(lists, lo, hi); !slices.Equal(got, want) && len(want)+len(got) > 0 {
							t.Fatalf("form %d [%d,%d): Intersect %v, want %v", f, lo, hi, got, want)
						}
						for i, l := range lists {
							if got := l.AppendRange(nil, lo, hi); len(got) > 0 || len(raw[i]) > 0 {
								var w []uint32
								for _, o := range raw[i] {
									if o >= lo && o < hi {
										w = append(w, o)
									}
								}
								if !slices.Equal(got, w) && len(got)+len(w) > 0 {
									t.Fatalf("form %d list %d AppendRange [%d,%d) = %v, want %v", f, i, lo, hi, got, w)
								}
							}
						}
					}
				}
			})
		}
	}
}

// TestCacheEvicts checks that LookupCached serves a list from the cache
// (the same contents as Lookup), and that the cache stays within its byte
// budget and forgets a segment's lists.
func TestCacheEvicts(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	recs := postRecs(rng, 5000)
	var b PostingsBuilder
	for i := range recs {
		b.Add(&recs[i])
	}
	sec := b.Marshal()
	p, err := ParsePostings(sec, uint64(len(recs)))
	if err != nil {
		t.Fatal(err)
	}
	p.SetBase(0)
	read := bytesReader(sec)
	c := NewCache(4096)
	for range 3 {
		for u := range 300 {
			v := fmt.Sprintf("u%d", u)
			l, err := p.LookupCached(read, c, FieldUser, v)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := l.AppendRange(nil, 0, 5000), naive(recs, FieldUser, v); !slices.Equal(got, want) {
				t.Fatalf("%s: %v, want %v", v, got, want)
			}
			if size, _, _ := c.Stats(); size > 4096 {
				t.Fatalf("cache holds %d bytes, limit 4096", size)
			}
		}
	}
	l1, _ := p.LookupCached(read, c, FieldTenant, "t1")
	l2, _ := p.LookupCached(read, c, FieldTenant, "t1")
	if l1.words == nil || &l1.words[0] != &l2.words[0] {
		t.Fatal("a dense list read twice was not served from the cache")
	}
	if _, hits, _ := c.Stats(); hits == 0 {
		t.Fatal("no cache hits")
	}
	// Hashed fields: the fingerprints in memory find what a bucket read
	// finds, values present and absent alike.
	big := NewCache(1 << 20)
	for i := range 400 {
		for _, q := range []struct {
			field byte
			v     string
		}{{FieldSession, recs[i].Session}, {FieldTrace, recs[i].Trace}, {FieldTrace, fmt.Sprintf("absent%d", i)}} {
			want, err := p.Lookup(read, q.field, q.v)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.LookupCached(read, big, q.field, q.v)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Candidates() || !slices.Equal(got.AppendRange(nil, 0, 5000), want.AppendRange(nil, 0, 5000)) {
				t.Fatalf("field %d %q: %v, bucket read gives %v", q.field, q.v, got.AppendRange(nil, 0, 5000), want.AppendRange(nil, 0, 5000))
			}
		}
	}
	c.Forget(p)
	if size, _, _ := c.Stats(); size != 0 {
		t.Fatalf("after Forget the cache holds %d bytes", size)
	}
}

// BenchmarkCountAnd counts the records two dense lists of a segment of
// 217,000 records share (a tenant of 20 and an action of 8, as in the
// benchmark store): what a whole-segment count costs once its lists are
// in the cache.
func BenchmarkCountAnd(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 5))
	const records = 217000
	var t, a []uint32
	for o := range uint32(records) {
		if rng.IntN(20) == 0 {
			t = append(t, o)
		}
		if rng.IntN(8) == 0 {
			a = append(a, o)
		}
	}
	lists := []List{List{ords: t, count: len(t)}.Dense(records), List{ords: a, count: len(a)}.Dense(records)}
	for b.Loop() {
		CountAnd(lists, 0, records)
	}
}

// TestValuesOfKeys checks that values built from a record's summary keys
// hash exactly as values built from scratch, for actions with no, one and
// many dotted prefixes (more keys than a summary holds) and empty fields.
func TestValuesOfKeys(t *testing.T) {
	actions := []string{"login", "tool.call", "a.b.c", "a.b.c.d.e.f.g.h.i.j.k.l.m", "x."}
	for i := range 200 {
		r := vellum.Record{TenantID: fmt.Sprintf("t%d", i%3), UserID: fmt.Sprintf("u%d", i), Action: actions[i%len(actions)],
			Tool: vellum.Tool{Name: fmt.Sprintf("tool%d", i%4)}, Model: vellum.Model{Name: "m"}, Outcome: vellum.Outcome{Status: "denied"},
			SessionID: fmt.Sprintf("s%d", i), TraceID: fmt.Sprintf("tr%d", i)}
		if i%5 == 0 {
			r.UserID, r.Tool.Name, r.Model.Name, r.SessionID = "", "", "", ""
		}
		k := KeysOf(r.TenantID, r.UserID, r.Action, r.Tool.Name, r.Model.Name, r.Outcome.Status)
		if got, want := ValuesOfKeys(&r, &k), ValuesOf(&r); got != want {
			t.Fatalf("record %d (action %q): ValuesOfKeys %+v, ValuesOf %+v", i, r.Action, got, want)
		}
	}
}

// TestNextMarshalsAsFresh checks that a builder made by Next (carrying
// the previous segment's keys, some never seen again) encodes exactly the
// section a fresh builder encodes for the same records: vellum verify
// rebuilds with a fresh one and compares bytes.
func TestNextMarshalsAsFresh(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var prev PostingsBuilder
	for _, v := range postRecs(rng, 3000) {
		prev.Add(&v)
	}
	for _, n := range []int{0, 1, 50, 4000} {
		recs := postRecs(rng, n)
		for i := range recs {
			if i%3 == 0 {
				recs[i].User = fmt.Sprintf("new%d", i) // values the previous segment lacked
			}
		}
		next, fresh := prev.Next(), &PostingsBuilder{}
		for i := range recs {
			a, b := recs[i], recs[i]
			next.Add(&a)
			fresh.Add(&b)
		}
		if !slices.Equal(next.Marshal(), fresh.Marshal()) {
			t.Fatalf("records=%d: the section of a builder from Next differs from a fresh builder's", n)
		}
		if l := next.Lookup(FieldUser, "u1"); n == 0 && l.Len() != 0 {
			t.Fatalf("a carried key with no records looks up %d ordinals", l.Len())
		}
	}
}
