package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// serveInProcess runs serve on a loopback port with VELLUM_ADMIN_TOKEN set
// and returns its URL, its log and a stop function.
func serveInProcess(t *testing.T, cfgPath, data string) (string, *lockedBuffer, func()) {
	t.Helper()
	t.Setenv("VELLUM_ADMIN_TOKEN", testToken)
	ctx, cancel := context.WithCancel(context.Background())
	logs := &lockedBuffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfgPath, data, "127.0.0.1:0", ready, io.Discard, logs) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve: %v\n%s", err, logs)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	t.Cleanup(stop)
	return "http://" + addr, logs, stop
}

func get(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestServeOps runs `vellum serve` with log_format json: "serving" is
// logged once, /metrics has the Vellum and Go runtime series, the admin
// report route serves the page, and every log line is JSON.
func TestServeOps(t *testing.T) {
	data := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "vellum.yaml")
	os.WriteFile(cfg, []byte("log_format: json\naudit:\n  retention:\n    max_age: 2555d\n    legal_holds: [acme]\n"), 0o600)
	url, logs, stop := serveInProcess(t, cfg, data)
	resp, err := post(url, []byte(`[{"event_id":"e1","tenant_id":"acme","action":"tool.call","tool":{"name":"send_email","arguments":{"to":"jane.doe@example.com"}},"outcome":{"status":"success"}}]`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("ingest: %v %v", err, resp)
	}
	resp.Body.Close()
	status, body := get(t, url+"/metrics", testToken)
	if status != 200 {
		t.Fatalf("/metrics: %d %s", status, body)
	}
	for _, want := range []string{`vellum_records_appended_total{outcome="success"} 1`, `vellum_redactions_total{rule="EMAIL"} 1`, "vellum_build_info{", "go_goroutines", "vellum_disk_free_bytes"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if status, _ := get(t, url+"/metrics", ""); status != 401 {
		t.Errorf("/metrics without a token: %d", status)
	}
	status, body = get(t, url+"/v1/admin/report", testToken)
	if status != 200 || !strings.Contains(string(body), "Vellum compliance report") || !strings.Contains(string(body), "2555d") || !strings.Contains(string(body), "acme") {
		t.Fatalf("report: %d %.500s", status, body)
	}
	stop()
	out := logs.String()
	if n := strings.Count(out, `"msg":"serving"`); n != 1 {
		t.Errorf("serving logged %d times:\n%s", n, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("not a JSON log line: %q", line)
		}
	}
	for _, s := range []string{testToken, "jane.doe@example.com"} {
		if strings.Contains(out, s) {
			t.Errorf("the log contains %q", s)
		}
	}
}

// TestReportCommand writes the report of a store made by serve, refuses
// to overwrite it, and prints no progress bar when stderr is not a
// terminal.
func TestReportCommand(t *testing.T) {
	data := t.TempDir()
	url, _, stop := serveInProcess(t, "", data)
	for i := 0; i < 3; i++ {
		resp, err := post(url, []byte(`[{"tenant_id":"acme","action":"approval.requested","outcome":{"status":"pending"}},{"tenant_id":"globex","action":"tool.call","tool":{"name":"web_search"},"outcome":{"status":"denied"}}]`))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("ingest: %v", err)
		}
		resp.Body.Close()
	}
	stop() // Close signs a final checkpoint
	out := filepath.Join(t.TempDir(), "report.html")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"report", "--data", data, "--out", out, "--since", "2020-01-01"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if strings.ContainsAny(stderr.String(), "\r\x1b") {
		t.Fatalf("progress output on a pipe: %q", stderr.String())
	}
	if !strings.Contains(stderr.String(), "6 records") || !strings.Contains(stderr.String(), "latest checkpoint: verified") {
		t.Fatalf("summary: %s", stderr.String())
	}
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<script", "<link", "src="} {
		if strings.Contains(string(page), bad) {
			t.Fatalf("the page contains %s", bad)
		}
	}
	if !strings.Contains(string(page), "VERIFIED") {
		t.Fatal("the checkpoint is not verified in the page")
	}
	stderr.Reset()
	if code := run([]string{"report", "--data", data, "--out", out}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "exists") {
		t.Fatalf("overwrite: exit %d %s", code, stderr.String())
	}
	for _, args := range [][]string{{"report", "--data", data}, {"report", "--data", data, "--out", out + "2", "--since", "yesterday"}, {"report", "--data", filepath.Join(data, "nope"), "--out", out + "3"}} {
		stderr.Reset()
		if code := run(args, &stdout, &stderr); code != 2 || stderr.Len() == 0 {
			t.Errorf("%v: exit %d %q", args, code, stderr.String())
		}
	}
	if _, err := os.Stat(out + "3"); err == nil {
		t.Error("a failed report left its file behind")
	}
}

func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"version"}, &stdout, &stderr); code != 0 {
		t.Fatal(stderr.String())
	}
	for _, want := range []string{"vellum ", "commit", runtime.Version(), "fips140"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("version output lacks %q:\n%s", want, stdout.String())
		}
	}
	stdout.Reset()
	run([]string{"version", "--json"}, &stdout, &stderr)
	var v map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &v); err != nil || v["go_version"] != runtime.Version() || v["fips140"] == nil {
		t.Fatalf("version --json: %v %s", err, stdout.String())
	}
}

// TestProgress: a bar is drawn on a terminal and nothing otherwise.
func TestProgress(t *testing.T) {
	var piped bytes.Buffer
	p := newProgress(&piped, "verifying", true)
	p.update(5, 10)
	p.done()
	if piped.Len() != 0 {
		t.Fatalf("progress on a non-terminal: %q", piped.String())
	}
	var term bytes.Buffer
	p = newProgressOn(&term, "exporting", false, true)
	for i := int64(1); i <= 10; i++ {
		p.update(i, 10)
		time.Sleep(15 * time.Millisecond)
	}
	if !strings.Contains(term.String(), "exporting") {
		t.Fatalf("no bar on a terminal: %q", term.String())
	}
	p.done()
}

// TestMetricsWithBackends: with audit.replicate the replica's lag is a
// series (it reaches 0 once the real SQLite replica caught up), and a SQL
// primary store still serves the server's own series, on the open metrics
// listener too.
func TestMetricsWithBackends(t *testing.T) {
	db := filepath.Join(t.TempDir(), "replica.db")
	url, logs, _ := serveWith(t, t.TempDir(), "audit:\n  replicate:\n    backend: sqlite\n    path: "+db+"\n")
	ingest(t, url, 5)
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, body := get(t, url+"/metrics", testToken)
		if status != 200 {
			t.Fatalf("/metrics: %d %s", status, body)
		}
		if strings.Contains(string(body), `vellum_replica_lag_records{replica="sqlite"} 0`) && strings.Contains(string(body), `vellum_replica_lag_seconds{replica="sqlite"} 0`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica lag never reached 0:\n%s\n%s", body, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}

	primary := filepath.Join(t.TempDir(), "primary.db")
	url, logs, stop := serveWith(t, t.TempDir(), "audit:\n  store: sqlite\n  sqlite:\n    path: "+primary+"\nmetrics:\n  addr: 127.0.0.1:0\n")
	ingest(t, url, 2)
	m := regexp.MustCompile(`serving /metrics without authentication" addr=(http://[0-9.:]+/metrics)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no metrics listener on a SQL store:\n%s", logs)
	}
	status, body := get(t, m[1], "")
	if status != 200 || !strings.Contains(string(body), `vellum_append_calls_total{result="ok"} 1`) {
		t.Fatalf("metrics listener on a SQL store: %d\n%s", status, body)
	}
	stop()
}
