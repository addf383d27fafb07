package redact

import (
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

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

// TestDocsYAMLExamples decodes every YAML example of docs/redaction.md as
// the server does and compiles it; the custom rules must do what the page
// says.
func TestDocsYAMLExamples(t *testing.T) {
	b, err := os.ReadFile("../docs/redaction.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(b), "```yaml\n")[1:]
	if len(blocks) < 2 {
		t.Fatalf("found %d YAML examples, want at least 2", len(blocks))
	}
	var last *Redactor
	for i, blk := range blocks {
		blk = blk[:strings.Index(blk, "```")]
		var doc struct {
			Redaction Config `yaml:"redaction"`
		}
		dec := yaml.NewDecoder(strings.NewReader(blk))
		dec.KnownFields(true)
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("example %d: %v\n%s", i, err, blk)
		}
		r, err := New(doc.Redaction, Options{PseudonymKey: kat})
		if err != nil {
			t.Fatalf("example %d: %v", i, err)
		}
		last = r
	}
	mrn, _ := last.Pseudonym("MRN", "12345678")
	tests := []struct{ in, want string }{
		{"NINO AB 12 34 56 C ok", "NINO [REDACTED:UK_NINO] ok"},
		{"Steuer-ID: 12345678901", "Steuer-ID: [REDACTED:DE_STEUER_ID]"},
		{"MRN#12345678", "MRN#" + mrn},
		{"Aadhaar 2345 6789 0123", "Aadhaar **********0123"},
		{"no label 12345678901", "no label 12345678901"},
	}
	for _, tt := range tests {
		if got, _ := last.RedactString("outcome.reason", tt.in); got != tt.want {
			t.Errorf("%q: got %q want %q", tt.in, got, tt.want)
		}
	}
}
