package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRequestLogLines: with log_format json every request is one line
// with method, route, status, principal, duration and request id; no line
// holds a token, its hash, a query filter or a record value. With text the
// same fields appear as key=value.
func TestRequestLogLines(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			logs := &syncBuffer{}
			cfg := DefaultConfig()
			cfg.Auth = testAuthConfig()
			cfg.LogFormat = format
			cfg.LogLevel = "debug"
			srv, err := New(cfg, newTestStore(t), &Options{Logger: NewLogger(logs, cfg), LookupEnv: envOf(map[string]string{"ACME_INGEST": acmeIngest})})
			if err != nil {
				t.Fatal(err)
			}
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go srv.Serve(l)
			defer srv.Shutdown(t.Context())
			e := &testEnv{t: t, base: "http://" + l.Addr().String(), srv: srv, logs: logs, client: &http.Client{Timeout: 10 * time.Second}}
			secretValue := "the-secret-tool-argument-7f3a"
			e.ingest(ingestToken, `{"action":"tool.call","tenant_id":"acme","user_id":"alice","tool":{"name":"web_search","arguments":{"query":"`+secretValue+`"}},"outcome":{"status":"success","reason":"weather in Paris"}}`)
			e.do("GET", "/v1/audit?user_id=alice&tenant_id=acme", auditToken, nil, "X-Request-Id", "req-42")
			e.do("GET", "/v1/audit/1", adminToken, nil)
			e.do("GET", "/v1/audit", "wrong-token-0123456789", nil)
			e.do("POST", "/v1/audit/events", ingestToken, []byte(`[{"action":"tool.call","tool":{"arguments":{"q":"`+secretValue+`"}}}]`))
			srv.Shutdown(t.Context())
			out := logs.String()
			for _, s := range append(secrets, secretValue, "wrong-token-0123456789", "user_id=alice") {
				if strings.Contains(out, s) {
					t.Fatalf("the log contains %q:\n%s", s, out)
				}
			}
			var requests int
			sc := bufio.NewScanner(strings.NewReader(out))
			for sc.Scan() {
				line := sc.Text()
				if format == "json" {
					var m map[string]any
					if err := json.Unmarshal([]byte(line), &m); err != nil {
						t.Fatalf("not a JSON line: %q", line)
					}
					if m["msg"] != "request" {
						continue
					}
					requests++
					for _, k := range []string{"method", "route", "status", "principal", "duration", "id"} {
						if _, ok := m[k]; !ok {
							t.Errorf("request line without %s: %s", k, line)
						}
					}
					if m["route"] == "/v1/audit" && m["status"] == float64(200) && (m["id"] != "req-42" || m["principal"] != "compliance") {
						t.Errorf("query line: %s", line)
					}
					if m["route"] == "/v1/audit/:seq" && m["principal"] != "ops" {
						t.Errorf("get line: %s", line)
					}
				} else if strings.Contains(line, "msg=request") {
					requests++
					for _, k := range []string{"method=", "route=", "status=", "principal=", "duration=", "id="} {
						if !strings.Contains(line, k) {
							t.Errorf("request line without %s: %s", k, line)
						}
					}
				}
			}
			if requests != 5 {
				t.Fatalf("%d request lines for 5 requests:\n%s", requests, out)
			}
		})
	}
}

// TestServingLoggedOnce: the server itself no longer logs "serving" (the
// command does, once, with the URL).
func TestServingLoggedOnce(t *testing.T) {
	e := newTestServer(t, nil, nil)
	e.do("GET", "/healthz", "", nil)
	if strings.Contains(e.logs.String(), `"msg":"serving"`) {
		t.Fatalf("Server.Serve logs serving:\n%s", e.logs.String())
	}
}

// TestAccessLogLevels: by default a successful ingest logs its request
// line at info; with access_log quiet it logs at debug, while a refused
// ingest and a read still log at info.
func TestAccessLogLevels(t *testing.T) {
	for _, mode := range []string{"all", "quiet"} {
		t.Run(mode, func(t *testing.T) {
			logs := &syncBuffer{}
			cfg := DefaultConfig()
			cfg.Auth = testAuthConfig()
			cfg.LogFormat = "json"
			cfg.AccessLog = mode
			srv, err := New(cfg, newTestStore(t), &Options{Logger: NewLogger(logs, cfg), LookupEnv: envOf(map[string]string{"ACME_INGEST": acmeIngest})})
			if err != nil {
				t.Fatal(err)
			}
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go srv.Serve(l)
			defer srv.Shutdown(t.Context())
			e := &testEnv{t: t, base: "http://" + l.Addr().String(), srv: srv, logs: logs, client: &http.Client{Timeout: 10 * time.Second}}
			e.ingest(ingestToken, `{"action":"tool.call","outcome":{"status":"success"}}`)
			e.do("POST", "/v1/audit/events", ingestToken, []byte(`{"nope":1}`))
			e.do("GET", "/v1/audit", auditToken, nil)
			srv.Shutdown(t.Context())
			got := map[string]int{}
			sc := bufio.NewScanner(strings.NewReader(logs.String()))
			for sc.Scan() {
				var m map[string]any
				if json.Unmarshal(sc.Bytes(), &m) != nil || m["msg"] != "request" {
					continue
				}
				got[fmt.Sprintf("%v %v %v", m["method"], m["route"], m["status"])]++
			}
			wantIngest := 1
			if mode == "quiet" {
				wantIngest = 0
			}
			for line, want := range map[string]int{"POST /v1/audit/events 200": wantIngest, "POST /v1/audit/events 400": 1, "GET /v1/audit 200": 1} {
				if got[line] != want {
					t.Errorf("%q logged %d times at info, want %d (all: %v)", line, got[line], want, got)
				}
			}
		})
	}
}

// countingWriter counts the writes that reach it.
type countingWriter struct {
	syncBuffer
	writes atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.syncBuffer.Write(p)
}

// TestLogWriter: a line after a quiet spell is written at once; a burst
// of lines from concurrent writers reaches the underlying writer in far
// fewer writes, each line whole and in its writer's order; Close writes
// the rest, and a line after Close is written at once.
func TestLogWriter(t *testing.T) {
	out := &countingWriter{}
	lw := NewLogWriter(out)
	lw.Write([]byte("first\n"))
	if out.String() != "first\n" {
		t.Fatalf("a line after a quiet spell was not written at once: %q", out.String())
	}
	const writers, lines = 8, 2000
	done := make(chan struct{})
	for w := range writers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range lines {
				fmt.Fprintf(lw, "w%d line %d %s\n", w, i, strings.Repeat("x", i%100))
			}
		}()
	}
	for range writers {
		<-done
	}
	lw.Close()
	if w := out.writes.Load(); w > writers*lines/10 {
		t.Errorf("%d writes for %d lines: the burst was not batched", w, writers*lines)
	}
	lw.Write([]byte("after close\n"))
	next := make([]int, writers)
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "first" || line == "after close" {
			continue
		}
		var w, i int
		f := strings.Split(line, " ")
		_, err1 := fmt.Sscanf(f[0], "w%d", &w)
		_, err2 := fmt.Sscanf(f[min(2, len(f)-1)], "%d", &i)
		if len(f) != 4 || err1 != nil || err2 != nil || w < 0 || w >= writers || i != next[w] || len(f[3]) != i%100 {
			t.Fatalf("line %d %q: torn or out of order", n, line)
		}
		next[w]++
	}
	if s := out.String(); n != writers*lines+2 || !strings.HasSuffix(s, "after close\n") {
		t.Fatalf("%d lines, want %d; ends %q", n, writers*lines+2, s[max(0, len(s)-40):])
	}
}
