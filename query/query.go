package query

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vellumlog/vellum"
)

// Page size limits.
const (
	// DefaultLimit is the page size when a query sets none.
	DefaultLimit = 100
	// MaxLimit is the largest page size a query may ask for.
	MaxLimit = 1000
)

// Query selects audit records. The zero value, once normalized, asks for the
// first DefaultLimit records of the whole log in ascending order.
type Query struct {
	// Since and Until bound the record's receipt Time (when the store
	// received it) to the half-open range [Since, Until). A zero time
	// leaves that side unbounded.
	Since, Until time.Time

	// EventSince and EventUntil bound the record's EventTime (the time the
	// producer sent, the event's "time") to [EventSince, EventUntil). When
	// either is set, records without an event time do not match. The index
	// is by receipt time, so these filter records as they are read.
	EventSince, EventUntil time.Time

	// Exact-match filters; an empty string matches every record. Tool
	// matches tool.name, Outcome matches outcome.status and Model matches
	// model.name.
	TenantID, UserID, SessionID, TraceID, Tool, Outcome, Model string

	// Action matches exactly, or as a prefix when it ends with "." (so
	// "approval." matches approval.granted and approval.denied, but not
	// approval itself).
	Action string

	// Tenants restricts the query to records whose tenant is one of these,
	// when non-empty. It is the scope of a principal (an auditor limited to
	// some tenants), not a URL parameter. Normalize sorts and dedups a copy.
	Tenants []string

	// Desc orders records newest first; the default is oldest first.
	Desc bool

	// Limit is the page size: DefaultLimit when zero, at most MaxLimit.
	Limit int

	// After continues a previous page: only records strictly after this
	// position in the query's order match. It comes from DecodeCursor.
	After *Position

	// MaxSeq, when not zero, excludes records with a larger seq: it is the
	// log's last seq when the query's first page was answered, pinned in
	// the cursor, so paging never returns records appended after the first
	// page and always ends.
	MaxSeq uint64
}

// Position is where a record sits in the log's total order: its receipt
// time (Unix nanoseconds) and then its seq. Seq alone already orders
// records, since Time never decreases with Seq; comparing Time first lets a
// time index seek directly.
type Position struct {
	Time int64 // Unix nanoseconds
	Seq  uint64
}

// PositionOf returns the position of r.
func PositionOf(r *vellum.Record) Position {
	return Position{Time: r.Time.UnixNano(), Seq: r.Seq}
}

// Compare returns -1, 0 or +1 as p sorts before, with or after o in
// ascending order.
func (p Position) Compare(o Position) int {
	switch {
	case p.Time < o.Time:
		return -1
	case p.Time > o.Time:
		return 1
	case p.Seq < o.Seq:
		return -1
	case p.Seq > o.Seq:
		return 1
	}
	return 0
}

// Normalize fills in defaults (Limit), converts times to UTC, replaces
// Tenants by a sorted copy without duplicates, and checks every field. An
// error is a *ParamError naming the field by its URL parameter name.
// Normalizing twice changes nothing.
func (q *Query) Normalize() error {
	switch {
	case q.Limit == 0:
		q.Limit = DefaultLimit
	case q.Limit < 0:
		return paramErr("limit", "must be between 1 and %d, got %d", MaxLimit, q.Limit)
	case q.Limit > MaxLimit:
		return paramErr("limit", "must be at most %d, got %d", MaxLimit, q.Limit)
	}
	for _, f := range [...]struct {
		name string
		t    *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}, {"event_since", &q.EventSince}, {"event_until", &q.EventUntil}} {
		if f.t.IsZero() {
			continue
		}
		if !representable(*f.t) {
			return paramErr(f.name, "%s is outside the years 1678 to 2262", f.t.Format(time.RFC3339))
		}
		*f.t = f.t.UTC()
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		return paramErr("until", "%s is before since %s", q.Until.Format(time.RFC3339Nano), q.Since.Format(time.RFC3339Nano))
	}
	if !q.EventSince.IsZero() && !q.EventUntil.IsZero() && q.EventUntil.Before(q.EventSince) {
		return paramErr("event_until", "%s is before event_since %s", q.EventUntil.Format(time.RFC3339Nano), q.EventSince.Format(time.RFC3339Nano))
	}
	for _, f := range q.filters() {
		if err := checkFilter(f.name, *f.v); err != nil {
			return err
		}
	}
	if q.Outcome != "" && !vellum.ValidStatus(q.Outcome) {
		return paramErr("outcome", "%q is not one of %s", q.Outcome, strings.Join(vellum.Statuses, ", "))
	}
	if q.Action != "" {
		a := strings.TrimSuffix(q.Action, ".")
		probe := vellum.Record{Action: a, Outcome: vellum.Outcome{Status: vellum.StatusSuccess}}
		if len(q.Action) > vellum.MaxActionLen || probe.Validate() != nil {
			return paramErr("action", "%q is not a dotted lower-case action like tool.call, or a prefix ending in a dot like approval.", q.Action)
		}
	}
	if len(q.Tenants) > 0 {
		ts := slices.Clone(q.Tenants)
		slices.Sort(ts)
		ts = slices.Compact(ts)
		for _, t := range ts {
			if t == "" {
				return paramErr("tenants", "has an empty tenant")
			}
			if err := checkFilter("tenants", t); err != nil {
				return err
			}
		}
		q.Tenants = ts
	}
	return nil
}

func checkFilter(name, v string) error {
	if !utf8.ValidString(v) {
		return paramErr(name, "is not valid UTF-8")
	}
	if len(v) > vellum.MaxIDLen {
		return paramErr(name, "is longer than %d bytes", vellum.MaxIDLen)
	}
	return nil
}

// representable reports whether t fits in int64 Unix nanoseconds, the form
// the store keeps times in.
func representable(t time.Time) bool {
	return time.Unix(0, t.UnixNano()).Equal(t)
}

type filter struct {
	name string
	v    *string
}

// filters lists the exact-match string filters by URL parameter name, in
// the fixed order the fingerprint and Values use. Do not reorder: the order
// is part of the cursor fingerprint.
func (q *Query) filters() [8]filter {
	return [8]filter{
		{"tenant_id", &q.TenantID},
		{"user_id", &q.UserID},
		{"session_id", &q.SessionID},
		{"trace_id", &q.TraceID},
		{"action", &q.Action},
		{"tool", &q.Tool},
		{"outcome", &q.Outcome},
		{"model", &q.Model},
	}
}

// Bounds returns the receipt-time range of q in Unix nanoseconds, half-open
// [lo, hi): math.MinInt64 and math.MaxInt64 stand for an unbounded side.
// (A record at exactly math.MaxInt64 ns, in the year 2262, cannot match a
// query bounded only below; no store can hold one anyway.)
func (q *Query) Bounds() (lo, hi int64) {
	lo, hi = math.MinInt64, math.MaxInt64
	if !q.Since.IsZero() {
		lo = q.Since.UnixNano()
	}
	if !q.Until.IsZero() {
		hi = q.Until.UnixNano()
	}
	return lo, hi
}

// Match reports whether r satisfies every condition of q: the time range,
// every filter, the tenant scope and, when After is set, lying strictly
// after it in q's order. It ignores Limit. It is the exact predicate: an
// index may skip records only where Match would be false.
func (q *Query) Match(r *vellum.Record) bool {
	t := r.Time.UnixNano()
	if lo, hi := q.Bounds(); t < lo || t >= hi {
		return false
	}
	if q.MaxSeq != 0 && r.Seq > q.MaxSeq {
		return false
	}
	if !q.MatchEventTime(r.EventTime) {
		return false
	}
	if q.TenantID != "" && r.TenantID != q.TenantID ||
		q.UserID != "" && r.UserID != q.UserID ||
		q.SessionID != "" && r.SessionID != q.SessionID ||
		q.TraceID != "" && r.TraceID != q.TraceID ||
		q.Tool != "" && r.Tool.Name != q.Tool ||
		q.Outcome != "" && r.Outcome.Status != q.Outcome ||
		q.Model != "" && r.Model.Name != q.Model {
		return false
	}
	if !q.MatchAction(r.Action) {
		return false
	}
	if len(q.Tenants) > 0 && !slices.Contains(q.Tenants, r.TenantID) {
		return false
	}
	if q.After != nil {
		c := Position{Time: t, Seq: r.Seq}.Compare(*q.After)
		if q.Desc && c >= 0 || !q.Desc && c <= 0 {
			return false
		}
	}
	return true
}

// MatchEventTime reports whether an event time satisfies q's EventSince
// and EventUntil: always when neither is set, never for a zero time when
// either is.
func (q *Query) MatchEventTime(et time.Time) bool {
	if q.EventSince.IsZero() && q.EventUntil.IsZero() {
		return true
	}
	if et.IsZero() {
		return false
	}
	return (q.EventSince.IsZero() || !et.Before(q.EventSince)) && (q.EventUntil.IsZero() || et.Before(q.EventUntil))
}

// MatchAction reports whether action satisfies q's Action filter: equal, or
// starting with it when it ends with ".".
func (q *Query) MatchAction(action string) bool {
	switch {
	case q.Action == "":
		return true
	case strings.HasSuffix(q.Action, "."):
		return strings.HasPrefix(action, q.Action)
	default:
		return action == q.Action
	}
}

// fingerprintDomain separates query fingerprints from every other SHA-256
// use. Wire constant: do not change (it would invalidate every cursor).
// Version 2 added the event-time range (cursor version 2 came with it).
const fingerprintDomain = "vellum query fingerprint v2\x00"

// Fingerprint returns a SHA-256 digest of q's filters: the receipt-time
// range, every exact-match filter, Action, the tenant scope and the
// event-time range. It leaves out Desc, Limit, After and MaxSeq, which a
// cursor carries or may change between pages.
//
//	SHA-256(fingerprintDomain || since || until || each filter in filters()
//	        order as uvarint length || bytes || uvarint tenant count ||
//	        each tenant as uvarint length || bytes || event_since || event_until)
//
// where each time is 0x00 when zero, else 0x01 and int64 little-endian Unix
// nanoseconds.
// Equal filters give equal fingerprints whether or not q is normalized
// (Tenants is taken sorted and without duplicates, times as Unix
// nanoseconds).
func (q *Query) Fingerprint() [32]byte {
	b := make([]byte, 0, 128)
	b = append(b, fingerprintDomain...)
	b = appendFingerprintTimes(b, q.Since, q.Until)
	for _, f := range q.filters() {
		b = binary.AppendUvarint(b, uint64(len(*f.v)))
		b = append(b, *f.v...)
	}
	ts := q.Tenants
	if !slices.IsSorted(ts) || len(slices.Compact(slices.Clone(ts))) != len(ts) {
		ts = slices.Compact(slices.Sorted(slices.Values(ts)))
	}
	b = binary.AppendUvarint(b, uint64(len(ts)))
	for _, t := range ts {
		b = binary.AppendUvarint(b, uint64(len(t)))
		b = append(b, t...)
	}
	b = appendFingerprintTimes(b, q.EventSince, q.EventUntil)
	return sha256.Sum256(b)
}

func appendFingerprintTimes(b []byte, ts ...time.Time) []byte {
	for _, t := range ts {
		if t.IsZero() {
			b = append(b, 0)
			continue
		}
		b = append(b, 1)
		b = binary.LittleEndian.AppendUint64(b, uint64(t.UnixNano()))
	}
	return b
}

// Page is one page of a query's results, as a store returns it.
type Page struct {
	// Records match the query, in its order, at most Limit of them.
	Records []vellum.Record
	// Next is the position of the page's last record when more records
	// may follow (the page is full); nil when the query is exhausted.
	// EncodeCursor turns it into the cursor of the next page.
	Next *Position
}
