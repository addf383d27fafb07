package index

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// postRecs makes n records' values: few tenants, actions and outcomes,
// many users, unique sessions and traces (the benchmark's shape), and a
// few records with empty fields.
func postRecs(rng *rand.Rand, n int) []Values {
	actions := []string{"tool.call", "tool.result", "approval.granted", "approval.denied", "model.decision", "a.b.c"}
	statuses := []string{"success", "failure", "denied", "approved"}
	out := make([]Values, n)
	for i := range out {
		out[i] = Values{
			Tenant:  fmt.Sprintf("t%d", rng.IntN(7)),
			User:    fmt.Sprintf("u%d", rng.IntN(300)),
			Action:  actions[rng.IntN(len(actions))],
			Tool:    fmt.Sprintf("tool%d", rng.IntN(5)),
			Model:   fmt.Sprintf("m%d", rng.IntN(3)),
			Outcome: statuses[rng.IntN(len(statuses))],
			Session: fmt.Sprintf("s%d", rng.IntN(n/3+1)),
			Trace:   fmt.Sprintf("tr%d", rng.Uint64()),
		}
		if rng.IntN(10) == 0 {
			out[i].User, out[i].Tool, out[i].Session = "", "", ""
		}
	}
	return out
}

func valueOf(v *Values, field byte) []string {
	switch field {
	case FieldTenant:
		return []string{v.Tenant}
	case FieldUser:
		return []string{v.User}
	case FieldAction:
		return []string{v.Action}
	case FieldActionPrefix:
		var ps []string
		for i := 0; i < len(v.Action)-1; i++ {
			if v.Action[i] == '.' {
				ps = append(ps, v.Action[:i+1])
			}
		}
		return ps
	case FieldTool:
		return []string{v.Tool}
	case FieldModel:
		return []string{v.Model}
	case FieldOutcome:
		return []string{v.Outcome}
	case FieldSession:
		return []string{v.Session}
	case FieldTrace:
		return []string{v.Trace}
	}
	return nil
}

func naive(recs []Values, field byte, value string) []uint32 {
	var out []uint32
	for i := range recs {
		if value != "" && slices.Contains(valueOf(&recs[i], field), value) {
			out = append(out, uint32(i))
		}
	}
	return out
}

func bytesReader(sec []byte) ReadAt {
	return func(b []byte, off int64) error {
		if off < 0 || off+int64(len(b)) > int64(len(sec)) {
			return errors.New("read past the section")
		}
		copy(b, sec[off:])
		return nil
	}
}

// TestPostingsMatchNaive builds postings over random records and checks
// every list, from the builder and from the encoded section, against a
// scan of the records: exact fields exactly, hashed fields as a superset.
func TestPostingsMatchNaive(t *testing.T) {
	for _, version := range []byte{1, 2} {
		for _, n := range []int{1, 17, 300, 5000} {
			t.Run(fmt.Sprintf("version=%d/records=%d", version, n), func(t *testing.T) {
				testPostingsMatchNaive(t, version, n)
			})
		}
	}
}

func testPostingsMatchNaive(t *testing.T, version byte, n int) {
	{
		{
			rng := rand.New(rand.NewPCG(uint64(n), 9))
			recs := postRecs(rng, n)
			var b PostingsBuilder
			for i := range recs {
				b.Add(&recs[i])
			}
			sec := b.MarshalVersion(version)
			if sec[0] != version {
				t.Fatalf("section version %d, want %d", sec[0], version)
			}
			p, err := ParsePostings(sec, uint64(n))
			if err != nil {
				t.Fatal(err)
			}
			p.SetBase(0)
			read := bytesReader(sec)
			cache := NewCache(1 << 20)
			check := func(field byte, value string) {
				want := naive(recs, field, value)
				fromB := b.Lookup(field, value)
				fromP, err := p.Lookup(read, field, value)
				if err != nil {
					t.Fatalf("field %d %q: %v", field, value, err)
				}
				fromC, err := p.LookupCached(read, cache, field, value)
				if err != nil {
					t.Fatalf("field %d %q, cached: %v", field, value, err)
				}
				if field >= FieldSession && !slices.Equal(fromC.AppendRange(nil, 0, uint32(n)), fromP.AppendRange(nil, 0, uint32(n))) {
					t.Fatalf("field %d %q: the cached fingerprints give other candidates than the section", field, value)
				}
				for name, l := range map[string]List{"builder": fromB, "section": fromP, "cached": fromC} {
					got := l.AppendRange(nil, 0, uint32(n))
					if field >= FieldSession {
						if !l.Candidates() {
							t.Fatalf("%s: hashed list not marked candidates", name)
						}
						for _, o := range want {
							if !slices.Contains(got, o) {
								t.Fatalf("%s field %d %q: missing ordinal %d", name, field, value, o)
							}
						}
						continue
					}
					if !slices.Equal(got, want) || l.Len() != len(want) {
						t.Fatalf("%s field %d %q: got %v, want %v", name, field, value, got, want)
					}
					for _, o := range want {
						if !l.Contains(o) {
							t.Fatalf("%s: Contains(%d) false", name, o)
						}
					}
				}
				if field < FieldSession && p.Count(field, value) != len(want) {
					t.Fatalf("Count(%d, %q) = %d, want %d", field, value, p.Count(field, value), len(want))
				}
			}
			for i := 0; i < 40; i++ {
				r := &recs[rng.IntN(n)]
				for f := byte(FieldTenant); f <= FieldTrace; f++ {
					for _, v := range valueOf(r, f) {
						check(f, v)
					}
				}
			}
			for f := byte(FieldTenant); f <= FieldTrace; f++ {
				check(f, "absent-value")
				check(f, "\x00") // sorts before every stored value
				check(f, "\xff") // and after
			}
			// The key table is one sorted run per field: a value of one
			// field is not found under another.
			for f := byte(FieldTenant); f < FieldSession; f++ {
				for g := byte(FieldTenant); g < FieldSession; g++ {
					for _, v := range valueOf(&recs[0], g) {
						if want := len(naive(recs, f, v)) > 0; p.Has(f, v) != want {
							t.Fatalf("Has(%d, %q) = %v, want %v", f, v, !want, want)
						}
					}
				}
			}
			// Intersections against the naive answer.
			for i := 0; i < 40; i++ {
				r := &recs[rng.IntN(n)]
				lists := []List{b.Lookup(FieldTenant, r.Tenant), b.Lookup(FieldAction, r.Action)}
				if i%2 == 0 {
					lists = append(lists, b.Lookup(FieldOutcome, r.Outcome))
				}
				lo := uint32(rng.IntN(n))
				hi := lo + uint32(rng.IntN(n))
				var want []uint32
				for j := lo; j < hi && j < uint32(n); j++ {
					v := &recs[j]
					if v.Tenant == r.Tenant && v.Action == r.Action && (i%2 != 0 || v.Outcome == r.Outcome) {
						want = append(want, j)
					}
				}
				if got := Intersect(lists, lo, hi); !slices.Equal(got, want) {
					t.Fatalf("intersect: got %v, want %v", got, want)
				}
			}
			// Deterministic: the same records give the same bytes.
			var b2 PostingsBuilder
			for i := range recs {
				b2.Add(&recs[i])
			}
			if !bytes.Equal(b2.MarshalVersion(version), sec) {
				t.Fatal("postings are not deterministic")
			}
		}
	}
}

// TestPostingsFingerprintBits: version 2 keeps as many fingerprint bits as
// the ordinal leaves in an entry of the same size as version 1's, so that a
// value a segment lacks matches an entry far less often (version 1: about
// one segment in sixteen, each costing the reader a block).
func TestPostingsFingerprintBits(t *testing.T) {
	const n = 70_000
	rng := rand.New(rand.NewPCG(70, 7))
	recs := postRecs(rng, n)
	var b PostingsBuilder
	for i := range recs {
		b.Add(&recs[i])
	}
	false1 := 0
	var sizes []int
	for _, version := range []byte{1, 2} {
		sec := b.MarshalVersion(version)
		sizes = append(sizes, len(sec))
		p, err := ParsePostings(sec, n)
		if err != nil {
			t.Fatal(err)
		}
		p.SetBase(0)
		read, cache := bytesReader(sec), NewCache(1<<20)
		falses := 0
		for i := range 4000 {
			l, err := p.LookupCached(read, cache, FieldTrace, fmt.Sprintf("absent-%d", i))
			if err != nil {
				t.Fatal(err)
			}
			falses += l.Len()
		}
		// 8 to 16 entries a bucket (here about 8.5): 4000 lookups match
		// about 130 entries by an 8-bit fingerprint, and about 1 by the
		// 15 bits of version 2 at 70,000 records.
		t.Logf("version %d: %d entries matched by 4000 absent values", version, falses)
		switch version {
		case 1:
			false1 = falses
			if falses < 60 {
				t.Fatalf("version 1 matched %d entries, about 130 expected", falses)
			}
		case 2:
			if falses > 20 || falses*10 > false1 {
				t.Fatalf("version 2 matched %d entries (version 1: %d)", falses, false1)
			}
		}
	}
	if sizes[0] != sizes[1] {
		t.Fatalf("version 1 section %d bytes, version 2 %d", sizes[0], sizes[1])
	}
}

// TestPostingsCorrupt: truncated or altered sections are refused or give
// an error on lookup, never a panic, and never a list out of range.
func TestPostingsCorrupt(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	recs := postRecs(rng, 400)
	var b PostingsBuilder
	for i := range recs {
		b.Add(&recs[i])
	}
	for _, version := range []byte{1, 2} {
		testPostingsCorrupt(t, rng, b.MarshalVersion(version), recs)
	}
}

func testPostingsCorrupt(t *testing.T, rng *rand.Rand, sec []byte, recs []Values) {
	if _, err := ParsePostings(sec, 401); !errors.Is(err, ErrPostingsCorrupt) {
		t.Fatalf("record count mismatch: %v", err)
	}
	for cut := 0; cut < len(sec); cut += 13 {
		if p, err := ParsePostings(sec[:cut], 400); err == nil {
			lookupAll(p, sec[:cut], recs)
		}
	}
	for i := 0; i < 2000; i++ {
		bad := bytes.Clone(sec)
		bad[rng.IntN(len(bad))] ^= byte(1 + rng.IntN(255))
		if p, err := ParsePostings(bad, 400); err == nil {
			lookupAll(p, bad, recs)
		}
	}
}

func lookupAll(p *Postings, sec []byte, recs []Values) {
	p.SetBase(0)
	read := bytesReader(sec)
	for i := 0; i < 20; i++ {
		r := &recs[i]
		for f := byte(FieldTenant); f <= FieldTrace; f++ {
			for _, v := range valueOf(r, f) {
				l, err := p.Lookup(read, f, v)
				if err == nil {
					for _, o := range l.AppendRange(nil, 0, ^uint32(0)) {
						if int(o) >= p.Records() {
							panic(fmt.Sprintf("ordinal %d of %d records", o, p.Records()))
						}
					}
				}
			}
		}
	}
}

// FuzzPostings parses arbitrary bytes as section 4 and looks values up in
// it: it must never panic, and what it returns must be in range.
func FuzzPostings(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, n := range []int{1, 20, 200} {
		recs := postRecs(rng, n)
		var b PostingsBuilder
		for i := range recs {
			b.Add(&recs[i])
		}
		f.Add(b.Marshal(), uint32(n))
		f.Add(b.MarshalVersion(1), uint32(n))
	}
	f.Fuzz(func(t *testing.T, sec []byte, n uint32) {
		p, err := ParsePostings(sec, uint64(n))
		if err != nil {
			if !errors.Is(err, ErrPostingsCorrupt) {
				t.Fatalf("error %v is not ErrPostingsCorrupt", err)
			}
			return
		}
		p.SetBase(0)
		read := bytesReader(sec)
		// Through the list cache too: dense forms, fingerprints in
		// memory, and counting and intersecting what was found.
		c := NewCache(1 << 20)
		var found []List
		for f := byte(FieldTenant); f <= FieldTrace; f++ {
			for _, v := range []string{"t0", "t1", "u1", "tool.call", "success", "s1"} {
				l, err := p.LookupCached(read, c, f, v)
				if err != nil {
					if !errors.Is(err, ErrPostingsCorrupt) {
						t.Fatalf("error %v is not ErrPostingsCorrupt", err)
					}
					continue
				}
				if l.Len() > 0 {
					found = append(found, l)
				}
			}
		}
		for i := 0; i+1 < len(found); i++ {
			pair := found[i : i+2]
			in := Intersect(pair, 0, n)
			if got := CountAnd(pair, 0, n); got != len(in) {
				t.Fatalf("CountAnd %d, Intersect holds %d", got, len(in))
			}
			for _, o := range in {
				if o >= n || !pair[0].Contains(o) || !pair[1].Contains(o) {
					t.Fatalf("intersection holds %d, not in both lists or out of %d records", o, n)
				}
			}
		}
		for f := byte(FieldTenant); f <= FieldTrace; f++ {
			for _, v := range []string{"t0", "t1", "u1", "tool.call", "approval.", "success", "s1", "tool0"} {
				l, err := p.Lookup(read, f, v)
				if err != nil {
					continue
				}
				for _, o := range l.AppendRange(nil, 0, ^uint32(0)) {
					if o >= n {
						t.Fatalf("ordinal %d of %d records", o, n)
					}
				}
			}
		}
	})
}

// TestEqualValue: equalValue tells apart values that differ in any one
// byte, at every length up to 24 (values of 8 to 16 bytes are compared as
// two overlapping words), for both kinds of value.
func TestEqualValue(t *testing.T) {
	for n := 0; n <= 24; n++ {
		a := strings.Repeat("v", n)
		if !equalValue(a, a) || !equalValue(a, []byte(a)) {
			t.Fatalf("a value of %d bytes differs from itself", n)
		}
		if equalValue(a, a+"x") || equalValue(a+"x", []byte(a)) {
			t.Fatalf("values of %d and %d bytes are equal", n, n+1)
		}
		for i := range n {
			b := []byte(a)
			b[i] = 'w'
			if equalValue(a, b) || equalValue(a, string(b)) {
				t.Fatalf("values of %d bytes differing at byte %d are equal", n, i)
			}
		}
	}
}
