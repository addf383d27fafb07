package main

import (
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	tdproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/vellumlog/vellum/checkpoint"
)

// TestConsistencyCommand: vellum consistency prints the proof (from the
// server and offline, the same), which transparency-dev's verifier
// accepts, and with --old/--new checks two signed checkpoints.
func TestConsistencyCommand(t *testing.T) {
	data := t.TempDir()
	t.Setenv("VELLUM_ADMIN_TOKEN", testToken)
	l := startLive(t, "", data)
	pub := filepath.Join(data, checkpoint.PublicKeyFile)
	sign := func() (string, checkpoint.Signed) {
		t.Helper()
		f := filepath.Join(t.TempDir(), "cp.txt")
		if code, _, errs := runCmd("checkpoint", "--server", l.url, "--token", testToken, "--out", f); code != 0 {
			t.Fatal(errs)
		}
		s, err := checkpoint.Open(mustRead(t, f), mustVerifier(t, pub))
		if err != nil {
			t.Fatal(err)
		}
		return f, s
	}
	var evs []string
	for i := 1; i <= 13; i++ {
		evs = append(evs, acmeEvent(i))
	}
	l.ingest(testToken, evs...)
	oldFile, oldCP := sign()
	l.ingest(testToken, evs[:7]...)
	l.ingest(testToken, acmeEvent(100), acmeEvent(101), acmeEvent(102))
	newFile, newCP := sign()

	args := []string{"consistency", "--first", "13", "--second", "16"}
	code, fromServer, errs := runCmd(append(args, "--server", l.url, "--token", testToken)...)
	if code != 0 {
		t.Fatal(errs)
	}
	var p consistencyJSON
	if err := json.Unmarshal([]byte(fromServer), &p); err != nil || p.First != 13 || p.Second != 16 {
		t.Fatalf("%s %v", fromServer, err)
	}
	var hs [][]byte
	for _, h := range p.Hashes {
		b, _ := base64.StdEncoding.DecodeString(h)
		hs = append(hs, b)
	}
	if err := tdproof.VerifyConsistency(rfc6962.DefaultHasher, oldCP.Size, newCP.Size, hs, oldCP.Root[:], newCP.Root[:]); err != nil {
		t.Fatalf("sizes %d..%d: %v", oldCP.Size, newCP.Size, err)
	}
	if err := l.stop(); err != nil {
		t.Fatal(err)
	}
	code, offline, errs := runCmd(append(args, "--data", data)...)
	if code != 0 || offline != fromServer {
		t.Fatalf("offline: %d %s\n%s\nserver: %s", code, errs, offline, fromServer)
	}

	// Checking two signed checkpoints, offline.
	code, out, errs := runCmd("consistency", "--pubkey", pub, "--old", oldFile, "--new", newFile, "--data", data)
	if code != 0 || !strings.HasPrefix(out, "CONSISTENT: the checkpoint of 13 records is a prefix of the checkpoint of 16 records") {
		t.Fatalf("%d %s%s", code, out, errs)
	}
	// Without --new: the latest checkpoint of the directory (signed at
	// Close, covering the same or more).
	if code, out, errs := runCmd("consistency", "--pubkey", pub, "--old", oldFile, "--data", data); code != 0 || !strings.HasPrefix(out, "CONSISTENT") {
		t.Fatalf("%d %s%s", code, out, errs)
	}
	// A forged "old" checkpoint (another key) does not verify.
	other := filepath.Join(t.TempDir(), "keys")
	runCmd("keygen", "--out", other)
	if code, out, _ := runCmd("consistency", "--pubkey", filepath.Join(other, checkpoint.PublicKeyFile), "--old", oldFile, "--new", newFile, "--data", data); code != 1 || !strings.Contains(out, "NOT VERIFIED") {
		t.Fatalf("other key: %d %s", code, out)
	}
	// Swapped: the newer is not a prefix of the older.
	if code, out, _ := runCmd("consistency", "--pubkey", pub, "--old", newFile, "--new", oldFile, "--data", data); code != 1 || !strings.Contains(out, "INCONSISTENT") {
		t.Fatalf("swapped: %d %s", code, out)
	}
	for _, bad := range [][]string{
		{"consistency", "--first", "1"},
		{"consistency", "--first", "1", "--second", "2", "--old", oldFile},
		{"consistency", "--first", "1", "--second", "99", "--data", data},
		{"consistency", "--old", oldFile, "--data", data},
	} {
		if code, _, _ := runCmd(bad...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
}
