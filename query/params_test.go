package query

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseValues(t *testing.T) {
	tests := []struct {
		name       string
		raw        string
		want       Query // compared when wantParam is ""
		wantCursor string
		wantParam  string
		reason     string // substring of the reason
	}{
		{name: "empty", raw: "", want: Query{Limit: DefaultLimit}},
		{name: "every parameter",
			raw: "since=2026-11-27T10:00:00Z&until=2026-11-27T11:00:00.5Z&tenant_id=acme&user_id=alice&session_id=s-1" +
				"&trace_id=trace_1&action=approval.&tool=web_search&outcome=approved&model=granite-3.3-8b&order=desc&limit=50&cursor=abc",
			want: Query{
				Since: t0, Until: t0.Add(time.Hour + 500*time.Millisecond),
				TenantID: "acme", UserID: "alice", SessionID: "s-1", TraceID: "trace_1",
				Action: "approval.", Tool: "web_search", Outcome: "approved", Model: "granite-3.3-8b",
				Desc: true, Limit: 50,
			},
			wantCursor: "abc"},
		{name: "since with offset", raw: "since=2026-11-27T11:00:00%2B01:00", want: Query{Since: t0, Limit: DefaultLimit}},
		{name: "since with unescaped plus", raw: "since=2026-11-27T11:00:00+01:00", want: Query{Since: t0, Limit: DefaultLimit}},
		{name: "since with nanoseconds", raw: "since=2026-11-27T10:00:00.000000001Z", want: Query{Since: t0.Add(1), Limit: DefaultLimit}},
		{name: "order asc", raw: "order=asc", want: Query{Limit: DefaultLimit}},
		{name: "limit 1", raw: "limit=1", want: Query{Limit: 1}},
		{name: "limit 1000", raw: "limit=1000", want: Query{Limit: 1000}},
		{name: "escaped values", raw: "user_id=alice%40example.com", want: Query{UserID: "alice@example.com", Limit: DefaultLimit}},

		{name: "unknown parameter", raw: "tenant=acme", wantParam: "tenant", reason: "unknown parameter"},
		{name: "unknown parameter case", raw: "Limit=5", wantParam: "Limit", reason: "unknown parameter"},
		{name: "repeated parameter", raw: "tenant_id=a&tenant_id=b", wantParam: "tenant_id", reason: "given 2 times"},
		{name: "empty value", raw: "user_id=", wantParam: "user_id", reason: "empty"},
		{name: "bare key", raw: "model", wantParam: "model", reason: "empty"},
		{name: "unnamed parameter", raw: "=0", wantParam: "(unnamed)", reason: "no name"},
		{name: "first bad in alphabetical order", raw: "zzz=1&limit=0", wantParam: "limit"},
		{name: "since not a time", raw: "since=yesterday", wantParam: "since", reason: "RFC 3339"},
		{name: "since date only", raw: "since=2026-11-27", wantParam: "since", reason: "RFC 3339"},
		{name: "since without zone", raw: "since=2026-11-27T10:00:00", wantParam: "since", reason: "RFC 3339"},
		{name: "since lower-case t", raw: "since=2026-11-27t10:00:00Z", wantParam: "since", reason: "RFC 3339"},
		{name: "until bad month", raw: "until=2026-13-27T10:00:00Z", wantParam: "until", reason: "RFC 3339"},
		{name: "until before since", raw: "since=2026-11-27T10:00:00Z&until=2026-11-27T09:00:00Z", wantParam: "until", reason: "before since"},
		{name: "since out of range", raw: "since=2300-01-01T00:00:00Z", wantParam: "since", reason: "1678 to 2262"},
		{name: "outcome unknown", raw: "outcome=ok", wantParam: "outcome", reason: "success, failure"},
		{name: "action bad", raw: "action=Tool.Call", wantParam: "action", reason: "dotted"},
		{name: "order bad", raw: "order=newest", wantParam: "order", reason: "asc or desc"},
		{name: "order upper case", raw: "order=DESC", wantParam: "order"},
		{name: "limit zero", raw: "limit=0", wantParam: "limit", reason: "at least 1"},
		{name: "limit over max", raw: "limit=1001", wantParam: "limit", reason: "at most 1000"},
		{name: "limit huge", raw: "limit=99999999999999999999999", wantParam: "limit", reason: "at most 1000"},
		{name: "limit negative", raw: "limit=-5", wantParam: "limit", reason: "whole number"},
		{name: "limit plus sign", raw: "limit=%2B5", wantParam: "limit", reason: "whole number"},
		{name: "limit float", raw: "limit=5.0", wantParam: "limit", reason: "whole number"},
		{name: "tenant too long", raw: "tenant_id=" + strings.Repeat("a", 513), wantParam: "tenant_id", reason: "longer than"},
		{name: "invalid utf8", raw: "user_id=%FF", wantParam: "user_id", reason: "UTF-8"},
		{name: "cursor empty", raw: "cursor=", wantParam: "cursor", reason: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := url.ParseQuery(tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			q, cursor, err := ParseValues(v)
			if tt.wantParam != "" {
				var pe *ParamError
				if !errors.As(err, &pe) || pe.Param != tt.wantParam {
					t.Fatalf("err = %v, want a ParamError for %s", err, tt.wantParam)
				}
				if !strings.Contains(pe.Reason, tt.reason) {
					t.Fatalf("reason = %q, want it to contain %q", pe.Reason, tt.reason)
				}
				if !strings.Contains(err.Error(), tt.wantParam) {
					t.Fatalf("message %q does not name the parameter", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(q, tt.want) {
				t.Fatalf("query =\n%+v\nwant\n%+v", q, tt.want)
			}
			if cursor != tt.wantCursor {
				t.Fatalf("cursor = %q, want %q", cursor, tt.wantCursor)
			}
		})
	}
}

func TestValuesRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		q    Query
	}{
		{"zero", Query{}},
		{"everything", Query{
			Since: t0.Add(123), Until: t0.Add(time.Hour),
			TenantID: "acme", UserID: "a b&c=d", SessionID: "s", TraceID: "t",
			Action: "tool.", Tool: "x", Outcome: "blocked", Model: "m", Desc: true, Limit: 1000,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.q
			if err := want.Normalize(); err != nil {
				t.Fatal(err)
			}
			got, cursor, err := ParseValues(tt.q.Values())
			if err != nil || cursor != "" {
				t.Fatalf("ParseValues(%s): %v", tt.q.Values().Encode(), err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestParamsListed(t *testing.T) {
	// Every parameter in Params is accepted with some value.
	sample := map[string]string{
		"since": "2026-01-01T00:00:00Z", "until": "2027-01-01T00:00:00Z", "order": "desc",
		"event_since": "2026-01-01T00:00:00Z", "event_until": "2027-01-01T00:00:00Z",
		"limit": "5", "outcome": "success", "action": "tool.call",
	}
	for _, p := range Params {
		t.Run(p, func(t *testing.T) {
			v := sample[p]
			if v == "" {
				v = "x"
			}
			if _, _, err := ParseValues(url.Values{p: {v}}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
