package report

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/verify"
)

// oracle counts the same things as Aggregate the slow, obvious way: every
// record fully decoded through verify.Store.
func oracle(t *testing.T, dir string, f Filter) *Summary {
	t.Helper()
	st, err := verify.OpenStore(nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := newPartial()
	tenants := map[string]bool{}
	for _, tn := range f.Tenants {
		tenants[tn] = true
	}
	lo, hi := f.bounds()
	for sr, err := range st.Records(st.FirstSeq(), st.LastSeq()) {
		if err != nil {
			t.Fatal(err)
		}
		r := sr.Record
		p.scanned++
		ts := r.Time.UnixNano()
		if ts < lo || ts >= hi || (len(tenants) > 0 && !tenants[r.TenantID]) {
			continue
		}
		p.records++
		p.first, p.last = min(p.first, ts), max(p.last, ts)
		day := ts / nsPerDay
		d := p.days[day]
		if d == nil {
			d = &Day{Date: time.Unix(0, day*nsPerDay).UTC()}
			p.days[day] = d
		}
		d.ByOutcome[slices.Index(vellum.Statuses, r.Outcome.Status)]++
		if r.Tool.IsError {
			d.ToolErrors++
		}
		inc(p.actions, []byte(r.Action), 1)
		inc(p.tenants, []byte(r.TenantID), 1)
		if r.Tool.Name != "" {
			inc(p.tools, []byte(r.Tool.Name), 1)
			if r.Tool.IsError || r.Outcome.Status == vellum.StatusFailure {
				inc(p.failedTools, []byte(r.Tool.Name), 1)
			}
		}
		if len(r.Redactions) > 0 {
			p.redacted++
		}
		for _, x := range r.Redactions {
			inc(p.redactions, []byte(x.Rule), uint64(x.Count))
		}
	}
	return p.summary(0, 0)
}

func TestAggregateMatchesOracle(t *testing.T) {
	fx := buildFixture(t, 3000, 14)
	day := 24 * time.Hour
	tests := []struct {
		name string
		f    Filter
	}{
		{"everything", Filter{}},
		{"since", Filter{Since: fixtureStart.Add(3*day + 5*time.Hour)}},
		{"until", Filter{Until: fixtureStart.Add(6 * day)}},
		{"window", Filter{Since: fixtureStart.Add(2 * day), Until: fixtureStart.Add(9*day + time.Hour)}},
		{"tenant", Filter{Tenants: []string{"globex"}}},
		{"tenants and window", Filter{Tenants: []string{"acme", "initech"}, Since: fixtureStart.Add(day), Until: fixtureStart.Add(2 * day)}},
		{"nothing", Filter{Tenants: []string{"nobody"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Aggregate(context.Background(), fx.dir, tt.f, &AggregateOptions{Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			want := oracle(t, fx.dir, tt.f)
			if got.Segments < 3 {
				t.Fatalf("the fixture has %d segments; want several sealed ones", got.Segments)
			}
			if tt.f.Since.IsZero() && tt.f.Until.IsZero() && got.Scanned != want.Scanned {
				t.Errorf("scanned %d, the store holds %d", got.Scanned, want.Scanned)
			}
			if !tt.f.Since.IsZero() && got.Scanned >= want.Scanned {
				t.Errorf("a time filter read all %d records; spans outside it should be skipped", got.Scanned)
			}
			got.Scanned, got.Segments, got.Elapsed = 0, 0, 0
			want.Scanned = 0
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Aggregate differs from the oracle:\n got %+v\nwant %+v", got, want)
			}
			if tt.name == "everything" {
				if got.Records == 0 || len(got.Redactions) == 0 || len(got.Days) < 14 || got.ByOutcome[2] == 0 || got.ByOutcome[4] == 0 {
					t.Fatalf("the fixture lacks variety: %+v", got)
				}
			}
			if tt.name == "nothing" && got.Records != 0 {
				t.Fatalf("%d records for an unknown tenant", got.Records)
			}
		})
	}
}

func TestParseFieldsRejectsDamage(t *testing.T) {
	r := vellum.Record{TenantID: "acme", Action: "tool.call", Tool: vellum.Tool{Name: "web_search"}, Outcome: vellum.Outcome{Status: "success"},
		Redactions: []vellum.Redaction{{Rule: "EMAIL", Field: "tool.arguments.to", Count: 2}}}
	enc, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var f fields
	if err := parseFields(enc, &f); err != nil {
		t.Fatal(err)
	}
	var rules []string
	if err := f.eachRedaction(func(rule []byte, c uint64) { rules = append(rules, string(rule)) }); err != nil || !slices.Equal(rules, []string{"EMAIL"}) {
		t.Fatalf("redactions %v, %v", rules, err)
	}
	if string(f.tenant) != "acme" || string(f.tool) != "web_search" || string(f.status) != "success" || string(f.action) != "tool.call" {
		t.Fatalf("fields %+v", f)
	}
	for cut := 0; cut < len(enc); cut++ {
		var g fields
		if err := parseFields(enc[:cut], &g); err == nil {
			if g.eachRedaction(func([]byte, uint64) {}) == nil {
				t.Fatalf("a record cut to %d of %d bytes parsed whole", cut, len(enc))
			}
		}
	}
}

func FuzzParseFields(f *testing.F) {
	r := vellum.Record{TenantID: "acme", Action: "tool.call", Tool: vellum.Tool{Name: "web_search"}, Outcome: vellum.Outcome{Status: "success"},
		Attributes: map[string]string{"a": "b"}, Redactions: []vellum.Redaction{{Rule: "EMAIL", Field: "x", Count: 1}}}
	enc, _ := r.MarshalBinary()
	f.Add(enc)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var g fields
		if parseFields(b, &g) == nil {
			g.eachRedaction(func([]byte, uint64) {})
		}
	})
}
