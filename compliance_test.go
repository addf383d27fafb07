package vellum_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestComplianceDocNamesRealTests keeps docs/compliance.md honest: every
// test it cites exists, and every control it lists cites at least one
// test.
func TestComplianceDocNamesRealTests(t *testing.T) {
	doc, err := os.ReadFile("docs/compliance.md")
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	decl := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Benchmark)[A-Za-z0-9_]+)\(`)
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != "." {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range decl.FindAllStringSubmatch(string(b), -1) {
			defined[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cited := regexp.MustCompile("`(Test[A-Z][A-Za-z0-9_]*)`").FindAllStringSubmatch(string(doc), -1)
	if len(cited) < 20 {
		t.Fatalf("only %d tests cited", len(cited))
	}
	for _, m := range cited {
		if !defined[m[1]] {
			t.Errorf("docs/compliance.md cites %s, which does not exist", m[1])
		}
	}
	// Each control section (### heading) cites a test.
	sections := regexp.MustCompile(`(?m)^### `).Split(string(doc), -1)[1:]
	if len(sections) < 14 {
		t.Fatalf("%d control sections, want AU-2..AU-12, HIPAA (b), (c), CC7.2", len(sections))
	}
	for _, s := range sections {
		title := strings.SplitN(s, "\n", 2)[0]
		if !regexp.MustCompile("`Test[A-Z]").MatchString(s) {
			t.Errorf("control %q cites no test", title)
		}
		if !strings.Contains(s, "Not covered") {
			t.Errorf("control %q does not say what is not covered", title)
		}
	}
}
