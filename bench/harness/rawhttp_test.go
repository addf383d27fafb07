package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestRawPoster: the load generator's client sends the method, path,
// token, content type and body as net/http's server reads them, reads
// answers framed by Content-Length, by chunks, and by the end of the
// connection, keeps one connection alive across requests, and dials again
// after "Connection: close".
func TestRawPoster(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/v1/audit/events" || r.Header.Get("Authorization") != "Bearer tok" ||
			r.Header.Get("Content-Type") != "application/json" || r.ContentLength != int64(len(body)) {
			http.Error(w, "bad request line or headers", http.StatusTeapot)
			return
		}
		answer := fmt.Sprintf(`{"seqs":[%s]}`, body)
		switch string(body) {
		case "chunked":
			w.Write([]byte(answer[:5]))
			w.(http.Flusher).Flush() // forces chunked encoding
			w.Write([]byte(answer[5:]))
		case "close":
			w.Header().Set("Connection", "close")
			w.Write([]byte(answer))
		default:
			w.Header().Set("Content-Length", fmt.Sprint(len(answer)))
			w.Write([]byte(answer))
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	p, err := newRawPoster(srv.URL, "/v1/audit/events", "tok")
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	for i, tc := range []struct {
		body  string
		conns int64 // connections opened so far, after this request
	}{
		{"1", 1}, {"2,3", 1}, {"chunked", 1}, {strings.Repeat("9", 100_000), 1}, {"close", 1}, {"4", 2}, {"5", 2},
	} {
		status, got, err := p.post([]byte(tc.body))
		if err != nil || status != http.StatusOK {
			t.Fatalf("request %d: %d %v %.100s", i, status, err, got)
		}
		if want := `{"seqs":[` + tc.body + `]}`; string(got) != want {
			t.Fatalf("request %d: answer %.100q, want %.100q", i, got, want)
		}
		if n := conns.Load(); n != tc.conns {
			t.Fatalf("request %d: %d connections opened, want %d", i, n, tc.conns)
		}
	}
}
