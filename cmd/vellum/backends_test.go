package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/vellumlog/vellum/backends/postgres/pgtest"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveWith runs serve in-process with the config text until the test
// ends, and returns its URL and log.
func serveWith(t *testing.T, data, cfgText string) (string, *syncBuffer, func()) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "vellum.yaml")
	os.WriteFile(cfg, []byte(cfgText), 0o600)
	t.Setenv("VELLUM_ADMIN_TOKEN", testToken)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	logs := &syncBuffer{}
	go func() { done <- serve(ctx, cfg, data, "127.0.0.1:0", ready, &bytes.Buffer{}, logs) }()
	var stop func()
	select {
	case addr := <-ready:
		stop = func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
		return "http://" + addr, logs, stop
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v\n%s", err, logs)
	}
	return "", nil, nil
}

func ingest(t *testing.T, url string, n int) []uint64 {
	t.Helper()
	var evs []map[string]any
	for i := range n {
		evs = append(evs, map[string]any{"event_id": fmt.Sprintf("e-%d", i), "tenant_id": "acme", "user_id": "alice",
			"action": "tool.call", "tool": map[string]any{"name": "web_search", "arguments": map[string]any{"q": i}},
			"outcome": map[string]any{"status": "success"}})
	}
	body, _ := json.Marshal(evs)
	resp, err := post(url, body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Seqs []uint64 `json:"seqs"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != http.StatusOK || len(out.Seqs) != n {
		t.Fatalf("ingest: %d %v", resp.StatusCode, out.Seqs)
	}
	return out.Seqs
}

func listCount(t *testing.T, url string) int {
	t.Helper()
	var page struct {
		Records []json.RawMessage `json:"records"`
	}
	if code := getJSON(t, url+"/v1/audit?tenant_id=acme&limit=1000", &page); code != 200 {
		t.Fatalf("list: %d", code)
	}
	return len(page.Records)
}

func verifyCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(append([]string{"verify"}, args...), &out, &errOut)
	return code, out.String() + errOut.String()
}

// TestServeSQLStores runs the server on each primary store other than the
// engine: records go in and come back, the SQL stores' chains verify with
// `vellum verify --sqlite/--dsn`, and a row changed by hand is named.
func TestServeSQLStores(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		data := t.TempDir()
		db := filepath.Join(data, "audit.db")
		url, _, stop := serveWith(t, data, "audit:\n  store: sqlite\n  sqlite:\n    path: "+db+"\n")
		ingest(t, url, 5)
		if n := listCount(t, url); n != 5 {
			t.Errorf("listed %d records", n)
		}
		stop()
		key := filepath.Join(data, "hmac.key")
		if code, out := verifyCLI(t, "--sqlite", db, "--key", key); code != 0 || !strings.Contains(out, "intact") {
			t.Fatalf("verify: %d\n%s", code, out)
		}
		raw := rawDB(t, db)
		raw.Exec(`DROP TRIGGER audit_records_no_update`)
		if _, err := raw.Exec(`UPDATE audit_records SET user_id = 'mallory' WHERE seq = 3`); err != nil {
			t.Fatal(err)
		}
		if code, out := verifyCLI(t, "--sqlite", db, "--key", key); code != 1 || !strings.Contains(out, "seq 3") {
			t.Errorf("verify after tampering: %d\n%s", code, out)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		_, dsn := pgtest.Schema(t)
		data := t.TempDir()
		url, _, stop := serveWith(t, data, "audit:\n  store: postgres\n  postgres:\n    dsn: '"+dsn+"'\n    writer_id: agent-x\n")
		ingest(t, url, 5)
		if n := listCount(t, url); n != 5 {
			t.Errorf("listed %d records", n)
		}
		stop()
		key := filepath.Join(data, "hmac.key")
		if code, out := verifyCLI(t, "--dsn", dsn, "--key", key); code != 0 || !strings.Contains(out, "agent-x") {
			t.Fatalf("verify: %d\n%s", code, out)
		}
		c, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		c.Exec(context.Background(), `SET session_replication_role = replica`)
		if _, err := c.Exec(context.Background(), `UPDATE audit_records SET outcome = 'denied' WHERE writer_id = 'agent-x' AND seq = 4`); err != nil {
			t.Fatal(err)
		}
		code, out := verifyCLI(t, "--dsn", dsn, "--key", key, "--json")
		var rep sqlReport
		json.Unmarshal([]byte(out), &rep)
		if code != 1 || rep.Intact || rep.Bad == nil || rep.Bad.Writer != "agent-x" || rep.Bad.Seq != 4 {
			t.Errorf("verify after tampering: %d\n%s", code, out)
		}
	})
	t.Run("null", func(t *testing.T) {
		data := t.TempDir()
		url, logs, stop := serveWith(t, data, "audit:\n  store: null\n")
		defer stop()
		ingest(t, url, 3)
		if n := listCount(t, url); n != 0 {
			t.Errorf("the null store listed %d records", n)
		}
		if !strings.Contains(logs.String(), "DISCARDED") {
			t.Errorf("no warning in the log:\n%s", logs)
		}
	})
	t.Run("replica unusable stops the start", func(t *testing.T) {
		data := t.TempDir()
		// A replica file that is a primary store.
		db := filepath.Join(t.TempDir(), "primary.db")
		url, _, stop := serveWith(t, t.TempDir(), "audit:\n  store: sqlite\n  sqlite:\n    path: "+db+"\n")
		ingest(t, url, 1)
		stop()
		cfg := filepath.Join(data, "v.yaml")
		os.WriteFile(cfg, []byte("audit:\n  replicate:\n    backend: sqlite\n    path: "+db+"\n"), 0o600)
		var logs bytes.Buffer
		err := serve(context.Background(), cfg, data, "127.0.0.1:0", nil, &bytes.Buffer{}, &logs)
		if err == nil || !strings.Contains(err.Error(), "is a primary store, not a replica") {
			t.Errorf("serve = %v", err)
		}
	})
}

func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
