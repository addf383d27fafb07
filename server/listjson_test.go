package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/bench"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/merkle"
)

// oracleList is the answer as GET /v1/audit wrote it before the hand
// encoder: writeJSON of the listResponse, through encoding/json.
func oracleList(resp *listResponse) (int, []byte) {
	w := httptest.NewRecorder()
	writeJSON(w, 200, resp)
	return w.Code, w.Body.Bytes()
}

func fastList(resp *listResponse) (int, []byte, string) {
	w := httptest.NewRecorder()
	writeList(w, resp)
	return w.Code, w.Body.Bytes(), w.Header().Get("Content-Type")
}

func assertSameList(t *testing.T, resp *listResponse) {
	t.Helper()
	wantCode, want := oracleList(resp)
	gotCode, got, ct := fastList(resp)
	if gotCode != wantCode || !bytes.Equal(got, want) {
		t.Fatalf("writeList and writeJSON differ:\nwriteList %d %s\nwriteJSON %d %s", gotCode, got, wantCode, want)
	}
	if ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	// A 200 must come from the hand encoder itself, not its fallback.
	var e listEncoder
	if err := e.encode(resp); (err == nil) != (wantCode == 200) {
		t.Fatalf("hand encoder: %v, encoding/json answered %d", err, wantCode)
	}
}

func macOf(b byte) vellum.MAC {
	var m vellum.MAC
	for i := range m {
		m[i] = b + byte(i)
	}
	return m
}

// variedRecords covers every field and every way a string or argument
// object is escaped or rewritten by encoding/json.
func variedRecords() []vellum.Record {
	t0 := time.Date(2026, 11, 30, 1, 2, 3, 456789000, time.UTC)
	many := map[string]string{}
	for i := range 40 { // more keys than the encoder's stack array
		many[fmt.Sprintf("k%02d", 39-i)] = fmt.Sprint(i)
	}
	return []vellum.Record{
		{Seq: 1, Time: t0, Action: "a", Outcome: vellum.Outcome{Status: vellum.StatusSuccess}},
		{Seq: 2, Time: t0.Add(1), Action: "tool.call", Outcome: vellum.Outcome{Status: vellum.StatusDenied, Reason: "rule \"x\" said no\n\ttab\\back", RuleID: "r-1", Approver: "bob", Mode: "enforce"},
			EventID: "évènement-ü-日本語-😀", EventTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 5*3600+30*60)),
			TenantID: "acme", UserID: "<script>&amp;</script>", Service: "svc\u2028line\u2029para", AuthMode: "gateway",
			Tool:  vellum.Tool{Name: "search", CallID: "c1", Arguments: json.RawMessage(`{ "query" : "a <b> & \u2028 c",  "n": [1, 2 ,3], "e":"\u00e9\ud83d\ude00" }`), IsError: true, DurationNS: -5},
			Model: vellum.Model{Name: "m", Provider: "p", FinishReason: "stop", InputTokens: 1 << 40, OutputTokens: 7},
			Agent: "ag", SessionID: "s", TraceID: "t", RequestID: "r",
			Attributes: map[string]string{"z": "last", "a": "first", "ünï": "\x00\x01\x1f\x7f", "h": "<>&", "bad": "\xff\xfe ok \xc3"},
			Redactions: []vellum.Redaction{{Rule: "EMAIL", Field: "tool.arguments.query", Count: 2}, {Rule: "SSN", Field: "outcome.reason", Count: 0}},
			KeyID:      "00ff", PrevMAC: macOf(1), MAC: macOf(9)},
		{Seq: 3, Time: t0.Add(time.Second), Action: "redacted", Outcome: vellum.Outcome{Status: vellum.StatusApproved},
			Tool:       vellum.Tool{Arguments: json.RawMessage(`{"email":"[REDACTED:EMAIL]","note":"call [REDACTED:PHONE] now"}`)},
			Redactions: []vellum.Redaction{{Rule: "EMAIL", Field: "tool.arguments.email", Count: 1}, {Rule: "PHONE", Field: "tool.arguments.note", Count: 1}},
			Attributes: many, MAC: macOf(3)},
		{Seq: 4, Time: t0.Add(2 * time.Second), Action: "x", Outcome: vellum.Outcome{Status: vellum.StatusPending}, Tool: vellum.Tool{IsError: true}},
		{Seq: 5, Time: t0.In(time.FixedZone("neg", -(8*3600 + 45*60))), Action: "x", Outcome: vellum.Outcome{Status: vellum.StatusBlocked}, Tool: vellum.Tool{DurationNS: 12}, Model: vellum.Model{OutputTokens: 3}},
		{Seq: 6, Time: time.Date(2026, 5, 5, 5, 5, 5, 0, time.UTC), Action: "x", Outcome: vellum.Outcome{Status: vellum.StatusFailure}, Tool: vellum.Tool{Arguments: json.RawMessage("[\n1,\r\n\"two\"\t]")}, Attributes: map[string]string{}},
		{Seq: 7, Time: time.Date(2026, 5, 5, 5, 5, 5, 100, time.UTC), Action: "x", Outcome: vellum.Outcome{Status: "success"}, Tool: vellum.Tool{Arguments: json.RawMessage(`"just a string"`)}, Redactions: []vellum.Redaction{}},
		{Seq: 8, Action: "zero.time", Outcome: vellum.Outcome{}},
	}
}

// TestListJSONMatchesEncodingJSON: the hand encoder of GET /v1/audit
// writes exactly what writeJSON (encoding/json) wrote, for every field,
// escapes, unicode, attributes, tool arguments that need compacting,
// redacted fields, cursors and checkpoints, and bench.Gen records.
func TestListJSONMatchesEncodingJSON(t *testing.T) {
	cp := &checkpointJSON{Origin: "vellum.example/log <&>", TreeSize: 42, RootHash: merkle.Hash{1, 2, 3}, Note: "vellum.example/log\n42\nAQID\n\n— sig\n"}
	g := bench.NewGen(7)
	var gen []vellum.Record
	for i := range 300 {
		r := g.Next()
		r.Seq, r.Time, r.KeyID, r.PrevMAC, r.MAC = uint64(i+1), time.Unix(0, 1_764_000_000_000_000_000+int64(i)*1001).UTC(), "0a0b", macOf(byte(i)), macOf(byte(i+1))
		gen = append(gen, r)
	}
	for _, tc := range []struct {
		name string
		resp listResponse
	}{
		{"empty", listResponse{Records: []vellum.Record{}}},
		{"varied", listResponse{Records: variedRecords()}},
		{"cursor and checkpoints", listResponse{Records: variedRecords()[:2], NextCursor: "AgAAAB-_x", Checkpoint: cp, CosignedCheckpoint: cp}},
		{"cosigned only", listResponse{Records: []vellum.Record{}, CosignedCheckpoint: cp}},
		{"bench.Gen", listResponse{Records: gen, NextCursor: "c"}},
	} {
		t.Run(tc.name, func(t *testing.T) { assertSameList(t, &tc.resp) })
	}
	for i, r := range variedRecords() {
		t.Run(fmt.Sprintf("record %d alone", i), func(t *testing.T) {
			assertSameList(t, &listResponse{Records: []vellum.Record{r}})
		})
	}
}

// TestListJSONFallsBack: what encoding/json refuses (a year it cannot
// write as RFC 3339, a zone offset of a day, arguments that are not JSON)
// gets the very same answer, by falling back to writeJSON.
func TestListJSONFallsBack(t *testing.T) {
	base := vellum.Record{Seq: 1, Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Action: "a", Outcome: vellum.Outcome{Status: "success"}}
	for _, tc := range []struct {
		name string
		mod  func(*vellum.Record)
	}{
		{"year 10000", func(r *vellum.Record) { r.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"year -1", func(r *vellum.Record) { r.EventTime = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"zone offset 25h", func(r *vellum.Record) { r.Time = r.Time.In(time.FixedZone("far", 25*3600)) }},
		{"arguments not JSON", func(r *vellum.Record) { r.Tool.Arguments = json.RawMessage(`{"a":`) }},
		{"arguments two values", func(r *vellum.Record) { r.Tool.Arguments = json.RawMessage(`1 2`) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			tc.mod(&r)
			resp := &listResponse{Records: []vellum.Record{r}}
			assertSameList(t, resp)
			if code, _ := oracleList(resp); code != 500 {
				t.Fatalf("encoding/json answered %d; the case does not exercise the fallback", code)
			}
		})
	}
}

// FuzzListJSON holds the hand encoder to encoding/json on arbitrary
// strings (invalid UTF-8, control characters), arbitrary tool argument
// bytes, and arbitrary times and zone offsets.
func FuzzListJSON(f *testing.F) {
	f.Add("acme", "tool.call", "k\x00\xff\u2028", "v\"\\<>", []byte(`{ "a" : [1, "\u00e9"] }`), int64(1764000000123456789), int64(0), 3)
	f.Add("", "a", "", "", []byte(nil), int64(0), int64(-3600), 0)
	f.Add("é", "b.c", "x", "y", []byte("[\n]"), int64(-62135596800000000), int64(86400), 1)
	f.Fuzz(func(t *testing.T, s1, s2, k, v string, args []byte, ns, off int64, n int) {
		tm := time.Unix(0, ns).In(time.FixedZone("f", int(off%200000)))
		r := vellum.Record{Seq: uint64(ns), Time: tm, EventTime: tm.Add(time.Duration(off)), EventID: s1, TenantID: s2, UserID: k, Action: s2,
			Tool:    vellum.Tool{Name: v, Arguments: args, DurationNS: off},
			Model:   vellum.Model{Provider: s1, InputTokens: uint64(off)},
			Outcome: vellum.Outcome{Status: v, Reason: s1 + s2},
			KeyID:   k, MAC: macOf(byte(n))}
		if n%2 == 1 {
			r.Attributes = map[string]string{k: v, s1: s2, strings.ToUpper(k): s1}
			r.Redactions = []vellum.Redaction{{Rule: k, Field: v, Count: uint32(n)}}
		}
		resp := &listResponse{Records: []vellum.Record{r, r}, NextCursor: s1}
		wantCode, want := oracleList(resp)
		gotCode, got, _ := fastList(resp)
		if gotCode != wantCode || !bytes.Equal(got, want) {
			t.Fatalf("writeList and writeJSON differ:\nwriteList %d %q\nwriteJSON %d %q", gotCode, got, wantCode, want)
		}
		var e listEncoder
		if err := e.encode(resp); (err == nil) != (wantCode == 200) {
			t.Fatalf("hand encoder: %v, encoding/json answered %d", err, wantCode)
		}
	})
}

// BenchmarkListJSON measures writing a page of 100 bench.Gen records as
// read back from the engine (MACs and key id set): the hand encoder
// against writeJSON (encoding/json), in the same run.
func BenchmarkListJSON(b *testing.B) {
	g := bench.NewGen(1)
	resp := &listResponse{Records: make([]vellum.Record, 100), NextCursor: "AgAAAAAAAAB7AAAAAAAAAAEAAAAAAAAA"}
	for i := range resp.Records {
		r := g.Next()
		r.Seq, r.Time, r.KeyID, r.PrevMAC, r.MAC = uint64(i+1), time.Unix(0, 1_764_000_000_000_000_000+int64(i)*1001).UTC(), "0a0b0c0d", macOf(byte(i)), macOf(byte(i+1))
		resp.Records[i] = r
	}
	_, body := oracleList(resp)
	for _, impl := range []struct {
		name  string
		write func(*httptest.ResponseRecorder)
	}{{"hand", func(w *httptest.ResponseRecorder) { writeList(w, resp) }}, {"encoding-json", func(w *httptest.ResponseRecorder) { writeJSON(w, 200, resp) }}} {
		b.Run("records=100/impl="+impl.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			w := httptest.NewRecorder()
			for b.Loop() {
				w.Body.Reset()
				impl.write(w)
			}
		})
	}
}

// BenchmarkListHTTP is the judged read over a real loopback HTTP server:
// the first page of tenant × action × hour from an engine on disk holding
// 200,000 bench.Gen records spread over a day, each request also appending
// and fsyncing its audit.query record before it answers. It measures the
// whole request as a client sees it (client-side body read included, JSON
// decode excluded).
func BenchmarkListHTTP(b *testing.B) {
	const n, day = 200_000, 24 * time.Hour
	epoch := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var now atomic.Int64 // the clock: each batch's time, then the real one
	store := newTestStoreOpts(b, func(o *engine.Options) {
		o.Now = func() time.Time {
			if t := now.Load(); t != 0 {
				return time.Unix(0, t).UTC()
			}
			return time.Now()
		}
	})
	g := bench.NewGen(1)
	batch := make([]vellum.Record, 0, 1000)
	for i := 0; i < n; i += cap(batch) {
		batch = batch[:0]
		now.Store(epoch.Add(time.Duration(i) * (day / n)).UnixNano())
		for range cap(batch) {
			batch = append(batch, g.Next())
		}
		if _, err := store.Append(context.Background(), batch...); err != nil {
			b.Fatal(err)
		}
	}
	now.Store(0)
	env := newTestServer(b, store, nil)
	actions := []string{"tool.call", "tool.result", "model.decision", "permission.decision"}
	rng := rand.New(rand.NewPCG(1, 2))
	lat := make([]time.Duration, 0, 1024)
	b.ResetTimer()
	for b.Loop() {
		since := epoch.Add(time.Duration(rng.Int64N(int64(day - time.Hour))))
		v := url.Values{}
		v.Set("since", since.Format(time.RFC3339Nano))
		v.Set("until", since.Add(time.Hour).Format(time.RFC3339Nano))
		v.Set("tenant_id", fmt.Sprintf("tenant-%02d", rng.IntN(20)))
		v.Set("action", actions[rng.IntN(len(actions))])
		t0 := time.Now()
		status, body, _ := env.do("GET", "/v1/audit?"+v.Encode(), adminToken, nil)
		lat = append(lat, time.Since(t0))
		if status != 200 || !bytes.HasPrefix(body, []byte(`{"records":[{`)) {
			b.Fatalf("%d %.200s", status, body)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// appendFailingStore refuses every append once fail is set, while reads
// keep working: a store whose disk refuses the audit.query record.
type appendFailingStore struct {
	Store
	fail atomic.Bool
}

func (s *appendFailingStore) Append(ctx context.Context, recs ...vellum.Record) ([]uint64, error) {
	if s.fail.Load() {
		return nil, errors.New("test: the disk refuses the write")
	}
	return s.Store.Append(ctx, recs...)
}

// TestListRefusedWhenAuditRecordFails: GET /v1/audit encodes its page
// while its audit.query record is appended, but answers only once the
// record is durable; when the append fails, the caller gets an error and
// not one record of the page.
func TestListRefusedWhenAuditRecordFails(t *testing.T) {
	st := &appendFailingStore{Store: newTestStore(t)}
	e := newTestServer(t, st, nil)
	e.ingest(ingestToken, event("tenant_id", "acme"), event("tenant_id", "acme"))
	if res := e.list(adminToken, "tenant_id=acme"); len(res.Records) != 2 {
		t.Fatalf("before: %d records", len(res.Records))
	}
	st.fail.Store(true)
	status, body, _ := e.do("GET", "/v1/audit?tenant_id=acme", adminToken, nil)
	if status != 500 || bytes.Contains(body, []byte(`"records"`)) {
		t.Fatalf("a read whose audit record failed answered %d %s", status, body)
	}
}
