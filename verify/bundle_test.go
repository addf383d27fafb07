package verify

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/vellumlog/vellum/checkpoint"
)

func exportFixture(t *testing.T, from, to uint64) ([]byte, checkpoint.Signed) {
	t.Helper()
	f := getFixture(t)
	dir := f.copyOf(t)
	s, err := OpenStore(nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	note, _ := lastCheckpoint(t, dir)
	cp, err := checkpoint.Open(note, f.verifier)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := ExportBundle(s, &buf, cp, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if to == 0 {
		to = cp.Size
	}
	if want := int(min(to, cp.Size) - from + 1); n != want {
		t.Fatalf("exported %d records, want %d", n, want)
	}
	return buf.Bytes(), cp
}

func TestBundleRoundTrip(t *testing.T) {
	f := getFixture(t)
	b, cp := exportFixture(t, 1, 0)
	rep, err := Bundle(bytes.NewReader(b), "bundle.jsonl", f.verifier)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Records != cp.Size || rep.Tree == nil || rep.Tree.Size != cp.Size {
		t.Fatalf("intact bundle: %d records of %d, problems %v", rep.Records, cp.Size, rep.Problems)
	}
}

func TestBundleTampering(t *testing.T) {
	f := getFixture(t)
	b, _ := exportFixture(t, 150, 170)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	edit := func(i int, fn func(m map[string]any)) string {
		var m map[string]any
		json.Unmarshal([]byte(lines[i]), &m)
		fn(m)
		out, _ := json.Marshal(m)
		cp := append([]string(nil), lines...)
		cp[i] = string(out)
		return strings.Join(cp, "\n") + "\n"
	}
	_, otherVerifier := signerPair("vellum-test")
	tests := []struct {
		name   string
		bundle string
		check  string
		verif  bool // verify with another public key
	}{
		{"record JSON changed", edit(3, func(m map[string]any) { m["record"].(map[string]any)["user_id"] = "mallory" }), CheckBundle, false},
		{"encoding changed", edit(3, func(m map[string]any) {
			enc := []byte(m["encoding"].(string))
			enc[len(enc)-8] = map[bool]byte{true: 'B', false: 'A'}[enc[len(enc)-8] == 'A']
			m["encoding"] = string(enc)
		}), CheckBundle, false},
		{"MAC changed", edit(3, func(m map[string]any) {
			m["record"].(map[string]any)["mac"] = strings.Repeat("00", 32)
		}), CheckBundle, false},
		{"proof hash changed", edit(3, func(m map[string]any) {
			m["proof"].(map[string]any)["hashes"].([]any)[0] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
		}), CheckBundle, false},
		{"proof for another leaf", edit(3, func(m map[string]any) {
			m["proof"] = json.RawMessage(lines[4][strings.Index(lines[4], `"proof":`)+8 : len(lines[4])-1])
		}), CheckBundle, false},
		{"checkpoint from another key", string(b), CheckSignature, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := f.verifier
			if tt.verif {
				v = otherVerifier
			}
			rep, err := Bundle(strings.NewReader(tt.bundle), "b.jsonl", v)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatal("tampering not detected")
			}
			p := rep.First()
			t.Log(p)
			if p.Check != tt.check || p.File != "b.jsonl" {
				t.Fatalf("first problem %v, want check %s", p, tt.check)
			}
			if tt.check == CheckBundle && (p.Seq != 152 || p.Offset <= 0) {
				t.Fatalf("problem not located at seq 152's line: %v", p)
			}
		})
	}
	if _, err := Bundle(strings.NewReader("not json\n"), "x", f.verifier); err == nil {
		t.Fatal("a non-bundle was accepted")
	}
}
