package query

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Params lists every URL parameter ParseValues accepts, in documentation
// order.
var Params = []string{
	"since", "until", "event_since", "event_until", "tenant_id", "user_id", "session_id", "trace_id",
	"action", "tool", "outcome", "model", "order", "limit", "cursor",
}

// ParseValues turns URL parameters into a normalized Query and the raw
// cursor (empty when absent; check it with DecodeCursor once the query's
// scope is final). Unknown parameters, repeated or empty parameters and bad
// values are rejected with a *ParamError naming the first bad parameter in
// alphabetical order, so the same input always gives the same error.
//
// Parameters: since and until (the receipt time; RFC 3339, with or without
// fractional seconds; a space where the offset's "+" should be, as an
// unescaped "+" decodes, is taken as "+"), event_since and event_until (the
// producer's event time, same forms), tenant_id, user_id, session_id, trace_id,
// action, tool, outcome (one of vellum.Statuses), model, order (asc or
// desc), limit (1 to MaxLimit) and cursor.
func ParseValues(v url.Values) (Query, string, error) {
	var q Query
	var cursor string
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		vs := v[k]
		if k == "" {
			return Query{}, "", paramErr("(unnamed)", "a parameter has no name (a stray = or &?)")
		}
		if !slices.Contains(Params, k) {
			return Query{}, "", paramErr(k, "unknown parameter (known: %s)", strings.Join(Params, ", "))
		}
		if len(vs) != 1 {
			return Query{}, "", paramErr(k, "given %d times; give it once", len(vs))
		}
		s := vs[0]
		if s == "" {
			return Query{}, "", paramErr(k, "is empty; leave it out instead")
		}
		switch k {
		case "since", "until", "event_since", "event_until":
			t, err := parseTime(s)
			if err != nil {
				return Query{}, "", paramErr(k, "%v", err)
			}
			switch k {
			case "since":
				q.Since = t
			case "until":
				q.Until = t
			case "event_since":
				q.EventSince = t
			default:
				q.EventUntil = t
			}
		case "order":
			switch s {
			case "asc":
				q.Desc = false
			case "desc":
				q.Desc = true
			default:
				return Query{}, "", paramErr(k, "%q is not asc or desc", s)
			}
		case "limit":
			n, err := parseLimit(s)
			if err != nil {
				return Query{}, "", paramErr(k, "%v", err)
			}
			q.Limit = n
		case "cursor":
			cursor = s
		default:
			for _, f := range q.filters() {
				if f.name == k {
					*f.v = s
				}
			}
		}
	}
	if err := q.Normalize(); err != nil {
		return Query{}, "", err
	}
	return q, cursor, nil
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil && strings.Count(s, " ") == 1 {
		// An unescaped "+" in a URL decodes as a space: 10:00:00 02:00.
		if t2, err2 := time.Parse(time.RFC3339Nano, strings.Replace(s, " ", "+", 1)); err2 == nil {
			t, err = t2, nil
		}
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time like 2026-11-27T10:00:00Z or 2026-11-27T10:00:00.5+01:00", s)
	}
	return t.UTC(), nil
}

func parseLimit(s string) (int, error) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a whole number between 1 and %d", s, MaxLimit)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > MaxLimit {
		return 0, fmt.Errorf("must be at most %d, got %s", MaxLimit, s)
	}
	if n < 1 {
		return 0, fmt.Errorf("must be at least 1, got %s", s)
	}
	return n, nil
}

// Values returns q as URL parameters that ParseValues turns back into q:
// every non-empty filter, the time range with nanoseconds, order and limit.
// It leaves out Tenants (a principal's scope, not a parameter), After and
// MaxSeq (pass the cursor separately).
func (q *Query) Values() url.Values {
	v := url.Values{}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	if !q.EventSince.IsZero() {
		v.Set("event_since", q.EventSince.UTC().Format(time.RFC3339Nano))
	}
	if !q.EventUntil.IsZero() {
		v.Set("event_until", q.EventUntil.UTC().Format(time.RFC3339Nano))
	}
	for _, f := range q.filters() {
		if *f.v != "" {
			v.Set(f.name, *f.v)
		}
	}
	v.Set("order", orderName(q.Desc))
	limit := q.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	v.Set("limit", strconv.Itoa(limit))
	return v
}

// FilterParams lists the parameters that select records, in documentation
// order: every parameter of Params except the paging ones (order, limit,
// cursor).
var FilterParams = slices.DeleteFunc(slices.Clone(Params), func(p string) bool {
	return p == "order" || p == "limit" || p == "cursor"
})

// ParseFilterValues is ParseValues for exports, which return every
// matching record in seq order: it accepts only FilterParams, and a paging
// parameter is a *ParamError saying so. The returned Query has no Limit
// set beyond the default; an exporter pages through it itself.
func ParseFilterValues(v url.Values) (Query, error) {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k == "order" || k == "limit" || k == "cursor" {
			return Query{}, paramErr(k, "is not accepted by an export, which returns every matching record in seq order")
		}
	}
	q, _, err := ParseValues(v)
	return q, err
}
