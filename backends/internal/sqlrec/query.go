package sqlrec

import (
	"fmt"
	"strings"

	"github.com/vellumlog/vellum/query"
)

// Dialect says how a database spells what the query needs.
type Dialect struct {
	// Placeholder returns the n-th (1-based) parameter marker: "?" or "$n".
	Placeholder func(n int) string
	// TimeCol is the column of receipt time in Unix nanoseconds; PosCol
	// the column that breaks ties in the position (seq, or a row id), and
	// the one q.MaxSeq bounds.
	TimeCol, PosCol string
	// TimeBounds, when set, adds conditions on another time column from
	// the bounds [lo, hi) in Unix nanoseconds (PostgreSQL's partition key,
	// so the planner prunes partitions); it returns the SQL and arguments
	// to append, numbering parameters from n.
	TimeBounds func(lo, hi int64, n int) (string, []any)
	// AnyOf returns the condition that col is one of the values, given the
	// next parameter number; it returns the SQL and its arguments.
	AnyOf func(col string, vals []string, n int) (string, []any)
}

// Where returns the WHERE clause (without the keyword; "TRUE" for none) and
// its arguments for q (normalized) over [lo, hi): every filter, the action
// prefix, the tenant scope, the event-time range (a row without an event
// time has NULL there and never matches one), MaxSeq (on PosCol) and the
// position after q.After. The clause is exact: q.Match holds for every row
// it selects and for no other (when PosCol is the record's seq).
func (d *Dialect) Where(q *query.Query, lo, hi int64, extra ...Cond) (string, []any) {
	var conds []string
	var args []any
	add := func(sql string, vals ...any) {
		for _, v := range vals {
			args = append(args, v)
			sql = strings.Replace(sql, "?", d.Placeholder(len(args)), 1)
		}
		conds = append(conds, sql)
	}
	for _, c := range extra {
		add(c.SQL, c.Args...)
	}
	if lo > -1<<63 {
		add(d.TimeCol+" >= ?", lo)
	}
	if hi < 1<<63-1 {
		add(d.TimeCol+" < ?", hi)
	}
	if d.TimeBounds != nil && (lo > -1<<63 || hi < 1<<63-1) {
		s, a := d.TimeBounds(lo, hi, len(args)+1)
		if s != "" {
			conds = append(conds, s)
			args = append(args, a...)
		}
	}
	if !q.EventSince.IsZero() {
		add("event_time_ns >= ?", q.EventSince.UnixNano())
	}
	if !q.EventUntil.IsZero() {
		add("event_time_ns < ?", q.EventUntil.UnixNano())
	}
	if q.MaxSeq != 0 {
		add(d.PosCol+" <= ?", int64(min(q.MaxSeq, 1<<63-1)))
	}
	for _, f := range [...]struct{ col, v string }{
		{"tenant_id", q.TenantID}, {"user_id", q.UserID}, {"session_id", q.SessionID}, {"trace_id", q.TraceID},
		{"tool_name", q.Tool}, {"outcome", q.Outcome}, {"model_name", q.Model},
	} {
		if f.v != "" {
			add(f.col+" = ?", f.v)
		}
	}
	switch {
	case q.Action == "":
	case strings.HasSuffix(q.Action, "."):
		// A prefix as a range: actions are [a-z0-9_.-], and '.'+1 is '/',
		// so [p, p[:len-1]+"/") holds exactly the actions starting with p
		// under byte-wise (C) collation. No LIKE: '_' would be a wildcard.
		add("action >= ? AND action < ?", q.Action, q.Action[:len(q.Action)-1]+"/")
	default:
		add("action = ?", q.Action)
	}
	if len(q.Tenants) > 0 {
		s, a := d.AnyOf("tenant_id", q.Tenants, len(args)+1)
		conds = append(conds, s)
		args = append(args, a...)
	}
	if q.After != nil {
		op := ">"
		if q.Desc {
			op = "<"
		}
		add(fmt.Sprintf("(%s %s ? OR (%s = ? AND %s %s ?))", d.TimeCol, op, d.TimeCol, d.PosCol, op),
			q.After.Time, q.After.Time, int64(q.After.Seq))
	}
	if len(conds) == 0 {
		return "TRUE", nil
	}
	return strings.Join(conds, " AND "), args
}

// Cond is an extra condition with "?" placeholders.
type Cond struct {
	SQL  string
	Args []any
}

// OrderBy returns the ORDER BY list for q's order.
func (d *Dialect) OrderBy(q *query.Query) string {
	if q.Desc {
		return d.TimeCol + " DESC, " + d.PosCol + " DESC"
	}
	return d.TimeCol + ", " + d.PosCol
}

// Bounds returns q's time range [lo, hi) in Unix nanoseconds narrowed by
// q.After, and whether it can hold anything at all.
func Bounds(q *query.Query) (lo, hi int64, ok bool) {
	lo, hi = q.Bounds()
	if q.After != nil {
		if q.Desc {
			hi = min(hi, q.After.Time+1)
		} else {
			lo = max(lo, q.After.Time)
		}
	}
	return lo, hi, lo < hi
}
