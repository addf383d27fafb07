package postgres

import (
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/backends/internal/sqlrec"
	"github.com/vellumlog/vellum/backends/postgres/pgtest"
)

// TestBinaryCopySameAsValues: rows written by the replica's own binary COPY
// encoder hold exactly what pgx's CopyFrom of rowValues stores for the same
// rows, column by column (as PostgreSQL prints them), NULLs included: full
// rows and summaries, empty and present optional values, times before 1970
// and 2000, tokens above 2^63.
func TestBinaryCopySameAsValues(t *testing.T) {
	ctx := context.Background()
	_, dsn := pgtest.Schema(t)
	r, err := OpenReplica(ctx, &ReplicaOptions{DSN: dsn, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	base := vellum.Record{
		EventID: "e", TenantID: "acme", UserID: "u", Service: "svc", AuthMode: "gateway", Action: "tool.call",
		Tool:  vellum.Tool{Name: "t", CallID: "c", Arguments: json.RawMessage(`{"q":"é"}`), IsError: true, DurationNS: -5},
		Model: vellum.Model{Name: "m", Provider: "p", FinishReason: "stop", InputTokens: 1 << 63, OutputTokens: 3},
		Agent: "a", SessionID: "s", TraceID: "tr", RequestID: "rq",
		Outcome:    vellum.Outcome{Status: "denied", Reason: "r", RuleID: "ru", Approver: "ap", Mode: "mo"},
		Attributes: map[string]string{"small": "v", "big": strings.Repeat("b", sqlrec.MaxAttrValue+1)},
		Redactions: []vellum.Redaction{{Rule: "email", Field: "f", Count: 1}},
		KeyID:      "0011", PrevMAC: vellum.MAC{1}, MAC: vellum.MAC{2},
		EventTime: time.Unix(0, 1_700_000_000_000_000_001),
	}
	var rows []sqlrec.Row
	// Write makes the partitions of the first and last row's days; the
	// others are made here.
	times := []int64{1_800_000_000_123_456_789, 946_684_799_999_999_999, -1, 1_800_000_000_123_456_999}
	for i, opts := range []sqlrec.Options{
		{Summarize: true, NoNUL: true},                      // arguments as SHA-256 and size
		{Summarize: true, KeepArguments: true, NoNUL: true}, // arguments kept
		{}, // a full row
		{}, // a bare record: every optional value absent
	} {
		rec := base
		if i == 3 {
			rec = vellum.Record{Action: "request.start", Outcome: vellum.Outcome{Status: "success"}, KeyID: "k"}
		}
		rec.Seq, rec.Time = uint64(i+1), time.Unix(0, times[i]).UTC()
		row, err := sqlrec.FromRecord(&rec, uint64(i%2), opts)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release() // before r.Close, which waits for it
	for _, ns := range times {
		if err := r.ensurePartitions(ctx, conn, ns, ns); err != nil {
			t.Fatal(err)
		}
	}
	// The new path: Replica.Write (binary COPY encoder).
	if _, err := r.Cursor(ctx, "new", [16]byte{1}); err != nil {
		t.Fatal(err)
	}
	if err := r.Write(ctx, "new", rows); err != nil {
		t.Fatal(err)
	}
	// The reference: pgx's CopyFrom of rowValues.
	vals := make([][]any, len(rows))
	for i := range rows {
		vals[i] = rowValues("old", &rows[i])
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"audit_records"}, copyColumns, pgx.CopyFromRows(vals)); err != nil {
		t.Fatal(err)
	}
	read := func(writer string) [][]*string {
		var cols []string
		for _, c := range copyColumns[1:] {
			cols = append(cols, c+"::text")
		}
		q := `SELECT ` + strings.Join(cols, ", ") + ` FROM audit_records WHERE writer_id = $1 ORDER BY seq`
		res, err := r.pool.Query(ctx, q, writer)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Close()
		var out [][]*string
		for res.Next() {
			v := make([]*string, len(cols))
			dest := make([]any, len(cols))
			for i := range v {
				dest[i] = &v[i]
			}
			if err := res.Scan(dest...); err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
		if res.Err() != nil {
			t.Fatal(res.Err())
		}
		return out
	}
	got, want := read("new"), read("old")
	if len(got) != len(rows) || len(want) != len(rows) {
		t.Fatalf("rows: new %d, old %d, want %d", len(got), len(want), len(rows))
	}
	for i := range got {
		for j := range got[i] {
			if !reflect.DeepEqual(got[i][j], want[i][j]) {
				t.Errorf("row %d column %s: binary COPY stored %v, pgx stored %v", i, copyColumns[j+1], deref(got[i][j]), deref(want[i][j]))
			}
		}
	}
	// And each row reads back as written.
	for i := range rows {
		back, err := r.Row(ctx, "new", rows[i].Seq)
		if err != nil {
			t.Fatal(err)
		}
		if col, ok := sqlrec.Equal(&rows[i], &back); !ok {
			t.Errorf("seq %d: column %s differs after the round trip", rows[i].Seq, col)
		}
	}
}

func deref(p *string) string {
	if p == nil {
		return "NULL"
	}
	return *p
}
