package collector

import (
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"

	"context"
	"errors"
	"github.com/vellumlog/vellum/metrics"
	"path/filepath"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/step"
	"github.com/vellumlog/vellum/verify"
	"github.com/vellumlog/vellum/vfs"
)

// TestFailClosedFsyncError: with the store's fsync failing, the step whose
// record cannot be made durable is not released; the stream yields
// ErrNotDurable (wrapping the engine's failure) and ends.
func TestFailClosedFsyncError(t *testing.T) {
	m := vfs.NewMem()
	e := openEngine(t, m, "/data")
	defer e.Close()
	c, err := New(e, &Options{Policy: FailClosed, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	evs := []step.Event{{Type: step.RequestStart}, {Type: step.LoopBreak, Reason: "x"}, {Type: step.RequestEnd}}
	var got []step.Type
	var failed error
	for ev, err := range c.Wrap(WithRequest(bg, Request{SessionID: "s"}), stream(evs)) {
		if err != nil {
			failed = err
			continue
		}
		got = append(got, ev.Type)
		if ev.Type == step.RequestStart {
			m.FailSync(1) // the next fsync, the loop_break record's, fails
		}
	}
	if len(got) != 1 || got[0] != step.RequestStart {
		t.Fatalf("released %v; want only request_start", got)
	}
	if !errors.Is(failed, ErrNotDurable) || !errors.Is(failed, engine.ErrFailed) || !errors.Is(failed, vfs.ErrInjected) {
		t.Fatalf("error %v, want ErrNotDurable wrapping the engine's fsync failure", failed)
	}
	if st := c.Stats(); st.Failures != 1 || st.Appended != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// hangingSink never answers until ctx ends: the bound must hold.
type hangingSink struct{}

func (hangingSink) Append(ctx context.Context, _ ...vellum.Record) ([]uint64, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestFailClosedBound: a store that does not answer fails the step after
// Options.Timeout, not never.
func TestFailClosedBound(t *testing.T) {
	c, err := New(hangingSink{}, &Options{Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range c.Wrap(bg, stream([]step.Event{{Type: step.RequestStart}})) {
		if !errors.Is(err, ErrNotDurable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v, want ErrNotDurable after the deadline", err)
		}
		return
	}
	t.Fatal("the stream ended without an error")
}

// sessionEvents returns n steps each making one record.
func sessionEvents(n int) []step.Event {
	evs := make([]step.Event, n)
	for i := range evs {
		evs[i] = step.Event{Type: step.LoopBreak, Reason: "r"}
	}
	return evs
}

// TestFailOpenSpillReplay: the store fails (injected fsync error); the
// agent goes on, records are spilled; a new engine on the same directory
// takes them back, in order, each once, and the chain verifies.
func TestFailOpenSpillReplay(t *testing.T) {
	m := vfs.NewMem()
	e := openEngine(t, m, "/data")
	spillFS := vfs.NewMem()
	c, err := New(e, &Options{Policy: FailOpen, SpillPath: "/spill/spill.log", FS: spillFS, Timeout: time.Second, RetryInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithRequest(bg, Request{TenantID: "t", SessionID: "s"})
	run := func(evs []step.Event) {
		n := 0
		for _, err := range c.Wrap(ctx, stream(evs)) {
			if err != nil {
				t.Fatalf("fail_open stream failed: %v", err)
			}
			n++
		}
		if n != len(evs) {
			t.Fatalf("%d of %d events passed", n, len(evs))
		}
	}
	run(sessionEvents(10))
	if err := c.Flush(bg); err != nil {
		t.Fatal(err)
	}
	m.FailSync(1)
	run(sessionEvents(30)) // the agent goes on
	if err := c.Flush(bg); err == nil {
		t.Fatal("Flush: no error while records wait in the spill")
	}
	st := c.Stats()
	if st.Appended != 10 || st.Spilled != 30 || st.SpillPending != 30 || st.SpillBytes == 0 || st.Failures == 0 || st.LastError == "" {
		t.Fatalf("stats while failing: %+v", st)
	}
	if c.Ready() == nil {
		t.Fatal("Ready: nil while records wait in the spill")
	}
	// The store recovers: the agent server reopens it.
	e.Close()
	e2 := openEngine(t, m, "/data")
	defer e2.Close()
	c.SetSink(e2)
	if err := c.Flush(bg); err != nil {
		t.Fatalf("Flush after recovery: %v", err)
	}
	run(sessionEvents(5))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	st = c.Stats()
	if st.Replayed != 30 || st.SpillPending != 0 || st.Dropped != 0 || c.Ready() != nil {
		t.Fatalf("stats after recovery: %+v, ready %v", st, c.Ready())
	}
	checkStored(t, e2, 45)
	e2.Close()
	rep, err := verify.Dir("/data", &verify.Options{FS: m, Keys: testKey(t)})
	if err != nil || !rep.OK() || rep.Records != 45 {
		t.Fatalf("verify: %v, %+v", err, rep)
	}
}

// checkStored checks the store holds n records with distinct event ids and
// each stream's records in the order of its steps (an id is
// st-<stream>-<step>.<ordinal>).
func checkStored(t *testing.T, e *engine.Engine, n int) {
	t.Helper()
	seen := map[string]bool{}
	last := map[string]int{} // stream -> last step
	count := 0
	for r, err := range e.Scan(bg, 1, e.LastSeq()) {
		if err != nil {
			t.Fatal(err)
		}
		count++
		if seen[r.EventID] {
			t.Fatalf("event %s stored twice", r.EventID)
		}
		seen[r.EventID] = true
		id, _, _ := strings.Cut(r.EventID, ".")
		i := strings.LastIndexByte(id, '-')
		k, err := strconv.Atoi(id[i+1:])
		if err != nil {
			t.Fatalf("event id %s: %v", r.EventID, err)
		}
		if prev, ok := last[id[:i]]; ok && k < prev {
			t.Fatalf("event %s out of order", r.EventID)
		}
		last[id[:i]] = k
	}
	if count != n {
		t.Fatalf("%d records stored, want %d", count, n)
	}
}

// TestFailOpenSpillFull: a full spill drops records explicitly — counted,
// visible in Ready — and, once the store is back, an audit.dropped record
// says how many.
func TestFailOpenSpillFull(t *testing.T) {
	m := vfs.NewMem()
	e := openEngine(t, m, "/data")
	c, err := New(e, &Options{Policy: FailOpen, SpillPath: "/spill/spill.log", FS: vfs.NewMem(), SpillMaxRecords: 5, RetryInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	m.FailSync(1)
	ctx := WithRequest(bg, Request{TenantID: "t", SessionID: "s"})
	for _, ev := range sessionEvents(12) {
		for _, err := range c.Wrap(ctx, stream([]step.Event{ev})) {
			if err != nil {
				t.Fatal(err)
			}
		}
		c.Flush(bg) // one record per batch, so the bound is hit exactly
	}
	st := c.Stats()
	if st.SpillPending != 5 || st.Dropped != 7 {
		t.Fatalf("stats %+v, want 5 spilled and 7 dropped", st)
	}
	if err := c.Ready(); err == nil {
		t.Fatal("Ready: nil with dropped records")
	}
	e.Close()
	e2 := openEngine(t, m, "/data")
	defer e2.Close()
	c.SetSink(e2)
	if err := c.Flush(bg); err != nil {
		t.Fatal(err)
	}
	c.Close()
	var actions []string
	for r, err := range e2.Scan(bg, 1, e2.LastSeq()) {
		if err != nil {
			t.Fatal(err)
		}
		actions = append(actions, r.Action)
		if r.Action == "audit.dropped" && r.Attributes["dropped"] != "7" {
			t.Fatalf("audit.dropped says %v", r.Attributes)
		}
	}
	if len(actions) != 6 || actions[5] != "audit.dropped" {
		t.Fatalf("stored %v, want 5 loop.break and audit.dropped", actions)
	}
	if c.Ready() != nil {
		t.Fatalf("Ready after the report: %v", c.Ready())
	}
}

// TestSpillSurvivesRestart: records spilled by one collector are replayed
// by the next one on the same spill file, before its own.
func TestSpillSurvivesRestart(t *testing.T) {
	spillFS := vfs.NewMem()
	path := filepath.Join("/spill", "spill.log")
	m := vfs.NewMem()
	e := openEngine(t, m, "/data")
	c, err := New(e, &Options{Policy: FailOpen, SpillPath: path, FS: spillFS, RetryInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	m.FailSync(1)
	for range c.Wrap(WithRequest(bg, Request{SessionID: "a"}), stream(sessionEvents(4))) {
	}
	c.Close()
	e.Close()
	e2 := openEngine(t, m, "/data")
	defer e2.Close()
	c2, err := New(e2, &Options{Policy: FailOpen, SpillPath: path, FS: spillFS, RetryInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if st := c2.Stats(); st.SpillPending != 4 {
		t.Fatalf("new collector sees %d spilled records, want 4", st.SpillPending)
	}
	for range c2.Wrap(WithRequest(bg, Request{SessionID: "b"}), stream(sessionEvents(2))) {
	}
	if err := c2.Flush(bg); err != nil {
		t.Fatal(err)
	}
	c2.Close()
	var sessions string
	for r := range e2.Scan(bg, 1, e2.LastSeq()) {
		sessions += r.SessionID
	}
	if sessions != "aaaabb" {
		t.Fatalf("stored sessions in order %q, want aaaabb", sessions)
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []Options{{Policy: FailOpen}, {Policy: "maybe"}, {SpillPath: "/x"}, {Timeout: -1}} {
		if _, err := New(hangingSink{}, &o); !errors.Is(err, ErrOptions) {
			t.Errorf("%+v: %v, want ErrOptions", o, err)
		}
	}
}

// TestSpillMetrics: the spill's depth reaches /metrics through the
// metrics package's WatchSpill hook.
func TestSpillMetrics(t *testing.T) {
	m := vfs.NewMem()
	e := openEngine(t, m, "/data")
	defer e.Close()
	c, err := New(e, &Options{Policy: FailOpen, SpillPath: "/s/spill", FS: vfs.NewMem(), RetryInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mx := metrics.New(nil)
	mx.WatchSpill("collector", c.SpillDepth)
	m.FailSync(1)
	for range c.Wrap(bg, stream(sessionEvents(3))) {
	}
	c.Flush(bg)
	rec := httptest.NewRecorder()
	mx.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	if !strings.Contains(body, `vellum_spill_events{spill="collector"} 3`) || !strings.Contains(body, `vellum_spill_bytes{spill="collector"}`) {
		t.Fatalf("metrics lack the spill depth:\n%s", body)
	}
}

// TestFailOpenRefusedRecord: a record the store refuses for itself (here:
// over its size limit) is dropped explicitly and does not hold back the
// records around it.
func TestFailOpenRefusedRecord(t *testing.T) {
	e, err := engine.Open(t.TempDir(), &engine.Options{Keys: testKey(t), MaxRecordSize: 1024, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c, err := New(e, &Options{Policy: FailOpen, SpillPath: filepath.Join(t.TempDir(), "spill"), RetryInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	evs := []step.Event{{Type: step.LoopBreak, Reason: "a"}, {Type: step.LoopBreak, Reason: strings.Repeat("x", 3000)}, {Type: step.LoopBreak, Reason: "b"}}
	// One batch holding all three.
	recs := NewMapper(Request{SessionID: "s"})
	var batch []vellum.Record
	for i := range evs {
		batch = recs.Map(&evs[i], fixedNow(), batch)
	}
	c.queue <- batch
	if err := c.Flush(bg); err != nil {
		t.Fatal(err)
	}
	c.Close()
	var got []string
	for r := range e.Scan(bg, 1, e.LastSeq()) {
		got = append(got, r.Action+":"+r.Attributes["dropped"]+r.Outcome.Reason[:1])
	}
	if strings.Join(got, " ") != "loop.break:a loop.break:b audit.dropped:11" {
		t.Fatalf("stored %v", got)
	}
	if st := c.Stats(); st.Dropped != 1 || st.SpillPending != 0 {
		t.Fatalf("stats %+v", st)
	}
}
