package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/layout"
)

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestKeygenVerifyExport is the operator's and the auditor's path end to
// end: keygen, a store signed with the generated key, verify with the HMAC
// key and with only the public key, export an evidence bundle, verify it,
// and see tampering turn exit 0 into exit 1.
func TestKeygenVerifyExport(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys")
	if code, out, errs := runCmd("keygen", "--out", keys, "--name", "acme-audit"); code != 0 {
		t.Fatalf("keygen: %d %s %s", code, out, errs)
	}
	pub := filepath.Join(keys, checkpoint.PublicKeyFile)
	if fi, err := os.Stat(filepath.Join(keys, checkpoint.PrivateKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key: %v", err)
	}
	pubText, _ := os.ReadFile(pub)
	if !strings.HasPrefix(string(pubText), "acme-audit+") {
		t.Fatalf("public key file %q", pubText)
	}
	hk, err := chain.LoadKeyFile(filepath.Join(keys, HMACKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := checkpoint.LoadSigner(filepath.Join(keys, checkpoint.PrivateKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	e, err := engine.Open(data, &engine.Options{Keys: chain.NewKeyring(hk), Signer: signer, SegmentSize: 16 << 10,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	var recs []vellum.Record
	for i := 0; i < 200; i++ {
		recs = append(recs, vellum.Record{Action: "tool.call", TenantID: "acme", UserID: "alice",
			Tool:    vellum.Tool{Name: "web_search", Arguments: json.RawMessage(`{"q":"` + strings.Repeat("w", i%50) + `"}`)},
			Outcome: vellum.Outcome{Status: vellum.StatusSuccess}})
	}
	if _, err := e.Append(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	hmacKey := filepath.Join(keys, HMACKeyFile)

	if code, out, errs := runCmd("verify", "--data", data, "--key", hmacKey, "--pubkey", pub); code != 0 || !strings.HasPrefix(out, "INTACT") {
		t.Fatalf("verify: %d\n%s%s", code, out, errs)
	}
	code, out, _ := runCmd("verify", "--data", data, "--pubkey", pub, "--json")
	var rep struct {
		Intact  bool `json:"intact"`
		Records int  `json:"records"`
		Tree    struct {
			Size int `json:"size"`
		} `json:"tree"`
		Checks []struct {
			Check, Status string
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || !rep.Intact || rep.Records != 200 || rep.Tree.Size != 200 {
		t.Fatalf("auditor verify --json: %d %v %s", code, err, out)
	}
	for _, c := range rep.Checks {
		if (c.Check == "mac") != (c.Status == "not checked") && c.Check != "consistency" {
			t.Fatalf("auditor verify --json: %s is %s\n%s", c.Check, c.Status, out)
		}
	}

	bundle := filepath.Join(t.TempDir(), "evidence.jsonl")
	if code, _, errs := runCmd("export", "--data", data, "--proof", "--pubkey", pub, "--from", "10", "--to", "20", "--out", bundle); code != 0 {
		t.Fatalf("export: %d %s", code, errs)
	}
	if code, out, errs := runCmd("verify", "--bundle", bundle, "--pubkey", pub); code != 0 || !strings.Contains(out, "11 records") {
		t.Fatalf("verify bundle: %d\n%s%s", code, out, errs)
	}
	// Another key's public key does not verify the store's checkpoint:
	// export refuses rather than bundle a checkpoint nobody signed.
	other := filepath.Join(t.TempDir(), "other")
	if code, _, errs := runCmd("keygen", "--out", other); code != 0 {
		t.Fatalf("keygen: %d %s", code, errs)
	}
	if code, _, errs := runCmd("export", "--data", data, "--proof", "--pubkey", filepath.Join(other, checkpoint.PublicKeyFile),
		"--out", filepath.Join(t.TempDir(), "x.jsonl")); code == 0 || !strings.Contains(errs, "signature") {
		t.Fatalf("export with another key's public key: %d %s", code, errs)
	}
	if code, out, _ := runCmd("export", "--data", data, "--from", "5", "--to", "6"); code != 0 || strings.Count(out, "\n") != 2 {
		t.Fatalf("plain export: %d %q", code, out)
	}

	// Tampering: one byte of a sealed segment.
	seg := layout.SegmentPath(data, 1)
	b, _ := os.ReadFile(seg)
	b[300] ^= 1
	os.Chmod(seg, 0o644)
	os.WriteFile(seg, b, 0o644)
	if code, out, _ := runCmd("verify", "--data", data, "--key", hmacKey, "--pubkey", pub); code != 1 || !strings.Contains(out, "NOT INTACT") || !strings.Contains(out, "seg-00000000000000000001.vseg offset") {
		t.Fatalf("tampered store: %d\n%s", code, out)
	}
	bb, _ := os.ReadFile(bundle)
	bb = bytes.Replace(bb, []byte(`"alice"`), []byte(`"mallory"`), 1)
	os.WriteFile(bundle, bb, 0o644)
	if code, out, _ := runCmd("verify", "--bundle", bundle, "--pubkey", pub); code != 1 || !strings.Contains(out, "NOT INTACT") {
		t.Fatalf("tampered bundle: %d\n%s", code, out)
	}

	for _, args := range [][]string{
		{"verify"},
		{"verify", "--data", data, "--bundle", bundle},
		{"verify", "--bundle", bundle},
		{"verify", "--data", filepath.Join(data, "missing")},
		{"verify", "--data", data, "--checkpoint", bundle},
	} {
		if code, _, _ := runCmd(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
