package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/engine"
)

// oldStore writes a store whose records were received 200 days ago down to
// 100 days ago (one an hour... every 5 days), with the keys in the data
// directory as vellum serve keeps them.
func oldStore(t *testing.T) (data string, hk *chain.Key) {
	t.Helper()
	data = t.TempDir()
	if code, _, errs := runCmd("keygen", "--out", data); code != 0 {
		t.Fatal(errs)
	}
	hk, err := chain.LoadKeyFile(filepath.Join(data, HMACKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := checkpoint.LoadSigner(filepath.Join(data, checkpoint.PrivateKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-200 * 24 * time.Hour)
	var at atomic.Int64 // the fake clock; the engine's tree goroutine reads it too
	at.Store(start.UnixNano())
	e, err := engine.Open(data, &engine.Options{Keys: chain.NewKeyring(hk), Signer: signer, SegmentSize: 200, Now: func() time.Time { return time.Unix(0, at.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		at.Store(start.Add(time.Duration(i) * 5 * 24 * time.Hour).UnixNano())
		r := vellum.Record{TenantID: "acme", Action: "tool.call", Outcome: vellum.Outcome{Status: vellum.StatusSuccess}}
		if _, err := e.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return data, hk
}

func TestPurgeCommand(t *testing.T) {
	data, hk := oldStore(t)
	// A running store holds the lock: the command refuses and says what to do.
	e, err := engine.Open(data, &engine.Options{Keys: chain.NewKeyring(hk)})
	if err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCmd("purge", "--data", data, "--max-age", "150d", "--dry-run")
	e.Close()
	if code != 2 || !strings.Contains(errs, "stop the server first") {
		t.Fatalf("locked store: %d %s", code, errs)
	}
	// Below the floor: refused, naming the setting.
	code, _, errs = runCmd("purge", "--data", data, "--max-age", "30d", "--dry-run")
	if code != 2 || !strings.Contains(errs, "audit.retention.max_age") || !strings.Contains(errs, "audit.retention.floor") {
		t.Fatalf("below the floor: %d %s", code, errs)
	}
	// Dry run: lists, changes nothing.
	code, out, errs := runCmd("purge", "--data", data, "--max-age", "150d", "--dry-run")
	if code != 0 || !strings.Contains(out, "would purge segment 1: seq 1..1") || !strings.Contains(out, "rule audit.retention.max_age") ||
		!strings.Contains(out, "kept from segment") {
		t.Fatalf("dry run: %d %s %s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(data, "segments", "seg-00000000000000000001.vseg")); err != nil {
		t.Fatal("dry run removed a segment")
	}
	// A hold on acme keeps everything; released, the purge goes ahead.
	code, out, errs = runCmd("holds", "set", "--data", data, "--tenant", "acme", "--reason", "case 17", "--by", "counsel")
	var h struct{ ID string }
	if code != 0 || json.Unmarshal([]byte(out), &h) != nil || h.ID == "" {
		t.Fatalf("holds set: %d %s %s", code, out, errs)
	}
	code, out, _ = runCmd("purge", "--data", data, "--max-age", "150d")
	if code != 0 || !strings.Contains(out, "nothing to purge") || !strings.Contains(out, "legal hold "+h.ID) {
		t.Fatalf("held: %d %s", code, out)
	}
	if code, out, errs = runCmd("holds", "release", "--data", data, "--id", h.ID, "--by", "counsel"); code != 0 {
		t.Fatalf("release: %s %s", out, errs)
	}
	code, out, errs = runCmd("purge", "--data", data, "--max-age", "150d", "--json")
	var res engine.PurgeResult
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || len(res.Segments) < 5 || res.AnchorSeq == 0 {
		t.Fatalf("purge: %d %s %s", code, out, errs)
	}
	// The remaining store verifies, with and without the HMAC key, and
	// names the purged range.
	for _, args := range [][]string{
		{"verify", "--data", data, "--pubkey", filepath.Join(data, checkpoint.PublicKeyFile)},
		{"verify", "--data", data, "--key", filepath.Join(data, HMACKeyFile), "--pubkey", filepath.Join(data, checkpoint.PublicKeyFile)},
	} {
		code, out, errs = runCmd(args...)
		if code != 0 || !strings.Contains(out, "INTACT") || !strings.Contains(out, "purged: segments 1-") {
			t.Fatalf("%v: %d %s %s", args, code, out, errs)
		}
	}
	// A segment deleted by hand is detected.
	os.Remove(filepath.Join(data, "segments", "seg-00000000000000000012.vseg"))
	code, out, _ = runCmd("verify", "--data", data, "--pubkey", filepath.Join(data, checkpoint.PublicKeyFile))
	if code != 1 || !strings.Contains(out, "missing") {
		t.Fatalf("segment removed by hand: %d %s", code, out)
	}
}

func TestServeRefusesRetentionBelowFloor(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "vellum.yaml")
	os.WriteFile(cfg, []byte("data_dir: "+data+"\naddr: 127.0.0.1:0\naudit:\n  retention:\n    max_age: 30d\n"), 0o600)
	code, _, errs := runCmd("serve", "--config", cfg)
	if code == 0 || !strings.Contains(errs, "audit.retention.max_age") || !strings.Contains(errs, "allow_below_floor") {
		t.Fatalf("%d %s", code, errs)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("the data directory was created: %v", err)
	}
}

// TestSQLiteRetention: with audit.store sqlite the server applies the same
// horizon through the store's guarded delete, after a retention.purge
// record, and the chain that remains verifies.
func TestSQLiteRetention(t *testing.T) {
	data := t.TempDir()
	db := filepath.Join(data, "audit.db")
	url, logs, stop := serveWith(t, data, "audit:\n  store: sqlite\n  sqlite:\n    path: "+db+
		"\n  retention:\n    max_age: 2s\n    allow_below_floor: true\n    purge_every: 1s\n")
	ingest(t, url, 5)
	deadline := time.Now().Add(20 * time.Second)
	toolCalls := func() int {
		var page struct {
			Records []json.RawMessage `json:"records"`
		}
		if code := getJSON(t, url+"/v1/audit?action=tool.call&limit=1000", &page); code != 200 {
			t.Fatalf("list: %d", code)
		}
		return len(page.Records)
	}
	for toolCalls() > 0 {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("records not purged:\n%s", logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	stop()
	if !strings.Contains(logs.String(), "purged expired records") {
		t.Fatalf("no purge logged:\n%s", logs.String())
	}
	if code, out := verifyCLI(t, "--sqlite", db, "--key", filepath.Join(data, "hmac.key")); code != 0 {
		t.Fatalf("verify after the purge: %d\n%s", code, out)
	}
}
