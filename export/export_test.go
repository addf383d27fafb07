package export

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
)

func sample() []vellum.Record {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 123, time.UTC)
	return []vellum.Record{
		{Seq: 1, Time: t0, EventTime: t0.Add(-time.Second), TenantID: "acme", UserID: "alice", Action: "tool.call",
			Tool:    vellum.Tool{Name: "web_search", Arguments: json.RawMessage("{\"q\":  \"a, \\\"b\\\"\",\n \"html\": \"<b>\"}")},
			Outcome: vellum.Outcome{Status: "success"}, Attributes: map[string]string{"k": "v"}, MAC: vellum.MAC{1}},
		{Seq: 2, Time: t0.Add(time.Second), Action: "approval.denied", Outcome: vellum.Outcome{Status: "denied", Reason: "=cmd|' /C calc'!A0"}},
	}
}

func TestJSONL(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, JSONL)
	recs := sample()
	for i := range recs {
		if err := w.Write(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 || w.Count() != 2 {
		t.Fatalf("%d lines: %q", len(lines), buf.String())
	}
	for i, l := range lines {
		var r vellum.Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		if r.Seq != recs[i].Seq || r.Outcome.Reason != recs[i].Outcome.Reason {
			t.Fatalf("line %d: %+v", i, r)
		}
	}
	if !strings.Contains(lines[0], `"<b>"`) {
		t.Fatalf("HTML escaped: %s", lines[0])
	}
}

func TestCSV(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, CSV)
	recs := sample()
	for i := range recs {
		w.Write(&recs[i])
	}
	w.Flush()
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || !slices.Equal(rows[0], Columns) {
		t.Fatalf("header %v, %d rows", rows[0], len(rows))
	}
	col := func(row []string, name string) string { return row[slices.Index(Columns, name)] }
	if got := col(rows[1], "tool.arguments"); got != string(recs[0].Tool.Arguments) {
		t.Fatalf("arguments %q", got)
	}
	if col(rows[1], "time") != "2026-11-27T10:00:00.000000123Z" || col(rows[1], "attributes") != `{"k":"v"}` || col(rows[1], "mac") != recs[0].MAC.String() {
		t.Fatalf("row %v", rows[1])
	}
	if col(rows[2], "outcome.reason") != recs[1].Outcome.Reason || col(rows[2], "event_time") != "" || col(rows[2], "mac") != "" {
		t.Fatalf("row %v", rows[2])
	}
	// An empty export still has its header.
	buf.Reset()
	w, _ = NewWriter(&buf, CSV)
	w.Flush()
	if buf.String() != strings.Join(Columns, ",")+"\n" {
		t.Fatalf("empty CSV %q", buf.String())
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"jsonl": JSONL, "ndjson": JSONL, "json": JSONL, "csv": CSV} {
		if f, err := ParseFormat(in); err != nil || f != want {
			t.Errorf("%s: %v %v", in, f, err)
		}
	}
	if _, err := ParseFormat("xml"); !errors.Is(err, ErrFormat) {
		t.Fatal(err)
	}
}
