package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/engine"
)

// testEnv is a real Server on a loopback port in front of a test store.
type testEnv struct {
	t      testing.TB
	base   string
	srv    *Server
	store  Store
	logs   *syncBuffer
	client *http.Client
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// secrets are strings no log line may contain: every token, their hashes
// and values that only appear in record contents or query filters.
var secrets = []string{adminToken, auditToken, acmeToken, ingestToken, acmeIngest, HashToken(adminToken), "weather in Paris", "alice"}

// newTestServer serves store (a fresh newTestStore when nil) with the test
// principals of testAuthConfig; mod may change the config first. At the
// end of the test it shuts the server down and checks the logs for
// secrets.
func newTestServer(t testing.TB, store Store, mod func(*ServerConfig)) *testEnv {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Auth = testAuthConfig()
	if mod != nil {
		mod(cfg)
	}
	if store == nil {
		// As vellum serve opens it: the engine enforces the record size.
		store = newTestStoreOpts(t, func(o *engine.Options) { o.MaxRecordSize = int(cfg.Audit.MaxRecordSize) })
	}
	logs := &syncBuffer{}
	srv, err := New(cfg, store, &Options{
		Logger:    slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		LookupEnv: envOf(map[string]string{"ACME_INGEST": acmeIngest}),
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	e := &testEnv{t: t, base: "http://" + l.Addr().String(), srv: srv, store: store, logs: logs,
		client: &http.Client{Timeout: 30 * time.Second}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		out := logs.String()
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("the server log contains %q:\n%s", s, out)
			}
		}
	})
	return e
}

// do sends a request and returns the status and body. token "" sends no
// Authorization header.
func (e *testEnv) do(method, path, token string, body []byte, header ...string) (int, []byte, http.Header) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

// detail returns the detail of an error body, failing the test when the
// body is not {"detail": "..."} with a non-empty detail.
func detail(t testing.TB, body []byte) string {
	t.Helper()
	var eb map[string]any
	if err := json.Unmarshal(body, &eb); err != nil {
		t.Fatalf("error body is not JSON: %q", body)
	}
	d, ok := eb["detail"].(string)
	if !ok || d == "" || len(eb) != 1 {
		t.Fatalf("error body is not {\"detail\": ...}: %s", body)
	}
	return d
}

// ingest posts events (joined as a JSON array) and returns their seqs.
func (e *testEnv) ingest(token string, events ...string) []uint64 {
	e.t.Helper()
	status, body, _ := e.do("POST", "/v1/audit/events", token, []byte("["+strings.Join(events, ",")+"]"))
	if status != http.StatusOK {
		e.t.Fatalf("ingest: %d %s", status, body)
	}
	var r struct{ Seqs []uint64 }
	if err := json.Unmarshal(body, &r); err != nil {
		e.t.Fatal(err)
	}
	if len(r.Seqs) != len(events) {
		e.t.Fatalf("ingest: %d seqs for %d events", len(r.Seqs), len(events))
	}
	return r.Seqs
}

type listResult struct {
	Records    []vellum.Record `json:"records"`
	NextCursor string          `json:"next_cursor"`
}

// list queries GET /v1/audit?raw and fails the test unless it answers 200.
func (e *testEnv) list(token, raw string) listResult {
	e.t.Helper()
	status, body, _ := e.do("GET", "/v1/audit?"+raw, token, nil)
	if status != http.StatusOK {
		e.t.Fatalf("GET /v1/audit?%s: %d %s", raw, status, body)
	}
	var r listResult
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		e.t.Fatalf("list body: %v\n%s", err, body)
	}
	if r.Records == nil {
		e.t.Fatalf("records is null, want []: %s", body)
	}
	return r
}

// event makes an event JSON object from field/value pairs; "status" sets
// outcome.status (default success) and "tool"/"model" set their names.
func event(kv ...string) string {
	m := map[string]any{"action": "tool.call"}
	out := map[string]any{"status": "success"}
	for i := 0; i+1 < len(kv); i += 2 {
		switch k, v := kv[i], kv[i+1]; k {
		case "status":
			out["status"] = v
		case "tool":
			m["tool"] = map[string]any{"name": v}
		case "model":
			m["model"] = map[string]any{"name": v}
		default:
			m[k] = v
		}
	}
	m["outcome"] = out
	b, _ := json.Marshal(m)
	return string(b)
}

func seqsOf(recs []vellum.Record) []uint64 {
	s := make([]uint64, len(recs))
	for i := range recs {
		s[i] = recs[i].Seq
	}
	return s
}

func fmtSeqs(s []uint64) string {
	if len(s) > 20 {
		return fmt.Sprintf("%v ... (%d)", s[:20], len(s))
	}
	return fmt.Sprint(s)
}
