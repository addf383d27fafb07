package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

const adminToken = "agentserver-test-admin-0123456789"

// lockedBuffer collects the server's log safely across goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start runs the agent server on a loopback port with a fresh data
// directory and returns its base URL; it stops at the end of the test.
func start(t *testing.T, args ...string) (string, *lockedBuffer) {
	t.Helper()
	t.Setenv("VELLUM_ADMIN_TOKEN", adminToken)
	logs := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	args = append([]string{"-data", t.TempDir(), "-addr", "127.0.0.1:0"}, args...)
	go func() { done <- run(ctx, args, logs, ready) }()
	select {
	case u := <-ready:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		})
		return u, logs
	case err := <-done:
		cancel()
		t.Fatalf("agentserver did not start: %v\n%s", err, logs)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("agentserver did not start in 30 s")
	}
	return "", nil
}

func do(t *testing.T, method, u string, hdr map[string]string, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// chat sends a message as alice of acme and returns the stream's lines as
// they come.
func chat(t *testing.T, base, session string) (<-chan map[string]any, func()) {
	t.Helper()
	resp := do(t, "POST", base+"/chat", map[string]string{"X-Tenant": "acme", "X-Auth-Subject": "alice", "X-Trace-Id": "trace-" + session},
		fmt.Sprintf(`{"session_id": %q, "message": "refund order 1234"}`, session))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /chat: %d %s", resp.StatusCode, b)
	}
	ch := make(chan map[string]any, 100)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				ev = map[string]any{"type": "unparsable", "line": sc.Text()}
			}
			ch <- ev
		}
	}()
	return ch, func() { resp.Body.Close() }
}

// next returns the next event of the stream, failing after a minute.
func next(t *testing.T, ch <-chan map[string]any) map[string]any {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("the stream ended early")
		}
		return ev
	case <-time.After(time.Minute):
		t.Fatal("no event in a minute")
	}
	return nil
}

func answerQ(t *testing.T, base, qid, approver, outcome string) int {
	t.Helper()
	resp := do(t, "POST", base+"/questions/"+qid, map[string]string{"X-Tenant": "acme", "X-Auth-Subject": approver},
		fmt.Sprintf(`{"outcome": %q}`, outcome))
	resp.Body.Close()
	return resp.StatusCode
}

func records(t *testing.T, base string, filters url.Values) []map[string]any {
	t.Helper()
	filters.Set("limit", "1000")
	resp := do(t, "GET", base+"/v1/audit?"+filters.Encode(), map[string]string{"Authorization": "Bearer " + adminToken}, "")
	defer resp.Body.Close()
	var page struct {
		Records    []map[string]any `json:"records"`
		NextCursor string           `json:"next_cursor"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&page) != nil || page.NextCursor != "" {
		t.Fatalf("GET /v1/audit: %d", resp.StatusCode)
	}
	return page.Records
}

func get(r map[string]any, path string) string {
	var v any = r
	for _, k := range strings.Split(path, ".") {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	if v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// conversation runs the scripted conversation of session, answering the
// question with outcome by approver, and returns the event types the
// client saw.
func conversation(t *testing.T, base, session, approver, outcome string) []string {
	t.Helper()
	ch, stop := chat(t, base, session)
	defer stop()
	var types []string
	for {
		ev := next(t, ch)
		types = append(types, get(ev, "type"))
		switch get(ev, "type") {
		case "question_asked":
			if get(ev, "tool") != "issue_refund" || get(ev, "call_id") != "call_3" {
				t.Fatalf("question about %v", ev)
			}
			if code := answerQ(t, base, get(ev, "question_id"), approver, outcome); code != 204 {
				t.Fatalf("answer: %d", code)
			}
		case "request_end":
			return types
		case "error", "unparsable":
			t.Fatalf("stream: %v", ev)
		}
	}
}

// wantRecords is the audit trail of the approved conversation: action,
// tool.call_id, outcome.status.
var wantRecords = [][3]string{
	{"request.start", "", "success"},
	{"tool.call", "call_1", "success"},
	{"permission.decision", "call_1", "approved"},
	{"tool.result", "call_1", "success"},
	{"tool.call", "call_2", "success"},
	{"permission.decision", "call_2", "denied"},
	{"tool.result", "call_2", "failure"},
	{"tool.call", "call_3", "success"},
	{"permission.decision", "call_3", "pending"},
	{"approval.requested", "call_3", "pending"},
	{"approval.granted", "call_3", "approved"},
	{"tool.result", "call_3", "success"},
	{"tool.call", "call_4", "success"},
	{"permission.decision", "call_4", "approved"},
	{"tool.result", "call_4", "failure"},
	{"model.decision", "", "success"},
	{"request.end", "", "success"},
}

// TestConversationAudited drives the scripted conversation end to end over
// HTTP — a plain tool, a refund denied by policy, a refund an operator
// approves, a tool that fails — and reads its audit trail back with
// GET /v1/audit from the engine the server embeds.
func TestConversationAudited(t *testing.T) {
	for _, policy := range []string{"fail_closed", "fail_open"} {
		t.Run(policy, func(t *testing.T) {
			base, logs := start(t, "-policy", policy)
			types := conversation(t, base, "s-1", "ops-bob", "approve")
			wantTypes := []string{"request_start",
				"reasoning_delta", "tool_call_delta", "tool_call_delta", "tool_call_delta", "permission_decision", "tool_result",
				"reasoning_delta", "tool_call_delta", "permission_decision", "tool_result",
				"reasoning_delta", "tool_call_delta", "tool_call_delta", "permission_decision", "question_asked", "question_answered", "tool_result",
				"reasoning_delta", "tool_call_delta", "permission_decision", "tool_result",
				"content_delta", "content_delta", "stream_complete", "request_end"}
			if !reflect.DeepEqual(types, wantTypes) {
				t.Fatalf("the client saw\n%q\nwant\n%q", types, wantTypes)
			}
			// fail_open writes in the background: wait for the records.
			waitReady(t, base)
			recs := waitRecords(t, base, url.Values{"session_id": {"s-1"}}, len(wantRecords))
			var got [][3]string
			for _, r := range recs {
				got = append(got, [3]string{get(r, "action"), get(r, "tool.call_id"), get(r, "outcome.status")})
			}
			if !reflect.DeepEqual(got, wantRecords) {
				t.Fatalf("records\n got %q\nwant %q", got, wantRecords)
			}
			for i, r := range recs {
				for k, want := range map[string]string{"tenant_id": "acme", "user_id": "alice", "auth_mode": "gateway",
					"agent": "support-bot", "model.name": "scripted-1", "trace_id": "trace-s-1"} {
					if g := get(r, k); g != want {
						t.Errorf("record %d (%s): %s = %q, want %q", i, r["action"], k, g, want)
					}
				}
			}
			for _, c := range []struct {
				i          int
				path, want string
			}{
				{1, "tool.name", "lookup_order"},
				{1, "tool.arguments", `{"fields":["status","total"],"order_id":"1234"}`}, // three deltas, one value
				{4, "tool.arguments", `{"amount":1500,"order_id":"1234"}`},
				{5, "outcome.rule_id", "refund-over-limit"},
				{5, "outcome.mode", "enforce"},
				{7, "tool.arguments", `{"amount":42.5,"order_id":"1234"}`},
				{9, "outcome.rule_id", "refunds-need-approval"},
				{10, "outcome.approver", "ops-bob"},
				{10, "tool.name", "issue_refund"},
				{14, "tool.name", "fetch_invoice"},
				{14, "tool.is_error", "true"},
				{14, "outcome.reason", "billing service unavailable (HTTP 503)"},
				{15, "model.input_tokens", "812"},
				{15, "model.finish_reason", "stop"},
			} {
				if g := get(recs[c.i], c.path); g != c.want {
					t.Errorf("record %d (%s): %s = %q, want %q", c.i, recs[c.i]["action"], c.path, g, c.want)
				}
			}
			if strings.Contains(logs.String(), "refund order 1234") {
				t.Error("the log holds the user's message")
			}
		})
	}
}

// waitRecords polls GET /v1/audit until it finds n records (fail_open
// appends in the background), for at most a minute.
func waitRecords(t *testing.T, base string, filters url.Values, n int) []map[string]any {
	t.Helper()
	for i := 0; ; i++ {
		recs := records(t, base, filters)
		if len(recs) >= n || i == 600 {
			return recs
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	for i := 0; ; i++ {
		resp := do(t, "GET", base+"/readyz", nil, "")
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			return
		}
		if i == 300 {
			t.Fatalf("/readyz: %d %s", resp.StatusCode, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestApprovalDeniedAndConcurrentSessions: an operator's refusal is
// recorded as approval.denied with the operator, the refund never runs,
// and sessions running at once keep their own trails.
func TestApprovalDeniedAndConcurrentSessions(t *testing.T) {
	base, _ := start(t)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outcome := []string{"approve", "deny"}[i%2]
			conversation(t, base, fmt.Sprintf("c-%d", i), fmt.Sprintf("op-%d", i), outcome)
		}()
	}
	wg.Wait()
	for i := range 4 {
		recs := records(t, base, url.Values{"session_id": {fmt.Sprintf("c-%d", i)}})
		if i%2 == 0 {
			if len(recs) != len(wantRecords) {
				t.Errorf("session %d: %d records, want %d", i, len(recs), len(wantRecords))
			}
			continue
		}
		// Denied: approval.denied by the operator, and the refund's result
		// is the refusal, not a refund.
		if len(recs) != len(wantRecords) {
			t.Fatalf("session %d: %d records", i, len(recs))
		}
		if r := recs[10]; get(r, "action") != "approval.denied" || get(r, "outcome.approver") != fmt.Sprintf("op-%d", i) || get(r, "outcome.status") != "denied" {
			t.Errorf("session %d: %v", i, r)
		}
		if r := recs[11]; get(r, "outcome.status") != "failure" || get(r, "outcome.reason") != "not approved: deny" {
			t.Errorf("session %d: the refused refund's result %v", i, r)
		}
	}
	if n := len(records(t, base, url.Values{"action": {"approval.granted"}})); n != 2 {
		t.Errorf("%d approvals granted, want 2", n)
	}
}

// TestGatewayIdentityRequired: without the gateway's headers the agent
// refuses the request, and a question nobody waits for is 404.
func TestGatewayIdentityRequired(t *testing.T) {
	base, _ := start(t)
	resp := do(t, "POST", base+"/chat", nil, `{"session_id": "s", "message": "hi"}`)
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("chat without identity: %d", resp.StatusCode)
	}

	if code := answerQ(t, base, "q-99", "ops", "approve"); code != 404 {
		t.Errorf("answer to no question: %d", code)
	}
	if code := answerQ(t, base, "q-1", "ops", "maybe"); code != 400 {
		t.Errorf("outcome maybe: %d", code)
	}
	if recs := records(t, base, url.Values{"session_id": {"s"}}); len(recs) != 0 {
		t.Errorf("a refused request left records: %v", recs)
	}
}

// TestForgedIdentityIgnored: X-Tenant and X-Auth-Subject from a source
// outside the gateway's networks are ignored (and that is logged once,
// without their values), so the request has no identity and is refused,
// leaving no records.
func TestForgedIdentityIgnored(t *testing.T) {
	base, logs := start(t, "-gateway", "192.0.2.0/24") // loopback is not the gateway
	for range 2 {
		resp := do(t, "POST", base+"/chat", map[string]string{"X-Tenant": "acme", "X-Auth-Subject": "mallory"},
			`{"session_id": "forged", "message": "refund order 1234"}`)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.Contains(string(b), "no gateway identity") {
			t.Fatalf("forged identity: %d %s", resp.StatusCode, b)
		}
	}
	if code := answerQ(t, base, "q-1", "mallory", "approve"); code != 401 {
		t.Errorf("forged approver: %d", code)
	}
	if recs := records(t, base, url.Values{"session_id": {"forged"}}); len(recs) != 0 {
		t.Errorf("records of a forged request: %v", recs)
	}
	if n := strings.Count(logs.String(), "ignoring X-Auth-Subject/X-Tenant"); n != 1 || strings.Contains(logs.String(), "mallory") {
		t.Errorf("logged the ignored headers %d times (want once, without values):\n%s", n, logs)
	}
}
