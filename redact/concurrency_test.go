package redact

import (
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/vellumlog/vellum"
)

// TestConcurrentUse runs one Redactor from many goroutines (meaningful
// under -race) and checks that every goroutine gets the same answer.
func TestConcurrentUse(t *testing.T) {
	r, err := New(Config{Actions: map[string]Action{"EMAIL": ActionPseudonym, "PHONE": ActionMask}}, Options{PseudonymKey: kat})
	if err != nil {
		t.Fatal(err)
	}
	in := `{"to":"alice@example.com","body":"call 415-555-2671","card":"4111 1111 1111 1111"}`
	want := vellum.Record{Tool: vellum.Tool{Arguments: json.RawMessage(in)}, Attributes: map[string]string{"e": "bob@example.com"}}
	r.Redact(&want)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				rec := vellum.Record{Tool: vellum.Tool{Arguments: json.RawMessage(in)}, Attributes: map[string]string{"e": "bob@example.com"}}
				r.Redact(&rec)
				if string(rec.Tool.Arguments) != string(want.Tool.Arguments) || rec.Attributes["e"] != want.Attributes["e"] {
					t.Errorf("concurrent result differs: %s", rec.Tool.Arguments)
					return
				}
				if _, err := r.Pseudonym("EMAIL", "alice@example.com"); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestDocsListEveryRule keeps docs/redaction.md in step with the code: every
// built-in rule, preset and action is documented.
func TestDocsListEveryRule(t *testing.T) {
	b, err := os.ReadFile("../docs/redaction.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	var names []string
	names = append(names, Builtins()...)
	for p := range Presets() {
		names = append(names, "`"+p+"`")
	}
	names = append(names, string(ActionReplace), string(ActionMask), string(ActionPseudonym))
	for _, n := range names {
		if !strings.Contains(doc, n) {
			t.Errorf("docs/redaction.md does not mention %s", n)
		}
	}
	for _, f := range DefaultNeverRedact {
		if !strings.Contains(doc, "`"+f+"`") {
			t.Errorf("docs/redaction.md does not list never-redact field %s", f)
		}
	}
}
