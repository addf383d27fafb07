package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/query"
)

// sessionBatches reads the recorded session (collector/testdata) and
// returns it as two /v1/audit/steps bodies, split in the middle of a tool
// call's argument deltas.
func sessionBatches(t *testing.T) (first, second []byte, steps int) {
	t.Helper()
	f, err := os.Open("../collector/testdata/session.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var hdr struct{ Context json.RawMessage }
	var lines []string
	for sc.Scan() {
		if hdr.Context == nil {
			if err := json.Unmarshal(sc.Bytes(), &hdr); err != nil {
				t.Fatal(err)
			}
			continue
		}
		lines = append(lines, sc.Text())
	}
	body := func(ls []string) []byte {
		return []byte(`{"context":` + string(hdr.Context) + `,"steps":[` + strings.Join(ls, ",") + `]}`)
	}
	return body(lines[:5]), body(lines[5:]), len(lines) // lines[3:5] are deltas of call_1
}

func (e *testEnv) records(filter string) []vellum.Record {
	e.t.Helper()
	return e.list(adminToken, filter).Records
}

type stepsResult struct {
	Steps, Records int
	FirstSeq       uint64 `json:"first_seq"`
	LastSeq        uint64 `json:"last_seq"`
}

func (e *testEnv) postSteps(body []byte, header ...string) (int, []byte) {
	e.t.Helper()
	status, b, _ := e.do("POST", "/v1/audit/steps", acmeIngest, body, append([]string{"Content-Type", "application/json"}, header...)...)
	return status, b
}

// TestStepsSession: a recorded session posted in two requests (split
// inside a tool call's argument deltas) yields the collector's records,
// with the token's identity, the accumulated arguments and the outcomes.
func TestStepsSession(t *testing.T) {
	e := newTestServer(t, nil, nil)
	first, second, n := sessionBatches(t)
	status, b := e.postSteps(first)
	if status != http.StatusOK {
		t.Fatalf("first batch: %d %s", status, b)
	}
	var r1 stepsResult
	json.Unmarshal(b, &r1)
	if r1.Steps != 5 || r1.Records != 1 || r1.FirstSeq != 1 || r1.LastSeq != 1 {
		t.Fatalf("first batch: %s (the call's deltas wait for its completion)", b)
	}
	status, b = e.postSteps(gzipped(t, second), "Content-Encoding", "gzip")
	if status != http.StatusOK {
		t.Fatalf("second batch: %d %s", status, b)
	}
	var r2 stepsResult
	json.Unmarshal(b, &r2)
	if r2.Steps != n-5 || r2.Records != 22 || r2.FirstSeq != 2 || r2.LastSeq != 23 {
		t.Fatalf("second batch: %s", b)
	}
	recs := e.records("order=asc&limit=100")
	if len(recs) != 23 {
		t.Fatalf("%d records", len(recs))
	}
	call := recs[1]
	if call.Action != "tool.call" || string(compactJSON(call.Tool.Arguments)) != string(compactJSON([]byte(`{"order_id":"1234","fields":["status","total"]}`))) {
		t.Fatalf("record 2: %s %s", call.Action, call.Tool.Arguments)
	}
	for _, r := range recs {
		if r.TenantID != "acme" || r.UserID != "acme-agent" || r.SessionID != "sess-py-0001" || r.AuthMode != "token" ||
			r.Attributes["vellum.principal"] != "acme-agent" || r.Model.Name != "granite-3.3-8b" {
			t.Fatalf("seq %d: identity %+v", r.Seq, r)
		}
	}
	var denied, granted bool
	for _, r := range recs {
		denied = denied || r.Action == "permission.decision" && r.Outcome.Status == vellum.StatusDenied && r.Tool.CallID == "call_2"
		granted = granted || r.Action == "approval.granted" && r.Outcome.Approver == "ops-bob" && r.Tool.CallID == "call_3"
	}
	if !denied || !granted {
		t.Fatalf("denied %v, granted %v", denied, granted)
	}
}

func gzipped(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// TestStepsRejectsMalformed: one bad step rejects the request with its
// index and field, and nothing of it is stored.
func TestStepsRejectsMalformed(t *testing.T) {
	e := newTestServer(t, nil, nil)
	for _, tt := range []struct{ body, want string }{
		{`{"context":{"session_id":"s"},"steps":[{"type":"request_start"},{"type":"x"}]}`, `steps[1].type: unknown step type "x"`},
		{`{"context":{"session_id":"s"},"steps":[{"type":"loop_break","tenant":"evil"}]}`, `steps[0].tenant: is not a field here`},
		{`{"context":{"session_id":"s","tenant_id":"evil"},"steps":[{"type":"request_end"}]}`, `context.tenant_id: is not a field here`},
		{`{"steps":[{"type":"request_end"}]}`, `context: is required`},
	} {
		status, b := e.postSteps([]byte(tt.body))
		if status != http.StatusBadRequest || !strings.Contains(detail(t, b), tt.want) {
			t.Errorf("%s: %d %s, want 400 %q", tt.body, status, b, tt.want)
		}
	}
	if recs := e.records("limit=10"); len(recs) != 0 {
		t.Fatalf("%d records stored from rejected requests", len(recs))
	}
}

// TestGzipBodies: both ingest routes take gzip bodies; the body limit
// applies after decompression (a bomb is a 413), bad gzip is a 400 and
// another encoding a 415.
func TestGzipBodies(t *testing.T) {
	e := newTestServer(t, nil, func(c *ServerConfig) { c.BodyLimit = 64 << 10 })
	ev := []byte(`[{"action":"tool.call","tenant_id":"acme","outcome":{"status":"success"}}]`)
	status, b, _ := e.do("POST", "/v1/audit/events", acmeIngest, gzipped(t, ev), "Content-Encoding", "gzip")
	if status != http.StatusOK {
		t.Fatalf("gzip events: %d %s", status, b)
	}
	// 10 MiB of spaces inside a valid array: ~10 KiB compressed.
	bomb := gzipped(t, append(append([]byte("["), bytes.Repeat([]byte(" "), 10<<20)...), ']'))
	if len(bomb) > 64<<10 {
		t.Fatalf("bomb is %d bytes compressed", len(bomb))
	}
	for _, path := range []string{"/v1/audit/events", "/v1/audit/steps"} {
		status, b, _ = e.do("POST", path, acmeIngest, bomb, "Content-Encoding", "gzip")
		if status != http.StatusRequestEntityTooLarge || !strings.Contains(detail(t, b), "decompresses to more than") {
			t.Errorf("%s bomb: %d %s, want 413", path, status, b)
		}
		status, b, _ = e.do("POST", path, acmeIngest, []byte("not gzip"), "Content-Encoding", "gzip")
		if status != http.StatusBadRequest {
			t.Errorf("%s bad gzip: %d %s, want 400", path, status, b)
		}
		status, b, _ = e.do("POST", path, acmeIngest, ev, "Content-Encoding", "br")
		if status != http.StatusUnsupportedMediaType {
			t.Errorf("%s br: %d %s, want 415", path, status, b)
		}
	}
	if n := len(e.records("limit=10")); n != 1 {
		t.Fatalf("%d records, want the one gzip event", n)
	}
}

// TestGatewayHeadersUntrusted: forged X-Auth-Subject / X-Tenant from a
// client that is not a trusted gateway are ignored (and logged once,
// without their values), on both ingest routes.
func TestGatewayHeadersUntrusted(t *testing.T) {
	e := newTestServer(t, nil, func(c *ServerConfig) {
		c.TrustedGateway = GatewayConfig{Principals: []string{"ops"}, Networks: []string{"10.0.0.0/8"}}
	})
	forged := []string{"X-Auth-Subject", "mallory", "X-Tenant", "globex"}
	status, b, _ := e.do("POST", "/v1/audit/events", ingestToken,
		[]byte(`[{"action":"tool.call","tenant_id":"acme","user_id":"alice","outcome":{"status":"success"}}]`), forged...)
	if status != http.StatusOK {
		t.Fatalf("events: %d %s", status, b)
	}
	status, b = e.postSteps([]byte(`{"context":{"session_id":"s"},"steps":[{"type":"request_start"}]}`), forged...)
	if status != http.StatusOK {
		t.Fatalf("steps: %d %s", status, b)
	}
	recs := e.records("order=asc")
	if len(recs) != 2 || recs[0].TenantID != "acme" || recs[0].UserID != "alice" || recs[0].AuthMode != "" ||
		recs[1].TenantID != "acme" || recs[1].UserID != "acme-agent" || recs[1].AuthMode != "bearer" {
		t.Fatalf("forged headers were used: %+v", recs)
	}
	logs := e.logs.String()
	if strings.Count(logs, "not a trusted gateway") != 1 {
		t.Fatalf("want one warning about the headers, logs:\n%s", logs)
	}
	if strings.Contains(logs, "mallory") || strings.Contains(logs, "globex") {
		t.Fatal("header values reached the log")
	}
}

// TestGatewayHeadersTrusted: from a listed principal the headers set the
// user and tenant (auth_mode gateway); an event naming another tenant is
// refused; a tenant outside the principal's scope is 403.
func TestGatewayHeadersTrusted(t *testing.T) {
	e := newTestServer(t, nil, func(c *ServerConfig) {
		c.TrustedGateway = GatewayConfig{Principals: []string{"agent", "acme-agent"}}
	})
	gw := []string{"X-Auth-Subject", "bob", "X-Tenant", "globex"}
	status, b, _ := e.do("POST", "/v1/audit/events", ingestToken, []byte(`[{"action":"tool.call","outcome":{"status":"success"}}]`), gw...)
	if status != http.StatusOK {
		t.Fatalf("events: %d %s", status, b)
	}
	status, b, _ = e.do("POST", "/v1/audit/steps", ingestToken, []byte(`{"context":{"session_id":"s"},"steps":[{"type":"request_start"}]}`), gw...)
	if status != http.StatusOK {
		t.Fatalf("steps: %d %s", status, b)
	}
	for _, r := range e.records("order=asc") {
		if r.TenantID != "globex" || r.UserID != "bob" || r.AuthMode != "gateway" {
			t.Fatalf("seq %d: %s/%s/%s, want globex/bob/gateway", r.Seq, r.TenantID, r.UserID, r.AuthMode)
		}
	}
	status, b, _ = e.do("POST", "/v1/audit/events", ingestToken, []byte(`[{"action":"tool.call","tenant_id":"acme","outcome":{"status":"success"}}]`), gw...)
	if status != http.StatusBadRequest || !strings.Contains(detail(t, b), "X-Tenant") {
		t.Fatalf("conflicting tenant: %d %s", status, b)
	}
	status, b, _ = e.do("POST", "/v1/audit/events", acmeIngest, []byte(`[{"action":"tool.call","outcome":{"status":"success"}}]`), gw...)
	if status != http.StatusForbidden {
		t.Fatalf("tenant outside scope: %d %s", status, b)
	}
}

// TestGatewayNetworks: trust by source network; loopback is trusted only
// when listed.
func TestGatewayNetworks(t *testing.T) {
	for _, tt := range []struct {
		nets []string
		want string
	}{{[]string{"127.0.0.0/8"}, "globex"}, {[]string{"10.0.0.0/8", "::1/128"}, ""}} {
		e := newTestServer(t, nil, func(c *ServerConfig) { c.TrustedGateway = GatewayConfig{Networks: tt.nets} })
		e.do("POST", "/v1/audit/events", ingestToken, []byte(`[{"action":"tool.call","outcome":{"status":"success"}}]`), "X-Tenant", "globex")
		page, err := e.store.Query(t.Context(), query.Query{Limit: 10})
		if err != nil || len(page.Records) != 1 || page.Records[0].TenantID != tt.want {
			t.Fatalf("networks %v: %+v %v, want tenant %q", tt.nets, page.Records, err, tt.want)
		}
	}
}

func TestGatewayConfig(t *testing.T) {
	for _, g := range []GatewayConfig{{Networks: []string{"10.0.0.1"}}, {Networks: []string{"nonsense/8"}}, {Principals: []string{""}}, {Principals: []string{"a", "a"}}} {
		cfg := DefaultConfig()
		cfg.TrustedGateway = g
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "trusted_gateway") {
			t.Errorf("%+v: %v, want a trusted_gateway error", g, err)
		}
	}
}

// TestStepsSessionEviction: the session state is bounded; an evicted (or
// idle) session's pending tool call is recorded, not lost.
func TestStepsSessionEviction(t *testing.T) {
	e := newTestServer(t, nil, nil)
	e.srv.steps = newStepSessions(1, time.Hour)
	status, b := e.postSteps([]byte(`{"context":{"session_id":"a"},"steps":[{"type":"tool_call_delta","index":0,"call_id":"c1","name":"t","arguments":"{\"x\":1}"}]}`))
	if status != http.StatusOK || !strings.Contains(string(b), `"records":0`) {
		t.Fatalf("a: %d %s", status, b)
	}
	status, b = e.postSteps([]byte(`{"context":{"session_id":"b"},"steps":[{"type":"request_start"}]}`))
	if status != http.StatusOK || !strings.Contains(string(b), `"records":1`) {
		t.Fatalf("b: %d %s", status, b)
	}
	if e.srv.steps.len() != 1 {
		t.Fatalf("%d sessions kept, want 1", e.srv.steps.len())
	}
	recs := e.records("order=asc")
	if len(recs) != 2 || recs[0].SessionID != "a" || recs[0].Action != "tool.call" || string(recs[0].Tool.Arguments) != `{"x":1}` || recs[1].SessionID != "b" {
		t.Fatalf("records %+v", recs)
	}
	// Idle sessions are closed the same way.
	e.srv.steps = newStepSessions(10, 0)
	e.postSteps([]byte(`{"context":{"session_id":"c"},"steps":[{"type":"tool_call_delta","index":0,"call_id":"c2","arguments":"[]"}]}`))
	e.postSteps([]byte(`{"context":{"session_id":"d"},"steps":[{"type":"request_end"}]}`))
	if recs := e.records("order=asc&session_id=c"); len(recs) != 1 || recs[0].Tool.CallID != "c2" {
		t.Fatalf("idle session's call: %+v", recs)
	}
}

// TestStepsConcurrentSessions: many sessions at once through a small
// session table: every call is recorded exactly once, whoever's request
// closes its session.
func TestStepsConcurrentSessions(t *testing.T) {
	e := newTestServer(t, nil, nil)
	e.srv.steps = newStepSessions(4, time.Hour)
	const sessions, rounds = 12, 8
	var wg sync.WaitGroup
	for g := range sessions {
		wg.Go(func() {
			for i := range rounds {
				for _, st := range []string{
					fmt.Sprintf(`{"type":"tool_call_delta","index":0,"call_id":"c%d-%d","name":"t","arguments":"[%d]"}`, g, i, i),
					`{"type":"loop_break"}`,
				} {
					body := fmt.Sprintf(`{"context":{"session_id":"s%d"},"steps":[%s]}`, g, st)
					if status, b := e.postSteps([]byte(body)); status != http.StatusOK {
						t.Errorf("%d %s", status, b)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	recs := e.records("limit=1000")
	calls := map[string]int{}
	for _, r := range recs {
		if r.Action == "tool.call" {
			calls[r.Tool.CallID]++
		}
	}
	if len(recs) != 2*sessions*rounds || len(calls) != sessions*rounds {
		t.Fatalf("%d records, %d distinct calls; want %d and %d", len(recs), len(calls), 2*sessions*rounds, sessions*rounds)
	}
}

// TestStepsMatchCollectorGolden: the route and the Go collector are one
// mapping: the recorded session posted over HTTP yields the collector's
// golden records (identity aside: here it comes from the token).
func TestStepsMatchCollectorGolden(t *testing.T) {
	e := newTestServer(t, nil, nil)
	first, second, _ := sessionBatches(t)
	for _, b := range [][]byte{first, second} {
		if status, body := e.postSteps(b); status != http.StatusOK {
			t.Fatalf("%d %s", status, body)
		}
	}
	gb, err := os.ReadFile("../collector/testdata/session.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var want []vellum.Record
	if err := json.Unmarshal(gb, &want); err != nil {
		t.Fatal(err)
	}
	got := e.records("order=asc&limit=100")
	if len(got) != len(want) {
		t.Fatalf("%d records, golden has %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		delete(g.Attributes, "vellum.principal")
		if len(g.Attributes) == 0 {
			g.Attributes = nil
		}
		if g.Action != w.Action || !g.EventTime.Equal(w.EventTime) || g.Model != w.Model || g.Outcome != w.Outcome ||
			g.Tool.Name != w.Tool.Name || g.Tool.CallID != w.Tool.CallID || g.Tool.IsError != w.Tool.IsError ||
			g.Tool.DurationNS != w.Tool.DurationNS || !bytes.Equal(compactJSON(g.Tool.Arguments), compactJSON(w.Tool.Arguments)) ||
			fmt.Sprint(g.Attributes) != fmt.Sprint(w.Attributes) {
			t.Errorf("record %d:\n got  %+v\n want %+v", i, g, w)
		}
	}
}

// sessionLines returns the recorded session's context and steps as JSON.
func sessionLines(t *testing.T) (string, []string) {
	t.Helper()
	b, err := os.ReadFile("../collector/testdata/session.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var hdr struct{ Context json.RawMessage }
	if err := json.Unmarshal([]byte(lines[0]), &hdr); err != nil {
		t.Fatal(err)
	}
	return string(hdr.Context), lines[1:]
}

// withFirstStep returns the body of steps[from:to] with context.first_step
// = from.
func withFirstStep(ctx string, steps []string, from, to int) []byte {
	return []byte(fmt.Sprintf(`{"context":%s,"steps":[%s]}`,
		strings.Replace(ctx, "{", fmt.Sprintf(`{"first_step":%d,`, from), 1), strings.Join(steps[from:to], ",")))
}

type resumeResult struct {
	stepsResult
	Skipped  int    `json:"skipped"`
	NextStep uint64 `json:"next_step"`
}

// TestStepsFirstStepExactlyOnce: batches with context.first_step. A resend
// (the same batch again) stores nothing; an overlapping batch skips what
// was consumed and maps the rest; a batch posted after the session's state
// is lost (a fresh session table, as after a restart) is mapped afresh and
// its records dedup by event_id. The session ends with exactly the
// records of one pass, the split call's arguments accumulated once.
func TestStepsFirstStepExactlyOnce(t *testing.T) {
	e := newTestServer(t, nil, nil)
	ctx, steps := sessionLines(t)
	post := func(from, to int) resumeResult {
		t.Helper()
		status, b := e.postSteps(withFirstStep(ctx, steps, from, to))
		if status != http.StatusOK {
			t.Fatalf("steps %d..%d: %d %s", from, to, status, b)
		}
		var r resumeResult
		json.Unmarshal(b, &r)
		return r
	}
	if r := post(0, 5); r.Records != 1 || r.Skipped != 0 || r.NextStep != 5 {
		t.Fatalf("first batch: %+v", r)
	}
	if r := post(0, 5); r.Records != 0 || r.Skipped != 5 || r.NextStep != 5 || r.Steps != 5 {
		t.Fatalf("resent: %+v", r)
	}
	// Overlapping: steps 3..11, of which 3 and 4 (deltas of call_1) were
	// consumed.
	if r := post(3, 12); r.Skipped != 2 || r.NextStep != 12 {
		t.Fatalf("overlap: %+v", r)
	}
	// The state is lost: steps 8..20 again, then the rest.
	e.srv.steps = newStepSessions(defaultStepSessions, time.Hour)
	post(8, 20)
	if r := post(20, len(steps)); r.NextStep != uint64(len(steps)) {
		t.Fatalf("last batch: %+v", r)
	}
	recs := e.records("session_id=sess-py-0001&order=asc&limit=100")
	if len(recs) != 23 {
		for _, r := range recs {
			t.Logf("%d %s %s %s", r.Seq, r.EventID, r.Action, r.Tool.Arguments)
		}
		t.Fatalf("%d records, want the 23 of one pass", len(recs))
	}
	ids := map[string]bool{}
	for _, r := range recs {
		if ids[r.EventID] || !strings.HasPrefix(r.EventID, "st-") {
			t.Fatalf("event id %q repeated or not a step's", r.EventID)
		}
		ids[r.EventID] = true
	}
	if call := recs[1]; call.Action != "tool.call" || string(compactJSON(call.Tool.Arguments)) != string(compactJSON([]byte(`{"order_id":"1234","fields":["status","total"]}`))) {
		t.Fatalf("record 2: %s %s", call.Action, call.Tool.Arguments)
	}
	// The same records as the session posted once without first_step.
	e2 := newTestServer(t, nil, nil)
	first, second, _ := sessionBatches(t)
	e2.postSteps(first)
	e2.postSteps(second)
	once := e2.records("order=asc&limit=100")
	for i := range once {
		a, b := recs[i], once[i]
		if a.Action != b.Action || a.Outcome != b.Outcome || !bytes.Equal(compactJSON(a.Tool.Arguments), compactJSON(b.Tool.Arguments)) || !a.EventTime.Equal(b.EventTime) {
			t.Fatalf("record %d: %s %+v %s, posted once: %s %+v %s", i, a.Action, a.Outcome, a.Tool.Arguments, b.Action, b.Outcome, b.Tool.Arguments)
		}
	}
}

// TestStepsFirstStepConflicts: a gap, a batch older than the last one, and
// another stream under the same session id are 409s naming what was
// expected, and store nothing; the session goes on.
func TestStepsFirstStepConflicts(t *testing.T) {
	e := newTestServer(t, nil, nil)
	ctx, steps := sessionLines(t)
	if status, b := e.postSteps(withFirstStep(ctx, steps, 0, 10)); status != http.StatusOK {
		t.Fatalf("%d %s", status, b)
	}
	before := len(e.records("session_id=sess-py-0001&limit=100"))
	other := strings.Replace(strings.Join(steps, "\n"), "2026-11-29T10:00:0", "2026-11-30T10:00:0", -1)
	for name, tt := range map[string]struct {
		body []byte
		want string
	}{
		"gap":          {withFirstStep(ctx, steps, 12, 14), "context.first_step: expected 10, got 12: steps 10 to 11 of session"},
		"older":        {withFirstStep(ctx, steps, 2, 6), "context.first_step: expected 10, got 2: the batch ends at step 5, before the session's last step 9"},
		"other stream": {withFirstStep(ctx, strings.Split(other, "\n"), 0, 12), "context.first_step: expected 10, got 0: steps[9] (step 9) is not the step 9 the session consumed"},
	} {
		status, b := e.postSteps(tt.body)
		if status != http.StatusConflict || !strings.Contains(string(b), tt.want) {
			t.Errorf("%s: %d %s, want 409 %q", name, status, b, tt.want)
		}
	}
	if n := len(e.records("session_id=sess-py-0001&limit=100")); n != before {
		for _, r := range e.records("session_id=sess-py-0001&limit=100") {
			t.Logf("%s %s %s", r.EventID, r.Action, r.Attributes)
		}
		t.Fatalf("%d records after the conflicts, want the first batch's %d", n, before)
	}
	if status, b := e.postSteps(withFirstStep(ctx, steps, 10, len(steps))); status != http.StatusOK {
		t.Fatalf("next batch: %d %s", status, b)
	}
	if n := len(e.records("session_id=sess-py-0001&limit=100")); n != 23 {
		t.Fatalf("%d records, want 23", n)
	}
}

// TestStepsRequestEndError: request_end with an error (the agent's stream
// raised) is request.end with status failure and the error as its reason:
// the record the Go collector makes for an error yielded by its stream.
func TestStepsRequestEndError(t *testing.T) {
	e := newTestServer(t, nil, nil)
	status, b := e.postSteps([]byte(`{"context":{"session_id":"f"},"steps":[{"type":"request_start"},{"type":"request_end","error":"RuntimeError: model backend unreachable"}]}`))
	if status != http.StatusOK {
		t.Fatalf("%d %s", status, b)
	}
	recs := e.records("session_id=f&order=asc")
	if len(recs) != 2 || recs[1].Action != "request.end" || recs[1].Outcome.Status != vellum.StatusFailure ||
		recs[1].Outcome.Reason != "RuntimeError: model backend unreachable" {
		t.Fatalf("records %+v", recs)
	}
}

// TestStepsConflictKeepsClosedSessions: a request answered 409 still
// records the pending calls of the sessions it closed for idleness.
func TestStepsConflictKeepsClosedSessions(t *testing.T) {
	e := newTestServer(t, nil, nil)
	e.srv.steps = newStepSessions(10, 30*time.Minute)
	e.postSteps([]byte(`{"context":{"session_id":"a"},"steps":[{"type":"tool_call_delta","index":0,"call_id":"c1","arguments":"[]"}]}`))
	e.postSteps([]byte(`{"context":{"session_id":"b","first_step":0},"steps":[{"type":"request_start"}]}`))
	e.srv.steps.mu.Lock()
	e.srv.steps.byKey[sessionKey{"acme", "a"}].Value.(*stepSession).last = time.Now().Add(-time.Hour)
	e.srv.steps.mu.Unlock()
	status, b := e.postSteps([]byte(`{"context":{"session_id":"b","first_step":5},"steps":[{"type":"request_end"}]}`))
	if status != http.StatusConflict {
		t.Fatalf("%d %s", status, b)
	}
	if recs := e.records("session_id=a"); len(recs) != 1 || recs[0].Tool.CallID != "c1" || recs[0].Attributes["vellum.principal"] != "acme-agent" {
		t.Fatalf("idle session's call: %+v", recs)
	}
}
