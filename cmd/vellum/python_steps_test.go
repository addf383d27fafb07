package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The Python examples of the step stream (examples/python/vellum_audit.py,
// replay.py) run here against a real `vellum serve` on loopback.

var pyDir, _ = filepath.Abs("../../examples/python")

// runPy runs a Python script of examples/python (or a module with -m) and
// returns its exit code, stdout and stderr.
func runPy(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(python3(t), args...)
	cmd.Dir = pyDir
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONPATH="+pyDir)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errb.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errb.String()
}

// TestPythonCollectorUnit runs the Python unit tests of vellum_audit.py
// (its policies against a stand-in that fails on cue) and replay.py's
// session reader.
func TestPythonCollectorUnit(t *testing.T) {
	code, out, errs := runPy(t, "", "-m", "unittest", "discover", "-s", ".", "-p", "test_*.py")
	if code != 0 || !strings.Contains(errs, "\nOK") {
		t.Fatalf("python unittest: exit %d\n%s%s", code, out, errs)
	}
}

// auditQuery returns every record GET /v1/audit finds for the filters.
func auditQuery(t *testing.T, l *live, token string, filters url.Values) []map[string]any {
	t.Helper()
	var all []map[string]any
	cursor := ""
	for {
		q := url.Values{}
		for k, v := range filters {
			q[k] = v
		}
		q.Set("limit", "1000")
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		code, body := l.call("GET", "/v1/audit?"+q.Encode(), token, "")
		if code != 200 {
			t.Fatalf("GET /v1/audit: %d %s", code, body)
		}
		var page struct {
			Records    []map[string]any `json:"records"`
			NextCursor string           `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Records...)
		if page.NextCursor == "" {
			return all
		}
		cursor = page.NextCursor
	}
}

// field returns the value at a dotted path of a record, "" when absent.
func field(r map[string]any, path string) any {
	var v any = r
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// sessionRecords are the records examples/python/session.jsonl must yield,
// in order: action, tool.call_id, outcome.status.
var sessionRecords = [][3]string{
	{"request.start", "", "success"},
	{"tool.call", "call_1", "success"},
	{"permission.decision", "call_1", "approved"},
	{"tool.result", "call_1", "success"},
	{"tool.call", "call_2", "success"},
	{"permission.decision", "call_2", "denied"},
	{"tool.call", "call_3", "success"},
	{"permission.decision", "call_3", "pending"},
	{"approval.requested", "call_3", "pending"},
	{"approval.granted", "call_3", "approved"},
	{"tool.result", "call_3", "success"},
	{"tool.call", "call_4", "success"},
	{"permission.decision", "call_4", "approved"},
	{"tool.result", "call_4", "failure"},
	{"subagent.invoked", "", "pending"},
	{"subagent.completed", "", "success"},
	{"subagent.invoked", "", "pending"},
	{"subagent.failed", "", "failure"},
	{"guardrail.fired", "", "success"},
	{"limit.exceeded", "", "blocked"},
	{"loop.break", "", "blocked"},
	{"model.decision", "", "success"},
	{"request.end", "", "success"},
}

// checkSessionRecords checks the records of session.jsonl field by field
// where it matters: the sequence, identity and context, the accumulated
// arguments, the denied call, the approval and the failing tool.
func checkSessionRecords(t *testing.T, recs []map[string]any, tenant, user string) {
	t.Helper()
	var got [][3]string
	for _, r := range recs {
		got = append(got, [3]string{str(r["action"]), str(field(r, "tool.call_id")), str(field(r, "outcome.status"))})
	}
	if !reflect.DeepEqual(got, sessionRecords) {
		t.Fatalf("records (action, call_id, status):\n got %q\nwant %q", got, sessionRecords)
	}
	for i, r := range recs {
		for k, want := range map[string]string{"session_id": "sess-py-0001", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
			"agent": "support-bot", "model.name": "granite-3.3-8b", "tenant_id": tenant, "user_id": user} {
			if g := str(field(r, k)); g != want {
				t.Errorf("record %d (%s): %s = %q, want %q", i, r["action"], k, g, want)
			}
		}
	}
	// The arguments of call_1 came in three fragments; stored as one JSON value.
	args, _ := json.Marshal(field(recs[1], "tool.arguments"))
	if string(args) != `{"fields":["status","total"],"order_id":"1234"}` {
		t.Errorf("call_1 tool.arguments = %s", args)
	}
	if a, _ := json.Marshal(field(recs[6], "tool.arguments")); string(a) != `{"amount":42.5,"order_id":"1234"}` {
		t.Errorf("call_3 tool.arguments = %s", a)
	}
	checks := []struct {
		i     int
		path  string
		want  string
		about string
	}{
		{1, "tool.name", "lookup_order", "the plain call"},
		{5, "tool.name", "delete_account", "the denied call"},
		{5, "outcome.rule_id", "no-destructive-tools", "the denied call"},
		{5, "outcome.mode", "enforce", "the denied call"},
		{8, "outcome.rule_id", "refunds-need-approval", "the question"},
		{9, "outcome.approver", "ops-bob", "the approval"},
		{9, "tool.name", "issue_refund", "the approval"},
		{10, "tool.name", "issue_refund", "the approved call's result"},
		{13, "tool.name", "fetch_invoice", "the failing tool"},
		{13, "tool.is_error", "true", "the failing tool"},
		{13, "outcome.reason", "billing service timed out after 5s", "the failing tool"},
		{13, "event_time", "2026-11-29T10:00:15.92Z", "the failing tool"},
		{13, "tool.duration_ns", "5.01e+09", "the failing tool (result ts − allow ts)"},
		{17, "outcome.reason", "model overloaded", "the failed sub-agent"},
		{18, "outcome.rule_id", "pii-output", "the guardrail"},
		{21, "model.finish_reason", "stop", "the model's turn"},
		{21, "model.input_tokens", "1523", "the model's turn"},
		{21, "model.output_tokens", "311", "the model's turn"},
	}
	for _, c := range checks {
		if g := str(field(recs[c.i], c.path)); g != c.want {
			t.Errorf("%s (record %d, %s): %s = %q, want %q", c.about, c.i, recs[c.i]["action"], c.path, g, c.want)
		}
	}
}

// TestPythonReplaySession replays examples/python/session.jsonl with
// replay.py (the fixed interface: --url, --token, the file) through
// vellum_audit.AuditCollector into `vellum serve`, and finds its records
// with GET /v1/audit: the denied call, the approval granted by ops-bob,
// the failing tool with its error, the arguments accumulated from three
// deltas as one JSON value.
func TestPythonReplaySession(t *testing.T) {
	python3(t)
	t.Setenv("VELLUM_ADMIN_TOKEN", testToken)
	l := startLive(t, "", t.TempDir())
	code, out, errs := runPy(t, "", "replay.py", "--url", l.url, "--token", testToken, "session.jsonl")
	if code != 0 {
		t.Fatalf("replay.py: exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(errs, "30 steps replayed, 30 acknowledged, 23 records stored, 0 rejected") {
		t.Errorf("replay.py summary: %s", errs)
	}
	// What replay.py printed is what GET /v1/audit holds.
	var printed []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("replay.py printed %q: %v", sc.Text(), err)
		}
		printed = append(printed, r)
	}
	recs := auditQuery(t, l, testToken, url.Values{"session_id": {"sess-py-0001"}})
	checkSessionRecords(t, recs, "", "quickstart-admin")
	if !reflect.DeepEqual(printed, recs) {
		t.Errorf("replay.py printed %d records, GET /v1/audit has %d", len(printed), len(recs))
	}
}

// TestPythonReplayRejected: a session with a step the server refuses
// makes replay.py exit 1 naming the step. fail_closed stops there: what
// was released before it (request_start) is stored, the refused step and
// everything after it are not. fail_open stores the steps around it and
// counts the refusal.
func TestPythonReplayRejected(t *testing.T) {
	python3(t)
	t.Setenv("VELLUM_ADMIN_TOKEN", testToken)
	l := startLive(t, "", t.TempDir())
	session := func(id string) string {
		f := filepath.Join(t.TempDir(), id+".jsonl")
		os.WriteFile(f, []byte(`{"context": {"session_id": "`+id+`"}}
{"type": "request_start"}
{"type": "permission_decision", "call_id": "c1", "tool": "t", "action": "maybe"}
{"type": "request_end"}
`), 0o644)
		return f
	}
	actions := func(id string) []string {
		var out []string
		for _, r := range auditQuery(t, l, testToken, url.Values{"session_id": {id}}) {
			out = append(out, str(r["action"]))
		}
		return out
	}
	code, out, errs := runPy(t, "", "replay.py", "--url", l.url, "--token", testToken, session("sess-bad"))
	// The step is named as Vellum names it in the posted batch, and by its
	// place in the stream (line 3 of the file).
	if code != 1 || !strings.Contains(errs, "FAILED") || !strings.Contains(errs, `steps[0].action: "maybe" is not one of allow, deny, ask (stream step 2, permission_decision`) {
		t.Fatalf("replay.py: exit %d, want 1 and FAILED naming stream step 2\n%s\n%s", code, out, errs)
	}
	if got := actions("sess-bad"); !reflect.DeepEqual(got, []string{"request.start"}) {
		t.Errorf("fail_closed stored %v, want request.start alone", got)
	}
	code, _, errs = runPy(t, "", "replay.py", "--policy", "fail_open", "--url", l.url, "--token", testToken, session("sess-bad-open"))
	if code != 1 || !strings.Contains(errs, "3 steps replayed, 2 acknowledged, 2 records stored, 1 rejected") {
		t.Fatalf("replay.py --policy fail_open: exit %d\n%s", code, errs)
	}
	if got := actions("sess-bad-open"); !reflect.DeepEqual(got, []string{"request.start", "request.end"}) {
		t.Errorf("fail_open stored %v, want request.start and request.end", got)
	}
}

// startServeAt runs the built `vellum serve` on addr with data and the
// admin token, and waits until it answers.
func startServeAt(t *testing.T, bin, data, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--data", data, "--addr", addr)
	cmd.Env = append(os.Environ(), "VELLUM_ADMIN_TOKEN="+testToken)
	var errb lockedBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if strings.Contains(errb.String(), "msg=serving") {
			return cmd
		}
		if i == 600 {
			cmd.Process.Kill()
			t.Fatalf("vellum serve did not start on %s:\n%s", addr, errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stopServe ends a `vellum serve` process with SIGTERM and waits for it.
func stopServe(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// pyProc is a Python driver talked to line by line.
type pyProc struct {
	t     *testing.T
	cmd   *exec.Cmd
	in    *os.File
	lines chan string
	errb  *lockedBuffer
}

func startPy(t *testing.T, args ...string) *pyProc {
	t.Helper()
	cmd := exec.Command(python3(t), args...)
	cmd.Dir = pyDir
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONPATH="+pyDir)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = r
	out, _ := cmd.StdoutPipe()
	p := &pyProc{t: t, cmd: cmd, in: w, lines: make(chan string, 100), errb: &lockedBuffer{}}
	cmd.Stderr = p.errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() { cmd.Process.Kill(); w.Close() })
	return p
}

// expect returns the next line, which must start with prefix.
func (p *pyProc) expect(prefix string) string {
	p.t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok || !strings.HasPrefix(l, prefix) {
			p.t.Fatalf("driver said %q (closed: %v), want %q…\n%s", l, !ok, prefix, p.errb.String())
		}
		return strings.TrimSpace(strings.TrimPrefix(l, prefix))
	case <-time.After(2 * time.Minute):
		p.t.Fatalf("driver silent, want %q…\n%s", prefix, p.errb.String())
	}
	return ""
}

func (p *pyProc) wait() int {
	p.t.Helper()
	p.in.Close()
	err := p.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		p.t.Fatal(err)
	}
	return 0
}

// TestPythonCollectorOutage stops a real `vellum serve` process under
// vellum_audit.AuditCollector and starts it again on the same address.
// fail_open: the agent's stream goes on, the failures are counted and
// visible, the steps spill to a file and, once Vellum is back, are
// delivered in order, nothing lost, nothing twice, and the chain verifies.
// fail_closed: no event is released while Vellum is down, the stream
// raises AuditUnavailable within its bound, and the next request after
// the restart is audited again.
func TestPythonCollectorOutage(t *testing.T) {
	python3(t)
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := buildVellum()
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	addr := freeAddr(t) // Vellum is down: nothing listens there yet
	base := "http://" + addr
	session := filepath.Join(pyDir, "session.jsonl")
	driver, _ := filepath.Abs("testdata/outage.py")

	t.Run("fail_open", func(t *testing.T) {
		spill := filepath.Join(t.TempDir(), "audit.spill")
		p := startPy(t, driver, "fail_open", base, testToken, session, spill)
		var st map[string]any
		json.Unmarshal([]byte(p.expect("streamed ")), &st)
		if st["released"] != 30.0 || st["healthy"] != false || st["failures"].(float64) < 1 || st["dropped"] != 0.0 ||
			st["spill_pending"].(float64) == 0 {
			t.Fatalf("while Vellum is down: %v", st)
		}
		if fi, err := os.Stat(spill); err != nil || fi.Size() == 0 {
			t.Fatalf("spill file: %v %v", fi, err)
		}
		srv := startServeAt(t, bin, data, addr)
		defer stopServe(t, srv)
		fmt.Fprintln(p.in, "go")
		json.Unmarshal([]byte(p.expect("flushed ")), &st)
		if code := p.wait(); code != 0 {
			t.Fatalf("driver exit %d: %v\n%s", code, st, p.errb.String())
		}
		if st["sent"] != 30.0 || st["records"] != 23.0 || st["healthy"] != true || st["spill_pending"] != 0.0 {
			t.Errorf("after recovery: %v", st)
		}
		l := &live{t: t, url: base}
		checkSessionRecords(t, auditQuery(t, l, testToken, url.Values{"session_id": {"sess-py-0001"}}), "", "quickstart-admin")
	})

	t.Run("fail_closed", func(t *testing.T) {
		p := startPy(t, driver, "fail_closed", base, testToken, session)
		if n := p.expect("released "); n != "0" {
			t.Errorf("%s events released while Vellum was down", n)
		}
		if e := p.expect("raised "); !strings.Contains(e, "not durable within 1s") {
			t.Errorf("raised %q", e)
		}
		srv := startServeAt(t, bin, data, addr)
		defer stopServe(t, srv)
		fmt.Fprintln(p.in, "go")
		if n := p.expect("released "); n != "30" {
			t.Errorf("after the restart %s of 30 events released", n)
		}
		p.expect("ok")
		if code := p.wait(); code != 0 {
			t.Fatalf("driver exit %d\n%s", code, p.errb.String())
		}
		l := &live{t: t, url: base}
		if recs := auditQuery(t, l, testToken, url.Values{"session_id": {"sess-py-0001-after"}}); len(recs) != len(sessionRecords) {
			t.Errorf("after the restart: %d records, want %d", len(recs), len(sessionRecords))
		}
		if recs := auditQuery(t, l, testToken, url.Values{"session_id": {"sess-py-0001"}}); len(recs) != len(sessionRecords) {
			t.Errorf("the failed request added records: %d, want the %d of fail_open", len(recs), len(sessionRecords))
		}
	})

	// The chain is intact after both outages.
	if code, out, errs := runCmd("verify", "--data", data); code != 0 {
		t.Fatalf("vellum verify: %d\n%s\n%s", code, out, errs)
	}
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// TestPythonGatewayIdentity: the tenant and user a Python agent server
// passes to AuditCollector.wrap travel as X-Tenant and X-Auth-Subject;
// Vellum takes them from a principal it trusts as the gateway, and from
// anyone else ignores them (the token's name and only tenant stand).
func TestPythonGatewayIdentity(t *testing.T) {
	python3(t)
	const gw, agent, auditor = "gateway-token-0123456789abcdef", "agent-token-0123456789abcdef", "auditor-token-0123456789abcdef"
	t.Setenv("VELLUM_TEST_GW", gw)
	t.Setenv("VELLUM_TEST_AGENT", agent)
	t.Setenv("VELLUM_TEST_AUDITOR", auditor)
	cfg := filepath.Join(t.TempDir(), "vellum.yaml")
	os.WriteFile(cfg, []byte(`trusted_gateway:
  principals: [gateway]
auth:
  tokens:
    - {name: gateway, role: ingest, token_env: VELLUM_TEST_GW}
    - {name: support-bot, role: ingest, tenants: [globex], token_env: VELLUM_TEST_AGENT}
    - {name: auditor, role: auditor, token_env: VELLUM_TEST_AUDITOR}
`), 0o644)
	l := startLive(t, cfg, t.TempDir())
	session := filepath.Join(pyDir, "session.jsonl")
	for _, tt := range []struct {
		name, token, tenant, user string
	}{
		{"trusted gateway", gw, "acme", "alice"},
		{"forged by an agent token", agent, "globex", "support-bot"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := runPy(t, "", "replay.py", "--url", l.url, "--token", tt.token, "--read-token", auditor,
				"--tenant", "acme", "--user", "alice", session)
			if code != 0 {
				t.Fatalf("replay.py: exit %d\n%s", code, errs)
			}
			recs := auditQuery(t, l, auditor, url.Values{"session_id": {"sess-py-0001"}, "tenant_id": {tt.tenant}})
			checkSessionRecords(t, recs, tt.tenant, tt.user)
		})
	}
}

// BenchmarkPythonCollector measures vellum_audit.AuditCollector against
// `vellum serve` on loopback: events/s through one collector (from 1 and
// from 64 concurrent sessions) and the latency it adds per event, p50 and
// p99, beside the bare stream's in the same run. One iteration replays
// the recorded session 20 times per session slot.
func BenchmarkPythonCollector(b *testing.B) {
	if _, err := exec.LookPath("python3"); err != nil {
		if os.Getenv("CI") == "true" {
			b.Fatal("python3 is missing; .ci/run installs it")
		}
		b.Skip("python3 not installed")
	}
	b.Setenv("VELLUM_ADMIN_TOKEN", testToken)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, "", b.TempDir(), "127.0.0.1:0", ready, io.Discard, io.Discard) }()
	var base string
	select {
	case a := <-ready:
		base = "http://" + a
	case err := <-done:
		b.Fatal(err)
	}
	script, _ := filepath.Abs("testdata/pybench.py")
	for _, bc := range []struct {
		policy         string
		sessions, conc int
	}{{"fail_open", 20, 1}, {"fail_closed", 20, 1}, {"fail_open", 640, 64}, {"fail_closed", 640, 64}} {
		b.Run(fmt.Sprintf("policy=%s/sessions=%d", bc.policy, bc.conc), func(b *testing.B) {
			var events, secs, p50, p99, bp50, bp99 float64
			for range b.N {
				cmd := exec.Command("python3", script, base, testToken, bc.policy, fmt.Sprint(bc.sessions), fmt.Sprint(bc.conc))
				cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONPATH="+pyDir)
				out, err := cmd.Output()
				if err != nil {
					b.Fatalf("%v\n%s", err, out)
				}
				var r struct {
					Events  float64 `json:"events"`
					Seconds float64 `json:"seconds"`
					OK      bool    `json:"ok"`
					P50us   float64 `json:"p50_us"`
					P99us   float64 `json:"p99_us"`
					Bp50    float64 `json:"bare_p50_us"`
					Bp99    float64 `json:"bare_p99_us"`
				}
				if err := json.Unmarshal(out, &r); err != nil {
					b.Fatalf("%v: %s", err, out)
				}
				if !r.OK {
					b.Fatalf("not every step acknowledged: %s", out)
				}
				events += r.Events
				secs += r.Seconds
				p50, p99, bp50, bp99 = p50+r.P50us, p99+r.P99us, bp50+r.Bp50, bp99+r.Bp99
			}
			n := float64(b.N)
			b.ReportMetric(events/secs, "events/s")
			b.ReportMetric(p50/n, "p50-µs")
			b.ReportMetric(p99/n, "p99-µs")
			b.ReportMetric(bp50/n, "bare-p50-µs")
			b.ReportMetric(bp99/n, "bare-p99-µs")
		})
	}
}

// TestStepsResendExactlyOnce posts examples/python/session.jsonl to a real
// `vellum serve` in batches with context.first_step, as vellum_audit.py
// does: a batch sent again (its answer lost), an overlapping batch, and —
// after the server restarted and lost its session state — a batch sent
// again once more. GET /v1/audit finds each record of the session once,
// the arguments of the call split over three deltas accumulated once, and
// the chain verifies.
func TestStepsResendExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := buildVellum()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(pyDir, "session.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	var hdr struct{ Context map[string]any }
	if err := json.Unmarshal([]byte(lines[0]), &hdr); err != nil {
		t.Fatal(err)
	}
	steps := lines[1:]
	data, addr := t.TempDir(), freeAddr(t)
	l := &live{t: t, url: "http://" + addr}
	type answer struct {
		Steps, Records, Skipped int
		NextStep                int `json:"next_step"`
	}
	post := func(from, to int) answer {
		t.Helper()
		hdr.Context["first_step"] = from
		ctx, _ := json.Marshal(hdr.Context)
		code, body := l.call("POST", "/v1/audit/steps", testToken, `{"context":`+string(ctx)+`,"steps":[`+strings.Join(steps[from:to], ",")+`]}`)
		if code != 200 {
			t.Fatalf("steps %d..%d: %d %s", from, to-1, code, body)
		}
		var a answer
		json.Unmarshal(body, &a)
		return a
	}
	session := url.Values{"session_id": {"sess-py-0001"}}
	checkOnce := func(n int) []map[string]any {
		t.Helper()
		recs := auditQuery(t, l, testToken, session)
		ids := map[string]bool{}
		for _, r := range recs {
			id := str(r["event_id"])
			if ids[id] {
				t.Fatalf("event %s stored twice", id)
			}
			ids[id] = true
		}
		if len(recs) != n {
			t.Fatalf("%d records, want %d", len(recs), n)
		}
		return recs
	}

	srv := startServeAt(t, bin, data, addr)
	if a := post(0, 5); a.Records != 1 || a.NextStep != 5 {
		t.Fatalf("steps 0..4: %+v", a)
	}
	if a := post(0, 5); a.Records != 0 || a.Skipped != 5 || a.NextStep != 5 {
		t.Fatalf("steps 0..4 again: %+v, want nothing stored", a)
	}
	a := post(3, 16)
	if a.Skipped != 2 || a.NextStep != 16 {
		t.Fatalf("steps 3..15: %+v, want 3 and 4 skipped", a)
	}
	recs := checkOnce(1 + a.Records)
	if args, _ := json.Marshal(field(recs[1], "tool.arguments")); string(args) != `{"fields":["status","total"],"order_id":"1234"}` {
		t.Fatalf("call_1 tool.arguments = %s", args)
	}
	stored := len(recs)

	// A restart loses the session state: the batch sent again is mapped
	// afresh, and its records are the same event ids, stored once.
	stopServe(t, srv)
	srv = startServeAt(t, bin, data, addr)
	defer stopServe(t, srv)
	if a := post(3, 16); a.Skipped != 0 || a.Records != stored-1 || a.NextStep != 16 {
		t.Fatalf("steps 3..15 after the restart: %+v", a)
	}
	checkOnce(stored)
	post(16, len(steps))
	checkSessionRecords(t, checkOnce(len(sessionRecords)), "", "quickstart-admin")
	stopServe(t, srv)
	if code, out, errs := runCmd("verify", "--data", data); code != 0 {
		t.Fatalf("vellum verify: %d\n%s\n%s", code, out, errs)
	}
}
