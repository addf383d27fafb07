package query

import (
	"net/url"
	"testing"
	"time"
)

// TestMatchMaxSeq: a record past the high-water seq never matches, whatever
// else it matches.
func TestMatchMaxSeq(t *testing.T) {
	q := Query{MaxSeq: 5}
	for _, tt := range []struct {
		seq  uint64
		want bool
	}{{1, true}, {5, true}, {6, false}, {1 << 40, false}} {
		r := rec(tt.seq, t0)
		if got := q.Match(&r); got != tt.want {
			t.Errorf("seq %d: Match = %v, want %v", tt.seq, got, tt.want)
		}
	}
	r := rec(1<<40, t0)
	if !(&Query{}).Match(&r) {
		t.Error("MaxSeq 0 must not bound")
	}
}

// TestMatchEventTime: event_since/event_until bound the producer's time,
// half-open, and records without one do not match a bounded query.
func TestMatchEventTime(t *testing.T) {
	q := Query{EventSince: t0, EventUntil: t0.Add(time.Hour)}
	for _, tt := range []struct {
		name string
		et   time.Time
		want bool
	}{
		{"at since", t0, true},
		{"inside", t0.Add(time.Minute), true},
		{"at until", t0.Add(time.Hour), false},
		{"before", t0.Add(-time.Nanosecond), false},
		{"none", time.Time{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := rec(1, t0.Add(48*time.Hour)) // receipt time far from the event time
			r.EventTime = tt.et
			if got := q.Match(&r); got != tt.want {
				t.Fatalf("Match = %v, want %v", got, tt.want)
			}
		})
	}
	if err := (&Query{EventSince: t0, EventUntil: t0.Add(-1)}).Normalize(); err == nil || err.(*ParamError).Param != "event_until" {
		t.Fatalf("event_until before event_since: %v", err)
	}
	a, b := Query{EventSince: t0}, Query{Since: t0}
	if a.Fingerprint() == b.Fingerprint() {
		t.Fatal("event_since and since have the same fingerprint")
	}
}

func TestParseFilterValues(t *testing.T) {
	q, err := ParseFilterValues(url.Values{"tenant_id": {"acme"}, "event_since": {"2026-11-27T00:00:00Z"}})
	if err != nil || q.TenantID != "acme" || !q.EventSince.Equal(time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("%+v %v", q, err)
	}
	for _, p := range []string{"order", "limit", "cursor"} {
		_, err := ParseFilterValues(url.Values{p: {"1"}})
		if pe, ok := err.(*ParamError); !ok || pe.Param != p {
			t.Errorf("%s: err = %v", p, err)
		}
	}
	if len(FilterParams) != len(Params)-3 {
		t.Fatalf("FilterParams = %v", FilterParams)
	}
}
