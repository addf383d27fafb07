package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/server"
)

const testToken = "test-admin-token-0123456789abcdef"

// buildVellum compiles the command once per test binary run.
var buildVellum = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "vellum-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "vellum")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// startServe runs `vellum serve` on a free loopback port and returns the
// process and its base URL.
func startServe(t *testing.T, bin, data string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--data", data, "--addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "VELLUM_ADMIN_TOKEN="+testToken)
	stderr, _ := cmd.StderrPipe()
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`msg=serving addr=(http://[0-9.:]+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		return cmd, a
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("vellum serve did not start")
	}
	return nil, ""
}

func post(url string, body []byte) (*http.Response, error) {
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/audit/events", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	return http.DefaultClient.Do(req)
}

// TestKillNineDuringIngest kills `vellum serve` with SIGKILL while several
// clients ingest, restarts it, and checks that every event the server
// acknowledged is there, under its seq, and that the chain verifies.
func TestKillNineDuringIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := buildVellum()
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	cmd, url := startServe(t, bin, data)

	var mu sync.Mutex
	acked := map[string]uint64{} // event_id -> seq
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 400; i++ { // bounded: at most 3,200 requests
				select {
				case <-stop:
					return
				default:
				}
				ids := []string{fmt.Sprintf("w%d-%d-a", w, i), fmt.Sprintf("w%d-%d-b", w, i)}
				var evs []map[string]any
				for _, id := range ids {
					evs = append(evs, map[string]any{"event_id": id, "tenant_id": "acme", "user_id": "alice", "action": "tool.call",
						"tool": map[string]any{"name": "web_search", "arguments": map[string]any{"query": id}}, "outcome": map[string]any{"status": "success"}})
				}
				body, _ := json.Marshal(evs)
				resp, err := post(url, body)
				if err != nil {
					return // the server is gone
				}
				var out struct {
					Seqs []uint64 `json:"seqs"`
				}
				err = json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || len(out.Seqs) != 2 {
					continue // not acknowledged
				}
				mu.Lock()
				for k, id := range ids {
					acked[id] = out.Seqs[k]
				}
				mu.Unlock()
			}
		}()
	}
	// Let ingest run, then kill -9 in the middle of it.
	for {
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 {
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	close(stop)
	wg.Wait()
	t.Logf("%d events acknowledged before SIGKILL", len(acked))

	// Restart: recovery runs, then every acknowledged event must be served.
	cmd, url = startServe(t, bin, data)
	for id, seq := range acked {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/v1/audit/%d", url, seq), nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			EventID string `json:"event_id"`
		}
		json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if resp.StatusCode != 200 || r.EventID != id {
			t.Fatalf("acknowledged event %s (seq %d): status %d, event_id %q", id, seq, resp.StatusCode, r.EventID)
		}
	}
	// A retry of an acknowledged event after the crash is stored once.
	for id, seq := range acked {
		body := []byte(`[{"event_id":"` + id + `","tenant_id":"acme","action":"tool.call","outcome":{"status":"success"}}]`)
		resp, err := post(url, body)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), fmt.Sprintf("[%d]", seq)) {
			t.Fatalf("retry of %s after restart: %s, want seq %d", id, b, seq)
		}
		break
	}
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()

	// The whole chain verifies, every record's MAC included.
	key, err := chain.LoadKeyFile(filepath.Join(data, "hmac.key"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.Open(data, &engine.Options{Keys: chain.NewKeyring(key), VerifyOnOpen: true})
	if err != nil {
		t.Fatalf("reopen with full verification: %v", err)
	}
	defer e.Close()
	prev := chain.Genesis(e.StoreID(), key.ID())
	h := key.NewHasher()
	for r, err := range e.Scan(context.Background(), 1, 0) {
		if err != nil {
			t.Fatal(err)
		}
		enc, _ := r.MarshalBinary()
		if r.PrevMAC != prev {
			t.Fatalf("seq %d does not link to its predecessor", r.Seq)
		}
		if _, err := h.Check(r.Seq, prev, enc, r.MAC); err != nil {
			t.Fatal(err)
		}
		prev = r.MAC
	}
}

// TestServeStopsCleanly runs serve in-process, ingests, and stops it the
// way SIGTERM does: by ending its context. The store must be closed (the
// lock released) and hold the event.
func TestServeStopsCleanly(t *testing.T) {
	data := t.TempDir()
	t.Setenv("VELLUM_ADMIN_TOKEN", testToken)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() { done <- serve(ctx, "", data, "127.0.0.1:0", ready, &out, io.Discard) }()
	addr := <-ready
	resp, err := post("http://"+addr, []byte(`{"tenant_id":"acme","action":"request.start","outcome":{"status":"success"}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("ingest status %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	key, _ := chain.LoadKeyFile(filepath.Join(data, "hmac.key"))
	e, err := engine.Open(data, &engine.Options{Keys: chain.NewKeyring(key)})
	if err != nil {
		t.Fatalf("the store is still locked or broken after stop: %v", err)
	}
	defer e.Close()
	if e.LastSeq() != 1 {
		t.Fatalf("LastSeq = %d", e.LastSeq())
	}
	fi, err := os.Stat(filepath.Join(data, "hmac.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("hmac.key: %v mode %v", err, fi.Mode())
	}
}

// TestFirstRunPrintsAdminToken checks the no-config start: a token is
// printed once, only its hash is stored, and it works on the next run.
func TestFirstRunPrintsAdminToken(t *testing.T) {
	data := t.TempDir()
	t.Setenv("VELLUM_ADMIN_TOKEN", "")
	t.Setenv("VELLUM_INGEST_TOKEN", "")
	for run := 0; run < 2; run++ {
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan string, 1)
		done := make(chan error, 1)
		var out bytes.Buffer
		go func() { done <- serve(ctx, "", data, "127.0.0.1:0", ready, &out, io.Discard) }()
		<-ready
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		tok := regexp.MustCompile(`vlm_[A-Za-z0-9_-]+`).FindString(out.String())
		if run == 0 && tok == "" {
			t.Fatalf("first run printed no token:\n%s", out.String())
		}
		if run == 1 && tok != "" {
			t.Fatal("the token was printed again on the second run")
		}
		if run == 0 {
			b, _ := os.ReadFile(filepath.Join(data, server.TokenFileName))
			if strings.Contains(string(b), tok) || !strings.Contains(string(b), server.HashToken(tok)) {
				t.Fatalf("%s holds %q, want only the SHA-256 hex", server.TokenFileName, b)
			}
		}
	}
}
