package query

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func rec(seq uint64, at time.Time) vellum.Record {
	return vellum.Record{
		Seq: seq, Time: at,
		TenantID: "acme", UserID: "alice", SessionID: "s-1", TraceID: "trace_1",
		Action: "approval.granted",
		Tool:   vellum.Tool{Name: "web_search"},
		Model:  vellum.Model{Name: "granite-3.3-8b", Provider: "vllm"},
		Outcome: vellum.Outcome{
			Status: vellum.StatusApproved,
		},
	}
}

func TestNormalize(t *testing.T) {
	long := strings.Repeat("x", vellum.MaxIDLen+1)
	tests := []struct {
		name      string
		q         Query
		wantParam string // "" = valid
		check     func(t *testing.T, q Query)
	}{
		{name: "zero value", check: func(t *testing.T, q Query) {
			if q.Limit != DefaultLimit {
				t.Errorf("limit = %d, want %d", q.Limit, DefaultLimit)
			}
		}},
		{name: "limit kept", q: Query{Limit: 7}, check: func(t *testing.T, q Query) {
			if q.Limit != 7 {
				t.Errorf("limit = %d", q.Limit)
			}
		}},
		{name: "limit max", q: Query{Limit: MaxLimit}},
		{name: "limit over max", q: Query{Limit: MaxLimit + 1}, wantParam: "limit"},
		{name: "limit negative", q: Query{Limit: -1}, wantParam: "limit"},
		{name: "times to UTC", q: Query{Since: t0.In(time.FixedZone("x", 3600)), Until: t0.Add(time.Hour).In(time.FixedZone("y", -7200))},
			check: func(t *testing.T, q Query) {
				if q.Since.Location() != time.UTC || q.Until.Location() != time.UTC || !q.Since.Equal(t0) {
					t.Errorf("since %v until %v", q.Since, q.Until)
				}
			}},
		{name: "until before since", q: Query{Since: t0, Until: t0.Add(-1)}, wantParam: "until"},
		{name: "until equals since (empty range)", q: Query{Since: t0, Until: t0}},
		{name: "since beyond 2262", q: Query{Since: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}, wantParam: "since"},
		{name: "until before 1678", q: Query{Until: time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)}, wantParam: "until"},
		{name: "outcome valid", q: Query{Outcome: "denied"}},
		{name: "outcome unknown", q: Query{Outcome: "ok"}, wantParam: "outcome"},
		{name: "action exact", q: Query{Action: "tool.call"}},
		{name: "action prefix", q: Query{Action: "approval."}},
		{name: "action upper case", q: Query{Action: "Tool.call"}, wantParam: "action"},
		{name: "action double dot", q: Query{Action: "tool..call"}, wantParam: "action"},
		{name: "action only a dot", q: Query{Action: "."}, wantParam: "action"},
		{name: "action too long", q: Query{Action: strings.Repeat("a", vellum.MaxActionLen+1)}, wantParam: "action"},
		{name: "tenant too long", q: Query{TenantID: long}, wantParam: "tenant_id"},
		{name: "user bad utf8", q: Query{UserID: "\xff"}, wantParam: "user_id"},
		{name: "session too long", q: Query{SessionID: long}, wantParam: "session_id"},
		{name: "trace bad utf8", q: Query{TraceID: "a\xc0"}, wantParam: "trace_id"},
		{name: "tool too long", q: Query{Tool: long}, wantParam: "tool"},
		{name: "model bad utf8", q: Query{Model: "\xfe"}, wantParam: "model"},
		{name: "tenants sorted and deduped", q: Query{Tenants: []string{"b", "a", "b"}}, check: func(t *testing.T, q Query) {
			if !reflect.DeepEqual(q.Tenants, []string{"a", "b"}) {
				t.Errorf("tenants = %q", q.Tenants)
			}
		}},
		{name: "tenants with empty", q: Query{Tenants: []string{"a", ""}}, wantParam: "tenants"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := tt.q
			err := q.Normalize()
			if tt.wantParam != "" {
				var pe *ParamError
				if !errors.As(err, &pe) || pe.Param != tt.wantParam || !errors.Is(err, ErrBadParam) {
					t.Fatalf("err = %v, want a ParamError for %s", err, tt.wantParam)
				}
				if pe.Reason == "" {
					t.Fatal("empty reason")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, q)
			}
			again := q
			if err := again.Normalize(); err != nil || !reflect.DeepEqual(again, q) {
				t.Fatalf("second Normalize changed the query: %v\n%+v\n%+v", err, again, q)
			}
		})
	}
}

func TestNormalizeDoesNotSortCallersSlice(t *testing.T) {
	scope := []string{"b", "a"}
	q := Query{Tenants: scope}
	if err := q.Normalize(); err != nil {
		t.Fatal(err)
	}
	if scope[0] != "b" {
		t.Fatal("Normalize sorted the caller's slice in place")
	}
}

func TestMatch(t *testing.T) {
	r := rec(10, t0)
	tests := []struct {
		name string
		q    Query
		want bool
	}{
		{"empty query", Query{}, true},
		{"since equal (inclusive)", Query{Since: t0}, true},
		{"since after", Query{Since: t0.Add(1)}, false},
		{"until equal (exclusive)", Query{Until: t0}, false},
		{"until after", Query{Until: t0.Add(1)}, true},
		{"range around", Query{Since: t0.Add(-time.Hour), Until: t0.Add(time.Hour)}, true},
		{"tenant", Query{TenantID: "acme"}, true},
		{"tenant other", Query{TenantID: "globex"}, false},
		{"tenant prefix is not a match", Query{TenantID: "acm"}, false},
		{"user", Query{UserID: "alice"}, true},
		{"user other", Query{UserID: "bob"}, false},
		{"session", Query{SessionID: "s-1"}, true},
		{"session other", Query{SessionID: "s-2"}, false},
		{"trace", Query{TraceID: "trace_1"}, true},
		{"trace other", Query{TraceID: "trace_2"}, false},
		{"tool", Query{Tool: "web_search"}, true},
		{"tool other", Query{Tool: "shell"}, false},
		{"outcome", Query{Outcome: "approved"}, true},
		{"outcome other", Query{Outcome: "denied"}, false},
		{"model matches model.name", Query{Model: "granite-3.3-8b"}, true},
		{"model is not the provider", Query{Model: "vllm"}, false},
		{"action exact", Query{Action: "approval.granted"}, true},
		{"action exact other", Query{Action: "approval.denied"}, false},
		{"action prefix", Query{Action: "approval."}, true},
		{"action prefix other", Query{Action: "tool."}, false},
		{"action without dot is exact", Query{Action: "approval"}, false},
		{"tenants contains", Query{Tenants: []string{"acme", "globex"}}, true},
		{"tenants excludes", Query{Tenants: []string{"globex"}}, false},
		{"tenant inside scope", Query{TenantID: "acme", Tenants: []string{"acme"}}, true},
		{"tenant outside scope", Query{TenantID: "acme", Tenants: []string{"globex"}}, false},
		{"all filters", Query{TenantID: "acme", UserID: "alice", SessionID: "s-1", TraceID: "trace_1", Tool: "web_search", Outcome: "approved", Model: "granite-3.3-8b", Action: "approval."}, true},
		{"all but one", Query{TenantID: "acme", UserID: "alice", SessionID: "s-1", TraceID: "trace_1", Tool: "web_search", Outcome: "approved", Model: "granite-3.3-8b", Action: "tool."}, false},
		{"asc after earlier", Query{After: &Position{Time: t0.UnixNano(), Seq: 9}}, true},
		{"asc after itself", Query{After: &Position{Time: t0.UnixNano(), Seq: 10}}, false},
		{"asc after later", Query{After: &Position{Time: t0.UnixNano(), Seq: 11}}, false},
		{"asc after earlier time larger seq", Query{After: &Position{Time: t0.UnixNano() - 1, Seq: 99}}, true},
		{"desc after later", Query{Desc: true, After: &Position{Time: t0.UnixNano(), Seq: 11}}, true},
		{"desc after itself", Query{Desc: true, After: &Position{Time: t0.UnixNano(), Seq: 10}}, false},
		{"desc after earlier", Query{Desc: true, After: &Position{Time: t0.UnixNano(), Seq: 9}}, false},
		{"limit is ignored", Query{Limit: 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.q.Match(&r); got != tt.want {
				t.Fatalf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBounds(t *testing.T) {
	tests := []struct {
		name   string
		q      Query
		lo, hi int64
	}{
		{"unbounded", Query{}, math.MinInt64, math.MaxInt64},
		{"since", Query{Since: t0}, t0.UnixNano(), math.MaxInt64},
		{"until", Query{Until: t0}, math.MinInt64, t0.UnixNano()},
		{"both", Query{Since: t0, Until: t0.Add(5)}, t0.UnixNano(), t0.UnixNano() + 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi := tt.q.Bounds()
			if lo != tt.lo || hi != tt.hi {
				t.Fatalf("Bounds = %d, %d; want %d, %d", lo, hi, tt.lo, tt.hi)
			}
		})
	}
}

func TestPositionCompare(t *testing.T) {
	tests := []struct {
		name string
		a, b Position
		want int
	}{
		{"equal", Position{5, 5}, Position{5, 5}, 0},
		{"time first", Position{4, 9}, Position{5, 1}, -1},
		{"time later", Position{6, 1}, Position{5, 9}, 1},
		{"seq breaks ties", Position{5, 1}, Position{5, 2}, -1},
		{"seq breaks ties later", Position{5, 3}, Position{5, 2}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Compare(tt.b); got != tt.want {
				t.Fatalf("Compare = %d, want %d", got, tt.want)
			}
		})
	}
	r := rec(3, t0)
	if p := PositionOf(&r); p != (Position{t0.UnixNano(), 3}) {
		t.Fatalf("PositionOf = %+v", p)
	}
}

func TestFingerprint(t *testing.T) {
	base := Query{Since: t0, Until: t0.Add(time.Hour), TenantID: "acme", Action: "tool."}
	fp := base.Fingerprint()
	same := []struct {
		name string
		mod  func(q *Query)
	}{
		{"limit", func(q *Query) { q.Limit = 5 }},
		{"order", func(q *Query) { q.Desc = true }},
		{"after", func(q *Query) { q.After = &Position{1, 2} }},
		{"time zone", func(q *Query) { q.Since = q.Since.In(time.FixedZone("x", 3600)) }},
	}
	for _, tt := range same {
		t.Run("ignores "+tt.name, func(t *testing.T) {
			q := base
			tt.mod(&q)
			if q.Fingerprint() != fp {
				t.Fatal("fingerprint changed")
			}
		})
	}
	differ := []struct {
		name string
		mod  func(q *Query)
	}{
		{"since", func(q *Query) { q.Since = q.Since.Add(1) }},
		{"since unset", func(q *Query) { q.Since = time.Time{} }},
		{"until", func(q *Query) { q.Until = q.Until.Add(1) }},
		{"tenant_id", func(q *Query) { q.TenantID = "acme2" }},
		{"user_id", func(q *Query) { q.UserID = "u" }},
		{"session_id", func(q *Query) { q.SessionID = "s" }},
		{"trace_id", func(q *Query) { q.TraceID = "t" }},
		{"action", func(q *Query) { q.Action = "tool.call" }},
		{"tool", func(q *Query) { q.Tool = "x" }},
		{"outcome", func(q *Query) { q.Outcome = "success" }},
		{"model", func(q *Query) { q.Model = "m" }},
		{"tenants", func(q *Query) { q.Tenants = []string{"acme"} }},
		// Length prefixes keep fields apart: moving bytes between
		// neighbours changes the fingerprint.
		{"shifted bytes", func(q *Query) { q.TenantID = "acm"; q.UserID = "e" }},
	}
	for _, tt := range differ {
		t.Run("covers "+tt.name, func(t *testing.T) {
			q := base
			tt.mod(&q)
			if q.Fingerprint() == fp {
				t.Fatal("fingerprint unchanged")
			}
		})
	}
	t.Run("tenants order and duplicates", func(t *testing.T) {
		a := Query{Tenants: []string{"b", "a", "a"}}
		b := Query{Tenants: []string{"a", "b"}}
		if a.Fingerprint() != b.Fingerprint() {
			t.Fatal("tenant scope order changes the fingerprint")
		}
	})
}
