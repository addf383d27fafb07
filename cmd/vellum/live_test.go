package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for the server goroutine and the
// test to share.
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

// live is `vellum serve` running in-process on a loopback port.
type live struct {
	t      *testing.T
	url    string
	data   string
	stdout *lockedBuffer
	stderr *lockedBuffer
	cancel context.CancelFunc
	done   chan error
}

// startLive runs serve on data with cfgPath ("" for none) and stops it at
// the end of the test. Set VELLUM_ADMIN_TOKEN with t.Setenv first for a
// quick-start admin token.
func startLive(t *testing.T, cfgPath, data string) *live {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &live{t: t, data: data, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() { l.done <- serve(ctx, cfgPath, data, "127.0.0.1:0", ready, l.stdout, l.stderr) }()
	select {
	case addr := <-ready:
		l.url = "http://" + addr
	case err := <-l.done:
		cancel()
		t.Fatalf("serve did not start: %v\n%s", err, l.stderr.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("serve did not start in 30 s")
	}
	t.Cleanup(func() { l.stop() })
	return l
}

// stop ends the server once and returns serve's error.
func (l *live) stop() error {
	if l.cancel == nil {
		return nil
	}
	l.cancel()
	l.cancel = nil
	return <-l.done
}

// call sends a request with a bearer token and returns status and body.
func (l *live) call(method, path, token, body string) (int, []byte) {
	l.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, l.url+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		l.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// ingest posts events and returns their seqs.
func (l *live) ingest(token string, events ...string) []uint64 {
	l.t.Helper()
	status, body := l.call("POST", "/v1/audit/events", token, "["+strings.Join(events, ",")+"]")
	if status != 200 {
		l.t.Fatalf("ingest: %d %s", status, body)
	}
	var r struct{ Seqs []uint64 }
	json.Unmarshal(body, &r)
	return r.Seqs
}
