package layout

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/vellumlog/vellum/vfs"
)

func TestRetentionFilesRoundTrip(t *testing.T) {
	seed, err := os.ReadFile("testdata/fuzz/FuzzRetentionFiles/manifest")
	if err != nil {
		t.Fatal(err)
	}
	// The corpus file holds the JSON as a Go string literal.
	body := strings.TrimSuffix(strings.SplitN(string(seed), "\n", 2)[1], "\n")
	body = strings.TrimSuffix(strings.TrimPrefix(body, `[]byte("`), `")`)
	body = strings.ReplaceAll(body, `\"`, `"`)
	p, err := ParsePurged([]byte(body))
	if err != nil {
		t.Fatalf("seed manifest: %v", err)
	}
	fs := vfs.NewMem()
	fs.MkdirAll("/d", 0o755)
	if err := WritePurged(fs, "/d", p); err != nil {
		t.Fatal(err)
	}
	q, err := ReadPurged(fs, "/d")
	if err != nil || q.Through != 2 || q.LastSeq != 3 || len(q.Segments()) != 2 || q.Segments()[1].Tenants[0] != "hipaa" {
		t.Fatalf("%+v %v", q, err)
	}
	// Broken manifests are refused, each with what is wrong.
	for _, c := range []struct{ from, to, want string }{
		{`"through_segment": 2`, `"through_segment": 3`, "the purges end at segment 2"},
		{`"last_seq": 3,`, `"last_seq": 4,`, "range hashes"},
		{`"segment": 2,`, `"segment": 3,`, "expected 2"},
		{`"anchor_seq": 9`, `"anchor_seq": 2`, "inside what it purged"},
		{`"format": 1`, `"format": 2`, "format 2"},
	} {
		b := strings.Replace(body, c.from, c.to, 1)
		if _, err := ParsePurged([]byte(b)); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s -> %s: %v", c.from, c.to, err)
		}
	}
	if m, err := ReadPurged(fs, "/none"); m != nil || err != nil {
		t.Fatalf("no manifest: %v %v", m, err)
	}
	hs := []Hold{{ID: "a", Reason: "r"}, {ID: "b", TenantID: "acme", Reason: "s"}}
	if err := WriteHolds(fs, "/d", hs); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadHolds(fs, "/d"); err != nil || len(got) != 2 || got[1].TenantID != "acme" {
		t.Fatalf("%+v %v", got, err)
	}
}
