package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	tdproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/vellumlog/vellum/checkpoint"
)

// python3 returns the interpreter, failing the test under CI (.ci/run
// installs it) and skipping it elsewhere when there is none.
func python3(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 is missing; .ci/run installs it")
		}
		t.Skip("python3 not installed")
	}
	return p
}

// TestPythonVerifyProof runs examples/python/verify_proof.py against a
// live server: it verifies records with only signing.pub, and fails on a
// wrong key, an altered proof, leaf input, MAC or signature, and a record
// no checkpoint covers yet.
func TestPythonVerifyProof(t *testing.T) {
	py := python3(t)
	script, _ := filepath.Abs("../../examples/python/verify_proof.py")
	data := t.TempDir()
	t.Setenv("VELLUM_ADMIN_TOKEN", testToken)
	l := startLive(t, "", data)
	var evs []string
	for i := 1; i <= 20; i++ {
		// Arguments with whitespace the JSON form does not keep.
		evs = append(evs, fmt.Sprintf(`{"tenant_id":"acme","action":"tool.call","tool":{"name":"t","arguments":{"q" :  "a\tb %d",  "n": [1, 2]}},"outcome":{"status":"success"}}`, i))
	}
	l.ingest(testToken, evs...)
	if code, _, errs := runCmd("checkpoint", "--server", l.url, "--token", testToken); code != 0 {
		t.Fatal(errs)
	}
	pub := filepath.Join(data, checkpoint.PublicKeyFile)
	dir := t.TempDir()
	py3 := func(args ...string) (int, string) {
		cmd := exec.Command(py, append([]string{script}, args...)...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	for _, seq := range []int{1, 7, 20} {
		save := filepath.Join(dir, fmt.Sprintf("r%d.json", seq))
		code, out := py3("--server", l.url, "--token", testToken, "--pubkey", pub, "--seq", fmt.Sprint(seq), "--save", save)
		if code != 0 || !strings.HasPrefix(out, fmt.Sprintf("OK: seq %d is leaf %d", seq, seq-1)) {
			t.Fatalf("seq %d: exit %d\n%s", seq, code, out)
		}
	}

	// The same saved response, tampered.
	saved := filepath.Join(dir, "r7.json")
	var resp map[string]any
	json.Unmarshal(mustRead(t, saved), &resp)
	proof := resp["inclusion_proof"].(map[string]any)
	cp := resp["checkpoint"].(map[string]any)

	// Cross-check the saved proof with transparency-dev's verifier too.
	input, _ := base64.StdEncoding.DecodeString(proof["leaf_input"].(string))
	var path [][]byte
	for _, h := range proof["hashes"].([]any) {
		b, _ := base64.StdEncoding.DecodeString(h.(string))
		path = append(path, b)
	}
	root, _ := base64.StdEncoding.DecodeString(cp["root_hash"].(string))
	if err := tdproof.VerifyInclusion(rfc6962.DefaultHasher, 6, uint64(cp["tree_size"].(float64)), rfc6962.DefaultHasher.HashLeaf(input), path, root); err != nil {
		t.Fatal(err)
	}

	flip := func(s string) string {
		b, _ := base64.StdEncoding.DecodeString(s)
		b[len(b)/2] ^= 1
		return base64.StdEncoding.EncodeToString(b)
	}
	for _, tt := range []struct {
		name   string
		mutate func(r map[string]any)
		want   string
	}{
		{"altered proof hash", func(r map[string]any) {
			hs := r["inclusion_proof"].(map[string]any)["hashes"].([]any)
			hs[0] = flip(hs[0].(string))
		}, "does not lead to the signed root"},
		{"altered leaf input", func(r map[string]any) {
			p := r["inclusion_proof"].(map[string]any)
			p["leaf_input"] = flip(p["leaf_input"].(string))
		}, "does not lead to the signed root"},
		{"other record's mac", func(r map[string]any) { r["mac"] = strings.Repeat("ab", 32) }, "mac is not the MAC"},
		{"other seq", func(r map[string]any) { r["seq"] = 8.0 }, "another record"},
		{"altered root", func(r map[string]any) {
			c := r["checkpoint"].(map[string]any)
			c["root_hash"] = flip(c["root_hash"].(string))
		}, "differ from its signed note"},
		{"altered signature", func(r map[string]any) {
			c := r["checkpoint"].(map[string]any)
			note := c["note"].(string)
			i := strings.LastIndex(note, " ")
			sig := strings.TrimSuffix(note[i+1:], "\n")
			c["note"] = note[:i+1] + flip(sig) + "\n"
		}, "signature by"},
		{"altered note body", func(r map[string]any) {
			c := r["checkpoint"].(map[string]any)
			c["note"] = strings.Replace(c["note"].(string), "\n", "x\n", 1)
		}, "signature by"},
		{"no proof yet", func(r map[string]any) { delete(r, "inclusion_proof") }, "no proof yet"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var r map[string]any
			json.Unmarshal(mustRead(t, saved), &r)
			tt.mutate(r)
			b, _ := json.Marshal(r)
			f := filepath.Join(t.TempDir(), "r.json")
			os.WriteFile(f, b, 0o644)
			code, out := py3("--response", f, "--pubkey", pub)
			if code != 1 || !strings.Contains(out, "FAILED") || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d, want 1 and %q:\n%s", code, tt.want, out)
			}
		})
	}
	// The untampered saved response verifies offline; with another key it
	// does not.
	if code, out := py3("--response", saved, "--pubkey", pub); code != 0 {
		t.Fatalf("saved response: %d %s", code, out)
	}
	other := filepath.Join(t.TempDir(), "keys")
	if code, _, errs := runCmd("keygen", "--out", other, "--name", cp["origin"].(string)); code != 0 {
		t.Fatal(errs)
	}
	if code, out := py3("--response", saved, "--pubkey", filepath.Join(other, checkpoint.PublicKeyFile)); code != 1 || !strings.Contains(out, "not signed by the key") {
		t.Fatalf("wrong key: %d %s", code, out)
	}
}
