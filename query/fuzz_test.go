package query

import (
	"errors"
	"net/url"
	"reflect"
	"testing"
)

// FuzzParseValues feeds raw query strings to ParseValues. It must never
// panic; a rejection must be a *ParamError naming a parameter; an accepted
// query must be normalized (Normalize changes nothing) and survive Values
// and ParseValues unchanged, with the same fingerprint.
func FuzzParseValues(f *testing.F) {
	for _, s := range []string{
		"",
		"tenant_id=acme&action=approval.&order=desc&limit=10",
		"since=2026-11-27T10:00:00Z&until=2026-11-27T11:00:00.123456789%2B02:00",
		"since=2026-11-27T10:00:00+02:00&outcome=denied&model=granite",
		"limit=1001", "limit=0", "order=sideways", "nope=1", "tenant_id=a&tenant_id=b",
		"cursor=AQAAypo7AAAAAAcAAAAAAAAA", "event_since=2026-11-27T00:00:00Z&event_until=2026-11-28T00:00:00Z", "user_id=%FF", "action=a..b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, cursor, err := ParseValues(v)
		if err != nil {
			var pe *ParamError
			if !errors.As(err, &pe) || pe.Param == "" || pe.Reason == "" || !errors.Is(err, ErrBadParam) {
				t.Fatalf("error %v is not a ParamError naming a parameter", err)
			}
			return
		}
		again := q
		if err := again.Normalize(); err != nil || !reflect.DeepEqual(again, q) {
			t.Fatalf("accepted query is not normalized: %v", err)
		}
		back, c2, err := ParseValues(q.Values())
		if err != nil {
			t.Fatalf("Values %q rejected: %v", q.Values().Encode(), err)
		}
		if c2 != "" || !reflect.DeepEqual(back, q) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", back, q)
		}
		if back.Fingerprint() != q.Fingerprint() {
			t.Fatal("fingerprint changed in round trip")
		}
		_ = cursor
	})
}

// FuzzDecodeCursor feeds arbitrary strings to DecodeCursor. It must never
// panic, every rejection must wrap ErrBadCursor, and anything it accepts
// must be exactly the cursor EncodeCursor makes for that position (only the
// key holder can make one).
func FuzzDecodeCursor(f *testing.F) {
	key := testKey(f)
	q := Query{TenantID: "acme", MaxSeq: 9}
	f.Add(EncodeCursor(key, &q, Position{Time: 1_000_000_000, Seq: 7}), false, "acme")
	f.Add(EncodeCursor(key, &Query{Desc: true, MaxSeq: 1}, Position{Time: -1, Seq: 1}), true, "")
	f.Add("", false, "")
	f.Add("AQAAypo7AAAAAAcAAAAAAAAA", false, "acme")
	f.Add("AgAAypo7AAAAAAcAAAAAAAAASbZRHxox8iJwm4eMWLd6QG0-q4UkNUntXSYXyqfAe_I", false, "acme")
	f.Fuzz(func(t *testing.T, s string, desc bool, tenant string) {
		q := Query{TenantID: tenant, Desc: desc}
		c, err := DecodeCursor(key, &q, s)
		if err != nil {
			if !errors.Is(err, ErrBadCursor) {
				t.Fatalf("error %v does not wrap ErrBadCursor", err)
			}
			return
		}
		q.MaxSeq = c.MaxSeq
		if again := EncodeCursor(key, &q, c.After); again != s {
			t.Fatalf("accepted %q, which encodes as %q", s, again)
		}
	})
}
