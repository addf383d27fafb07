package main

import (
	"encoding/csv"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/export"
	"github.com/vellumlog/vellum/server"
)

func acmeEvent(i int) string {
	return fmt.Sprintf(`{"event_id":"e-%d","time":"2026-11-27T10:00:%02dZ","tenant_id":"acme","user_id":"alice","action":"tool.call","tool":{"name":"web_search","arguments":{"q":  "x %d"}},"outcome":{"status":"success"}}`, i, i%60, i)
}

// TestQueryAllLimitOneEnds: vellum query --all --limit 1 used to page
// forever, each page's audit.query record becoming the next page.
func TestQueryAllLimitOneEnds(t *testing.T) {
	t.Setenv("VELLUM_ADMIN_TOKEN", testToken)
	l := startLive(t, "", t.TempDir())
	l.ingest(testToken, acmeEvent(1), acmeEvent(2), acmeEvent(3))
	type result struct {
		code     int
		out, err string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errs := runCmd("query", "--server", l.url, "--token", testToken, "--tenant_id", "acme", "--limit", "1", "--all", "--json")
		done <- result{code, out, errs}
	}()
	select {
	case r := <-done:
		if r.code != 0 || strings.Count(r.out, "\n") != 3 {
			t.Fatalf("exit %d, %d lines, want the 3 records:\n%s%s", r.code, strings.Count(r.out, "\n"), r.out, r.err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("vellum query --all --limit 1 did not end")
	}
}

// TestQueryErrorPrintsNoTable: an error is not preceded by an empty table
// header.
func TestQueryErrorPrintsNoTable(t *testing.T) {
	t.Setenv("VELLUM_ADMIN_TOKEN", testToken)
	l := startLive(t, "", t.TempDir())
	code, out, errs := runCmd("query", "--server", l.url, "--token", "not-the-token-0123456789")
	if code != 1 || out != "" || !strings.Contains(errs, "401") || !strings.Contains(errs, "unknown token") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// TestFailedFirstRunLeavesNothing: with the port busy, serve fails before
// it creates the data directory, a key or a token, and prints no token.
func TestFailedFirstRunLeavesNothing(t *testing.T) {
	t.Setenv("VELLUM_ADMIN_TOKEN", "")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	data := filepath.Join(t.TempDir(), "data")
	var out, errs lockedBuffer
	err = serve(t.Context(), "", data, busy.Addr().String(), nil, &out, &errs)
	if err == nil || !strings.Contains(err.Error(), "listen on") {
		t.Fatalf("serve on a busy port: %v", err)
	}
	if strings.Contains(out.String()+errs.String(), "vlm_") || strings.Contains(out.String(), "First run") {
		t.Fatalf("a token was printed:\n%s%s", out.String(), errs.String())
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("the data directory was created: %v", err)
	}
}

// TestConfigCheckedBeforeDisk: a bad config (an unset token variable, a
// bad redaction rule, a missing key file) fails before anything exists.
func TestConfigCheckedBeforeDisk(t *testing.T) {
	for _, tt := range []struct{ name, yaml, want string }{
		{"unset token_env", "auth:\n  tokens:\n    - {name: a, role: auditor, token_env: VELLUM_TEST_UNSET_TOKEN}\n", "VELLUM_TEST_UNSET_TOKEN is not set"},
		{"bad redaction rule", "audit:\n  redaction:\n    rules:\n      - {name: BAD, pattern: '(('}\n", "redaction"},
		{"missing signing key", "audit:\n  signing_key_file: /nonexistent/signing.key\n", "audit.signing_key_file"},
		{"missing hmac key", "audit:\n  hmac_key_file: /nonexistent/hmac.key\n", "audit.hmac_key_file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "vellum.yaml")
			os.WriteFile(cfg, []byte(tt.yaml), 0o644)
			data := filepath.Join(dir, "data")
			err := serve(t.Context(), cfg, data, "127.0.0.1:0", nil, &lockedBuffer{}, &lockedBuffer{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Fatalf("the data directory was created before the config was checked")
			}
		})
	}
}

// TestExampleConfigStarts: vellum.example.yaml starts as shipped, and its
// documented example token reads the log.
func TestExampleConfigStarts(t *testing.T) {
	t.Setenv("VELLUM_ADMIN_TOKEN", "")
	t.Setenv("VELLUM_ACME_AUDITOR_TOKEN", "")
	t.Setenv("VELLUM_SUPPORT_BOT_TOKEN", "")
	l := startLive(t, "../../vellum.example.yaml", t.TempDir())
	if status, body := l.call("GET", "/v1/audit?limit=1", "example-auditor-token-0123456789", ""); status != 200 {
		t.Fatalf("the example's auditor token: %d %s", status, body)
	}
	if !strings.Contains(l.stderr.String(), "optional principal is disabled") {
		t.Fatalf("the disabled optional principals are not logged:\n%s", l.stderr.String())
	}
	if strings.Contains(l.stdout.String(), "vlm_") {
		t.Fatal("a first-run token was printed although the config has tokens")
	}
}

// TestFirstRunOnlyOnEmptyStore: the first-run banner appears on an empty
// store; a store with records that has lost every token gets a new one
// without "First run".
func TestFirstRunOnlyOnEmptyStore(t *testing.T) {
	data := t.TempDir()
	t.Setenv("VELLUM_ADMIN_TOKEN", testToken)
	l := startLive(t, "", data)
	l.ingest(testToken, acmeEvent(1))
	if err := l.stop(); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VELLUM_ADMIN_TOKEN", "")
	l = startLive(t, "", data)
	out := l.stdout.String()
	tok := regexp.MustCompile(`vlm_[A-Za-z0-9_-]+`).FindString(out)
	if strings.Contains(out, "First run") || tok == "" || !strings.Contains(out, "No API token is configured") {
		t.Fatalf("stdout:\n%s", out)
	}
	if status, body := l.call("GET", "/v1/audit/1", tok, ""); status != 200 {
		t.Fatalf("the printed token: %d %s", status, body)
	}
}

// TestTokenCommands: create, list and revoke offline; a running server
// picks the changes up.
func TestTokenCommands(t *testing.T) {
	data := t.TempDir()
	t.Setenv("VELLUM_ADMIN_TOKEN", testToken)
	l := startLive(t, "", data)
	code, out, errs := runCmd("token", "create", "--data", data, "--name", "auditor2", "--role", "auditor", "--tenants", "acme")
	tok := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(tok, server.TokenPrefix) || !strings.Contains(errs, "shown only now") {
		t.Fatalf("create: %d %q %s", code, out, errs)
	}
	b, _ := os.ReadFile(filepath.Join(data, server.TokenFileName))
	if strings.Contains(string(b), tok) || !strings.Contains(string(b), server.HashToken(tok)) {
		t.Fatalf("%s holds %s", server.TokenFileName, b)
	}
	if fi, _ := os.Stat(filepath.Join(data, server.TokenFileName)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if code, _, errs := runCmd("token", "create", "--data", data, "--name", "auditor2", "--role", "admin"); code != 2 || !strings.Contains(errs, "already exists") {
		t.Fatalf("duplicate: %d %s", code, errs)
	}
	if code, _, errs := runCmd("token", "create", "--data", data, "--name", "x", "--role", "admin", "--tenants", "acme"); code != 2 || !strings.Contains(errs, "admin is not limited") {
		t.Fatalf("admin with tenants: %d %s", code, errs)
	}
	code, out, _ = runCmd("token", "list", "--data", data)
	if code != 0 || !strings.Contains(out, "auditor2") || !strings.Contains(out, "acme") || strings.Contains(out, server.HashToken(tok)) {
		t.Fatalf("list: %d\n%s", code, out)
	}
	waitStatus := func(want int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			status, _ := l.call("GET", "/v1/audit?limit=1", tok, "")
			if status == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("status %d, want %d after the token change", status, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitStatus(200)
	if code, out, errs := runCmd("token", "revoke", "--data", data, "auditor2"); code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: %d %s %s", code, out, errs)
	}
	waitStatus(401)
	if code, _, errs := runCmd("token", "revoke", "--data", data, "nobody"); code != 2 || !strings.Contains(errs, "no token named") {
		t.Fatalf("revoke unknown: %d %s", code, errs)
	}
	if code, _, _ := runCmd("token", "list", "--data", filepath.Join(data, "missing")); code != 2 {
		t.Fatal("list of a missing directory succeeded")
	}
}

// TestTokenRecoversLegacyAdmin: a store whose first-run token was kept in
// admin-token.sha256 lists it as admin and can replace it.
func TestTokenRecoversLegacyAdmin(t *testing.T) {
	data := t.TempDir()
	os.WriteFile(filepath.Join(data, server.LegacyAdminTokenFile), []byte(server.HashToken("lost-token-0123456789")+"\n"), 0o600)
	if code, out, _ := runCmd("token", "list", "--data", data); code != 0 || !strings.Contains(out, "admin") || !strings.Contains(out, server.LegacyAdminTokenFile) {
		t.Fatalf("%d %s", code, out)
	}
	if code, _, errs := runCmd("token", "create", "--data", data, "--name", "admin2", "--role", "admin"); code != 0 {
		t.Fatal(errs)
	}
	if code, _, errs := runCmd("token", "revoke", "--data", data, "admin"); code != 0 {
		t.Fatal(errs)
	}
	if _, err := os.Stat(filepath.Join(data, server.LegacyAdminTokenFile)); !os.IsNotExist(err) {
		t.Fatal("the legacy hash file is still there")
	}
	ts, _ := server.LoadStoredTokens(data)
	if len(ts) != 1 || ts[0].Name != "admin2" {
		t.Fatalf("%+v", ts)
	}
}

// signedStore runs a server on a fresh data directory, ingests n events,
// and stops it; the directory then holds signed checkpoints and
// signing.pub.
func signedStore(t *testing.T, n int) (data string) {
	t.Helper()
	data = t.TempDir()
	t.Setenv("VELLUM_ADMIN_TOKEN", testToken)
	l := startLive(t, "", data)
	var evs []string
	for i := 1; i <= n; i++ {
		evs = append(evs, acmeEvent(i))
	}
	l.ingest(testToken, evs...)
	if err := l.stop(); err != nil {
		t.Fatal(err)
	}
	return data
}

// TestCheckpointFileWithTrailingNewline: a checkpoint saved with jq -r
// (one more newline) or by an editor is accepted by verify and export.
func TestCheckpointFileWithTrailingNewline(t *testing.T) {
	data := signedStore(t, 5)
	res, err := checkpoint.ReadLog(nil, filepath.Join(data, checkpoint.LogName))
	if err != nil || len(res.Entries) == 0 {
		t.Fatal(err)
	}
	note := res.Entries[len(res.Entries)-1].Note
	pub := filepath.Join(data, checkpoint.PublicKeyFile)
	for name, text := range map[string]string{"jq": string(note) + "\n", "editor": string(note) + "\n\n  \n", "no newline": strings.TrimSuffix(string(note), "\n")} {
		cp := filepath.Join(t.TempDir(), "cp.txt")
		os.WriteFile(cp, []byte(text), 0o644)
		if code, out, errs := runCmd("verify", "--data", data, "--pubkey", pub, "--checkpoint", cp); code != 0 {
			t.Fatalf("%s: verify: %d %s%s", name, code, out, errs)
		}
		if code, _, errs := runCmd("export", "--data", data, "--proof", "--pubkey", pub, "--checkpoint", cp, "--out", filepath.Join(t.TempDir(), "b.jsonl")); code != 0 {
			t.Fatalf("%s: export: %d %s", name, code, errs)
		}
	}
}

// TestExportErrors: a wrong public key and bad seq ranges are clear errors
// with a non-zero exit, and leave no output file.
func TestExportErrors(t *testing.T) {
	data := signedStore(t, 5)
	pub := filepath.Join(data, checkpoint.PublicKeyFile)
	other := filepath.Join(t.TempDir(), "keys")
	if code, _, errs := runCmd("keygen", "--out", other); code != 0 {
		t.Fatal(errs)
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"wrong public key", []string{"--proof", "--pubkey", filepath.Join(other, checkpoint.PublicKeyFile)}, "does not verify with"},
		{"from 0", []string{"--from", "0"}, "--from 0: seqs start at 1"},
		{"to before from", []string{"--from", "5", "--to", "2"}, "--to is before --from"},
		{"from past the end", []string{"--from", "500"}, "--from 500 is past the last record"},
		{"to past the end", []string{"--to", "500"}, "--to 500 is past the last record"},
		{"proof past the end", []string{"--proof", "--pubkey", pub, "--to", "500"}, "past the last record"},
		{"bad filter", []string{"--outcome", "maybe"}, "--outcome"},
		{"format with proof", []string{"--proof", "--format", "csv"}, "--format does not apply"},
		{"missing directory", []string{"--data", filepath.Join(data, "nope")}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.jsonl")
			args := append([]string{"export", "--data", data, "--out", out}, tt.args...)
			code, _, errs := runCmd(args...)
			if code != 2 || !strings.Contains(errs, tt.want) {
				t.Fatalf("exit %d, stderr %q, want 2 and %q", code, errs, tt.want)
			}
			ents, _ := os.ReadDir(filepath.Dir(out))
			if len(ents) != 0 {
				t.Fatalf("left %v behind", ents)
			}
		})
	}
	// An existing output file is never overwritten.
	out := filepath.Join(t.TempDir(), "keep.jsonl")
	os.WriteFile(out, []byte("mine"), 0o644)
	if code, _, errs := runCmd("export", "--data", data, "--out", out); code != 2 || !strings.Contains(errs, "already exists") {
		t.Fatalf("%d %s", code, errs)
	}
	if b, _ := os.ReadFile(out); string(b) != "mine" {
		t.Fatal("overwritten")
	}
}

// TestExportFiltersAndCoverage: filters and CSV, a filtered bundle that
// verifies, records newer than the checkpoint reported, and --server
// signing a checkpoint now so the bundle covers everything.
func TestExportFiltersAndCoverage(t *testing.T) {
	data := t.TempDir()
	t.Setenv("VELLUM_ADMIN_TOKEN", testToken)
	l := startLive(t, "", data)
	var evs []string
	for i := 1; i <= 30; i++ {
		ev := acmeEvent(i)
		if i%3 == 0 {
			ev = strings.Replace(ev, `"acme"`, `"globex"`, 1)
		}
		evs = append(evs, ev)
	}
	l.ingest(testToken, evs...)
	pub := filepath.Join(data, checkpoint.PublicKeyFile)

	// CSV of one tenant.
	code, out, errs := runCmd("export", "--data", data, "--tenant_id", "globex", "--format", "csv")
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || err != nil || len(rows) != 11 || !slices.Equal(rows[0], export.Columns) || !strings.Contains(errs, "10 records of seq 1..30 matching tenant_id=globex") {
		t.Fatalf("csv: %d %v %d rows\n%s", code, err, len(rows), errs)
	}
	// Event-time filter: the producer's times are 10:00:01..10:00:30.
	code, out, _ = runCmd("export", "--data", data, "--event_since", "2026-11-27T10:00:10Z", "--event_until", "2026-11-27T10:00:20Z")
	if code != 0 || strings.Count(out, "\n") != 10 {
		t.Fatalf("event-time filter: %d %q", code, out)
	}

	// Without a checkpoint nothing can be proved: the error says how to
	// get one. vellum checkpoint signs one now.
	code, _, errs = runCmd("export", "--data", data, "--proof", "--pubkey", pub, "--out", filepath.Join(t.TempDir(), "none.jsonl"))
	if code != 2 || !strings.Contains(errs, "no signed checkpoint") {
		t.Fatalf("%d %s", code, errs)
	}
	cpFile := filepath.Join(t.TempDir(), "cp.txt")
	code, _, errs = runCmd("checkpoint", "--server", l.url, "--token", testToken, "--out", cpFile)
	if code != 0 || !strings.Contains(errs, "signed checkpoint of 30 records") {
		t.Fatalf("checkpoint: %d %s", code, errs)
	}
	if _, err := checkpoint.Open(mustRead(t, cpFile), mustVerifier(t, pub)); err != nil {
		t.Fatal(err)
	}

	// A bundle against the data directory's latest checkpoint, which does
	// not cover the newest record: it is reported, not dropped silently.
	l.ingest(testToken, acmeEvent(31))
	bundle := filepath.Join(t.TempDir(), "b.jsonl")
	code, _, errs = runCmd("export", "--data", data, "--proof", "--pubkey", pub, "--out", bundle)
	if code != 0 || !strings.Contains(errs, "records 31..") || !strings.Contains(errs, "are newer than the checkpoint and are NOT in this bundle") {
		t.Fatalf("newer records not reported: %d\n%s", code, errs)
	}
	// --server signs now: the bundle covers every record, filtered.
	bundle2 := filepath.Join(t.TempDir(), "b2.jsonl")
	code, _, errs = runCmd("export", "--data", data, "--proof", "--pubkey", pub, "--server", l.url, "--token", testToken, "--tenant_id", "acme", "--out", bundle2)
	if code != 0 || strings.Contains(errs, "NOT in this bundle") {
		t.Fatalf("%d %s", code, errs)
	}
	code, out, _ = runCmd("verify", "--bundle", bundle2, "--pubkey", pub)
	if code != 0 || !strings.Contains(out, "21 records") {
		t.Fatalf("verify the filtered bundle: %d %s", code, out)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustVerifier(t *testing.T, path string) note.Verifier {
	t.Helper()
	v, err := checkpoint.LoadVerifier(path)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestKeygenExistingDirectory: a second keygen into the same directory is
// a clear error and overwrites nothing.
func TestKeygenExistingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	if code, _, errs := runCmd("keygen", "--out", dir); code != 0 {
		t.Fatal(errs)
	}
	before, _ := os.ReadFile(filepath.Join(dir, HMACKeyFile))
	code, _, errs := runCmd("keygen", "--out", dir)
	if code != 2 || !strings.Contains(errs, "already exists; keygen never overwrites a key") || strings.Contains(errs, "open ") {
		t.Fatalf("%d %s", code, errs)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, HMACKeyFile)); string(after) != string(before) {
		t.Fatal("the key changed")
	}
}

// TestEveryCommandHasHelp: every command's -h has a description, its
// flags, the environment variables it reads and examples.
func TestEveryCommandHasHelp(t *testing.T) {
	for name := range commands {
		t.Run(name, func(t *testing.T) {
			code, out, errs := runCmd(name, "-h")
			text := out + errs
			h, ok := helps[name]
			if code != 0 || !ok || h.description == "" || h.examples == "" {
				t.Fatalf("exit %d, help entry %v:\n%s", code, ok, text)
			}
			for _, want := range []string{"usage: vellum " + name, "Flags:", "Environment:", "Examples:", "  vellum " + name} {
				if !strings.Contains(text, want) {
					t.Errorf("-h lacks %q:\n%s", want, text)
				}
			}
		})
	}
}

// TestQueryCount: vellum query --count prints how many records match.
func TestQueryCount(t *testing.T) {
	t.Setenv("VELLUM_ADMIN_TOKEN", testToken)
	l := startLive(t, "", t.TempDir())
	l.ingest(testToken, acmeEvent(1), acmeEvent(2), acmeEvent(3))
	code, out, errs := runCmd("query", "--server", l.url, "--token", testToken, "--tenant_id", "acme", "--action", "tool.", "--count")
	if code != 0 || out != "3\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, out, errs = runCmd("query", "--server", l.url, "--token", testToken, "--tenant_id", "acme", "--count", "--limit", "5")
	if code != 1 || out != "" || !strings.Contains(errs, "limit") {
		t.Fatalf("count with a limit: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}
