package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/backends/postgres/pgtest"
)

// fleetServer is one `vellum serve` process of the fleet.
type fleetServer struct {
	cmd    *exec.Cmd
	url    string
	data   string
	mu     sync.Mutex
	stderr bytes.Buffer
}

func (s *fleetServer) logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

// startConfigured runs `vellum serve --config cfg` and returns once it
// listens.
func startConfigured(t *testing.T, bin, cfg string, env ...string) *fleetServer {
	t.Helper()
	s := &fleetServer{}
	s.cmd = exec.Command(bin, "serve", "--config", cfg)
	s.cmd.Env = append(append(os.Environ(), "VELLUM_ADMIN_TOKEN="+testToken), env...)
	stderr, _ := s.cmd.StderrPipe()
	s.cmd.Stdout = io.Discard
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`msg=serving addr=(http://[0-9.:]+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.mu.Lock()
			s.stderr.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	t.Cleanup(func() {
		s.cmd.Process.Signal(os.Interrupt)
		s.cmd.Wait()
	})
	select {
	case s.url = <-addr:
		return s
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		t.Fatalf("vellum serve did not start:\n%s", s.logs())
	}
	return nil
}

func getJSON(t *testing.T, u string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: %v: %s", u, err, b)
		}
	}
	return resp.StatusCode
}

type readyz struct {
	Status  string `json:"status"`
	Replica struct {
		Target     string  `json:"target"`
		Records    uint64  `json:"lag_records"`
		Seconds    float64 `json:"lag_seconds"`
		Replicated uint64  `json:"replicated_seq"`
		Error      string  `json:"error"`
	} `json:"replica"`
}

// TestFleet runs three `vellum serve` processes on loopback, each with its
// own engine and writer id, replicating into one PostgreSQL database, and
// reads the whole fleet from one of them with query.source: replica: the
// same parameters and cursors, every server's records, and the read
// recorded as an audit.query record in the answering server's own log.
// The DSN carries a password, which no log line may show.
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	_, dsn := pgtest.Schema(t)
	u, _ := url.Parse(dsn)
	const secret = "fleet-Secret-pw-7"
	u.User = url.UserPassword(u.User.Username(), secret) // trust auth ignores it; logs must too
	bin, err := buildVellum()
	if err != nil {
		t.Fatal(err)
	}
	var servers []*fleetServer
	for i := 1; i <= 3; i++ {
		data := t.TempDir()
		cfg := filepath.Join(data, "vellum.yaml")
		os.WriteFile(cfg, []byte(fmt.Sprintf(`
addr: 127.0.0.1:0
data_dir: %s
audit:
  replicate:
    backend: postgres
    dsn: ${FLEET_DSN}
    writer_id: agent-%d
    batch_size: 100
    flush_interval: 20ms
query:
  source: replica
`, filepath.Join(data, "d"), i)), 0o600)
		s := startConfigured(t, bin, cfg, "FLEET_DSN="+u.String())
		s.data = data
		servers = append(servers, s)
	}
	// Each server takes its own agents' events.
	want := map[string]bool{}
	for i, s := range servers {
		var evs []map[string]any
		for j := range 40 {
			id := fmt.Sprintf("s%d-e%d", i+1, j)
			evs = append(evs, map[string]any{"event_id": id, "tenant_id": "acme", "user_id": fmt.Sprintf("user-%d", i+1),
				"action": []string{"tool.call", "approval.granted"}[j%2], "tool": map[string]any{"name": "web_search", "arguments": map[string]any{"q": id}},
				"outcome": map[string]any{"status": "success"}})
			want[fmt.Sprintf("agent-%d/%d", i+1, j+1)] = true
		}
		body, _ := json.Marshal(evs)
		resp, err := post(s.url, body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("ingest into server %d: %v %v", i+1, err, resp)
		}
		resp.Body.Close()
	}
	// Every server's replica catches up; /readyz says how far behind.
	for i, s := range servers {
		deadline := time.Now().Add(30 * time.Second)
		for {
			var rz readyz
			if code := getJSON(t, s.url+"/readyz", &rz); code == 200 && rz.Replica.Replicated >= 40 && rz.Replica.Records == 0 {
				if !strings.Contains(rz.Replica.Target, "xxxxx") || strings.Contains(rz.Replica.Target, secret) {
					t.Errorf("server %d: /readyz names the target %q", i+1, rz.Replica.Target)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("server %d did not replicate:\n%s", i+1, s.logs())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// One query, paged with cursors, spans the fleet.
	got := map[string]bool{}
	q := "/v1/audit?tenant_id=acme&action=tool.&limit=7"
	cursor := ""
	pages := 0
	for {
		var page struct {
			Records    []vellum.Record `json:"records"`
			NextCursor string          `json:"next_cursor"`
		}
		u := servers[0].url + q
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		if code := getJSON(t, u, &page); code != 200 {
			t.Fatalf("GET %s: %d\n%s", u, code, servers[0].logs())
		}
		pages++
		for _, r := range page.Records {
			if r.Action != "tool.call" || r.TenantID != "acme" {
				t.Errorf("record %+v does not match the query", r)
			}
			if r.Tool.Arguments != nil || r.Attributes["vellum.tool_arguments_sha256"] == "" {
				t.Errorf("a summary carries its arguments: %+v", r)
			}
			k := r.Attributes["vellum.writer"] + "/" + fmt.Sprint(r.Seq)
			if got[k] {
				t.Errorf("%s returned twice", k)
			}
			got[k] = true
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	writers := map[string]int{}
	for k := range got {
		if !want[k] {
			t.Errorf("unexpected record %s", k)
		}
		writers[strings.Split(k, "/")[0]]++
	}
	if len(got) != 60 || len(writers) != 3 {
		t.Fatalf("the fleet query returned %d records from %v, want 60 (20 tool.call from each of 3 servers)", len(got), writers)
	}
	t.Logf("one query over %d pages returned %d records from writers %v", pages, len(got), writers)
	// The read is recorded in the answering server's own log (seq 41 on:
	// after its 40 events), with the query's parameters.
	var rec vellum.Record
	if code := getJSON(t, servers[0].url+"/v1/audit/41", &rec); code != 200 || rec.Action != "audit.query" || rec.Attributes["query.action"] != "tool." {
		t.Errorf("the fleet read was not recorded as audit.query: %d %+v", code, rec)
	}
	// A cursor from another query is refused, as from the engine.
	var bad map[string]any
	if code := getJSON(t, servers[0].url+"/v1/audit?tenant_id=globex&cursor="+url.QueryEscape(cursor+"x"), &bad); code != 400 {
		t.Errorf("a bad cursor got %d", code)
	}
	for i, s := range servers {
		if strings.Contains(s.logs(), secret) {
			t.Errorf("server %d logged the DSN's password", i+1)
		}
	}
}
