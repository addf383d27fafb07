package collector

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/vfs"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestGoldenSession replays a recorded agent session (testdata/
// session.jsonl, the same file as examples/python/session.jsonl: a denied
// tool call, an approval granted after a question, a failing tool,
// arguments in several deltas) through the collector into a real engine
// and checks the stored records, in order and field by field, against
// testdata/session.golden.json. Run with -update to rewrite it.
func TestGoldenSession(t *testing.T) {
	sctx, evs := loadSession(t, "testdata/session.jsonl")
	dir := t.TempDir()
	e := openEngine(t, vfs.Default, dir)
	defer e.Close()
	c, err := New(e, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithRequest(bg, sessionRequest(sctx))
	var passed []string
	for ev, err := range c.Wrap(ctx, stream(evs)) {
		if err != nil {
			t.Fatal(err)
		}
		passed = append(passed, string(ev.Type))
	}
	// Every event passed through, unchanged and in order.
	if len(passed) != len(evs) {
		t.Fatalf("%d events passed, want %d", len(passed), len(evs))
	}
	for i := range evs {
		if passed[i] != string(evs[i].Type) {
			t.Fatalf("event %d: %s, want %s", i, passed[i], evs[i].Type)
		}
	}
	var got []vellum.Record
	ids := map[string]bool{}
	for r, err := range e.Scan(bg, 1, e.LastSeq()) {
		if err != nil {
			t.Fatal(err)
		}
		if r.EventID == "" || ids[r.EventID] {
			t.Fatalf("seq %d: event id %q empty or repeated", r.Seq, r.EventID)
		}
		ids[r.EventID] = true
		// What the store assigns or what is random is not golden.
		if r.Time.IsZero() {
			t.Fatalf("seq %d has no receipt time", r.Seq)
		}
		r.Time, r.EventID, r.KeyID, r.PrevMAC, r.MAC = time.Time{}, "", "", vellum.MAC{}, vellum.MAC{}
		got = append(got, r)
	}
	if st := c.Stats(); st.Events != uint64(len(evs)) || st.Appended != uint64(len(got)) || st.Records != uint64(len(got)) {
		t.Fatalf("stats %+v: want %d events and %d records appended", st, len(evs), len(got))
	}
	golden := filepath.Join("testdata", "session.golden.json")
	if *update {
		b, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(golden, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	var want []vellum.Record
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("%d records, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		compareRecord(t, i, got[i], want[i])
	}
	// The acceptance points, spelled out beside the golden file.
	find := func(action, callID string) *vellum.Record {
		for i := range got {
			if got[i].Action == action && got[i].Tool.CallID == callID {
				return &got[i]
			}
		}
		t.Fatalf("no %s record for %q", action, callID)
		return nil
	}
	if r := find("tool.call", "call_1"); string(r.Tool.Arguments) != `{"order_id": "1234", "fields": ["status", "total"]}` {
		t.Errorf("accumulated arguments %s", r.Tool.Arguments)
	}
	if r := find("permission.decision", "call_2"); r.Outcome.Status != vellum.StatusDenied || r.Outcome.RuleID != "no-destructive-tools" {
		t.Errorf("denied call: %+v", r.Outcome)
	}
	if r := find("approval.granted", "call_3"); r.Outcome.Status != vellum.StatusApproved || r.Outcome.Approver != "ops-bob" {
		t.Errorf("approval: %+v", r.Outcome)
	}
	if r := find("tool.result", "call_4"); !r.Tool.IsError || r.Outcome.Status != vellum.StatusFailure || r.Tool.DurationNS != 5_010_000_000 {
		t.Errorf("failing tool: %+v %+v", r.Tool, r.Outcome)
	}
	for _, r := range got {
		if r.TenantID != "acme" || r.UserID != "alice" || r.SessionID != sctx.SessionID || r.TraceID != sctx.TraceID || r.Agent != sctx.Agent || r.Model.Name != sctx.Model {
			t.Fatalf("seq %d lacks the request context: %+v", r.Seq, r)
		}
	}
}

// compareRecord reports each field of got that differs from want.
func compareRecord(t *testing.T, i int, got, want vellum.Record) {
	t.Helper()
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	for f := range gv.NumField() {
		name := gv.Type().Field(f).Name
		if !reflect.DeepEqual(gv.Field(f).Interface(), wv.Field(f).Interface()) {
			// JSON encoding compacts arguments; compare them compacted.
			if name == "Tool" && compact(got.Tool.Arguments) == compact(want.Tool.Arguments) &&
				reflect.DeepEqual(withoutArgs(got.Tool), withoutArgs(want.Tool)) {
				continue
			}
			g, _ := json.Marshal(gv.Field(f).Interface())
			w, _ := json.Marshal(wv.Field(f).Interface())
			t.Errorf("record %d (%s) %s: got %s, want %s", i, want.Action, strings.ToLower(name), g, w)
		}
	}
}

func compact(b []byte) string {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return string(b)
	}
	return out.String()
}

func withoutArgs(t vellum.Tool) vellum.Tool { t.Arguments = nil; return t }
