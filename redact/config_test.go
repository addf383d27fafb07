package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		opts    Options
		want    error
		mention string // the error names this
	}{
		{"unknown preset", Config{Presets: []string{"ccpa"}}, Options{}, ErrUnknownPreset, "ccpa"},
		{"unknown enable", Config{Enable: []string{"PASSPORT"}}, Options{}, ErrUnknownRule, "PASSPORT"},
		{"unknown disable", Config{Disable: []string{"EMIAL"}}, Options{}, ErrUnknownRule, "EMIAL"},
		{"unknown actions key", Config{Actions: map[string]Action{"NOPE": ActionMask}}, Options{}, ErrUnknownRule, "NOPE"},
		{"unknown action", Config{Actions: map[string]Action{"EMAIL": "hash"}}, Options{}, ErrUnknownAction, "EMAIL"},
		{"unknown default action", Config{Action: "drop"}, Options{}, ErrUnknownAction, "drop"},
		{"unknown custom action", Config{Rules: []Rule{{Name: "MRN", Pattern: `MRN\d+`, Action: "erase"}}}, Options{}, ErrUnknownAction, "MRN"},
		{"regex does not compile", Config{Rules: []Rule{{Name: "BROKEN", Pattern: `(\d+`}}}, Options{}, ErrBadRule, "BROKEN"},
		{"regex matches empty", Config{Rules: []Rule{{Name: "EMPTY", Pattern: `\d*`}}}, Options{}, ErrBadRule, "EMPTY"},
		{"empty pattern", Config{Rules: []Rule{{Name: "NOTHING"}}}, Options{}, ErrBadRule, "NOTHING"},
		{"bad rule name", Config{Rules: []Rule{{Name: "my rule", Pattern: "x"}}}, Options{}, ErrBadRule, "my rule"},
		{"shadows built-in", Config{Rules: []Rule{{Name: "EMAIL", Pattern: "x"}}}, Options{}, ErrBadRule, "EMAIL"},
		{"duplicate", Config{Rules: []Rule{{Name: "A1", Pattern: "x"}, {Name: "a1", Pattern: "y"}}}, Options{}, ErrBadRule, "A1"},
		{"empty keyword", Config{Rules: []Rule{{Name: "K", Pattern: "x", Keywords: []string{""}}}}, Options{}, ErrBadRule, "K"},
		{"pseudonym without key", Config{Actions: map[string]Action{"EMAIL": ActionPseudonym}}, Options{}, ErrPseudonymKey, "EMAIL"},
		{"custom pseudonym without key", Config{Rules: []Rule{{Name: "MRN", Pattern: `MRN\d+`, Action: ActionPseudonym}}}, Options{}, ErrPseudonymKey, "MRN"},
		{"short key", Config{}, Options{PseudonymKey: []byte("short")}, ErrPseudonymKey, "32"},
		{"enabled and disabled", Config{Enable: []string{"IPV4"}, Disable: []string{"ipv4"}}, Options{}, ErrConflict, "IPV4"},
		{"two actions for custom", Config{Rules: []Rule{{Name: "MRN", Pattern: "x", Action: ActionMask}}, Actions: map[string]Action{"MRN": ActionReplace}}, Options{}, ErrConflict, "MRN"},
		{"unknown field", Config{NeverRedact: []string{"tool.args"}}, Options{}, ErrBadField, "tool.args"},
		{"unknown root", Config{NeverRedact: []string{"user"}}, Options{}, ErrBadField, "user"},
		{"empty segment", Config{NeverRedact: []string{"attributes..x"}}, Options{}, ErrBadField, "attributes..x"},
		{"below scalar", Config{NeverRedact: []string{"outcome.reason.x"}}, Options{}, ErrBadField, "outcome.reason.x"},
		{"redact anyway not default", Config{RedactAnyway: []string{"outcome.reason"}}, Options{}, ErrBadField, "outcome.reason"},
		{"redact anyway closed", Config{RedactAnyway: []string{"action"}}, Options{}, ErrBadField, "action"},
		{"never and anyway", Config{NeverRedact: []string{"user_id"}, RedactAnyway: []string{"user_id"}}, Options{}, ErrConflict, "user_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.cfg, tt.opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("New = %v, %v; want %v", r, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.mention) || !strings.HasPrefix(err.Error(), "redact: ") {
				t.Fatalf("error %q does not start with \"redact: \" and name %q", err, tt.mention)
			}
		})
	}
}

func TestZeroConfigIsDefaultPreset(t *testing.T) {
	r, err := New(Config{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Rules(), Presets()["default"]; !slices.Equal(got, want) {
		t.Fatalf("zero Config rules %v, want the default preset %v", got, want)
	}
}

func TestPresetsAndSelection(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"none", Config{Presets: []string{"none"}}, nil},
		{"pci", Config{Presets: []string{"pci"}}, []string{"AWS_ACCESS_KEY", "AWS_SECRET_KEY", "BEARER_TOKEN", "CREDIT_CARD", "GITHUB_TOKEN", "JWT", "PRIVATE_KEY", "SLACK_TOKEN", "STRIPE_KEY"}},
		{"none plus enable", Config{Presets: []string{"none"}, Enable: []string{"email", "IPV4"}}, []string{"EMAIL", "IPV4"}},
		{"hipaa minus", Config{Presets: []string{"HIPAA"}, Disable: []string{"IPV6", "JWT", "BEARER_TOKEN", "PRIVATE_KEY", "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "GITHUB_TOKEN", "SLACK_TOKEN", "STRIPE_KEY"}},
			[]string{"EMAIL", "IPV4", "PHONE", "US_SSN"}},
		{"custom enabled by default", Config{Presets: []string{"none"}, Rules: []Rule{{Name: "mrn", Pattern: `MRN-\d{7}`}}}, []string{"MRN"}},
		{"custom disabled", Config{Presets: []string{"none"}, Rules: []Rule{{Name: "MRN", Pattern: `MRN-\d{7}`}}, Disable: []string{"MRN"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Rules(); !slices.Equal(got, tt.want) {
				t.Fatalf("rules %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNonePresetChangesNothing(t *testing.T) {
	r, err := New(Config{Presets: []string{"none"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	in := "alice@example.com 4111111111111111 AKIAIOSFODNN7EXAMPLE"
	if got, reds := r.RedactString("x", in); got != in || reds != nil {
		t.Fatalf("preset none changed %q to %q", in, got)
	}
}

const exampleYAML = `
redaction:
  presets: [default, gdpr]
  action: replace
  enable: [IPV4]
  disable: [IPV6]
  actions:
    EMAIL: pseudonym
    CREDIT_CARD: mask
  never_redact: [attributes.build_sha, tool.arguments.repo]
  redact_anyway: [user_id]
  rules:
    - name: UK_NINO
      pattern: '\b[A-CEGHJ-PR-TW-Z]{2}\d{6}[A-D]\b'
    - name: MRN
      pattern: 'MRN[:# ]*(?P<value>\d{7,10})'
      keywords: [MRN]
      action: pseudonym
`

func TestConfigYAML(t *testing.T) {
	var doc struct {
		Redaction Config `yaml:"redaction"`
	}
	dec := yaml.NewDecoder(strings.NewReader(exampleYAML))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	cfg := doc.Redaction
	want := Config{
		Presets: []string{"default", "gdpr"}, Action: ActionReplace,
		Enable: []string{"IPV4"}, Disable: []string{"IPV6"},
		Actions:      map[string]Action{"EMAIL": ActionPseudonym, "CREDIT_CARD": ActionMask},
		NeverRedact:  []string{"attributes.build_sha", "tool.arguments.repo"},
		RedactAnyway: []string{"user_id"},
		Rules: []Rule{
			{Name: "UK_NINO", Pattern: `\b[A-CEGHJ-PR-TW-Z]{2}\d{6}[A-D]\b`},
			{Name: "MRN", Pattern: `MRN[:# ]*(?P<value>\d{7,10})`, Keywords: []string{"MRN"}, Action: ActionPseudonym},
		},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", cfg, want)
	}
	r, err := New(cfg, Options{PseudonymKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := r.RedactString("outcome.reason", "NINO AB123456C, MRN: 12345678, card 4111111111111111, ip 10.0.0.9")
	mrn, _ := r.Pseudonym("MRN", "12345678")
	want2 := "NINO [REDACTED:UK_NINO], MRN: " + mrn + ", card ************1111, ip [REDACTED:IPV4]"
	if got != want2 {
		t.Fatalf("got  %q\nwant %q", got, want2)
	}

	// Unknown keys are refused by the server's strict decoder.
	dec = yaml.NewDecoder(strings.NewReader("redaction:\n  preset: default\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err == nil {
		t.Fatal("unknown key preset accepted")
	}

	// The JSON form round-trips.
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var back Config
	jd := json.NewDecoder(bytes.NewReader(b))
	jd.DisallowUnknownFields()
	if err := jd.Decode(&back); err != nil || !reflect.DeepEqual(back, cfg) {
		t.Fatalf("JSON round trip: %v\n%s", err, b)
	}
}

func TestLiteralPrefix(t *testing.T) {
	tests := []struct{ pattern, want string }{
		{`MRN-\d+`, "MRN-"},
		{`\bEMP\d{6}\b`, "EMP"},
		{`^ID:(\d+)`, "ID:"},
		{`(?P<value>AB)\d`, "AB"},
		{`(?i)mrn\d+`, ""},
		{`\d+MRN`, ""},
		{`a|b`, ""},
		{`x?y`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			if got := literalPrefix(tt.pattern); got != tt.want {
				t.Fatalf("literalPrefix(%q) = %q, want %q", tt.pattern, got, tt.want)
			}
		})
	}
}

func TestFieldPatterns(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"model", "model.finish_reason", true},
		{"model", "model", true},
		{"model", "modelx", false},
		{"tool.arguments.user", "tool.arguments.user.email", true},
		{"tool.arguments.user", "tool.arguments.username", false},
		{"tool.arguments.*.id", "tool.arguments.user.id", true},
		{"tool.arguments.*.id", "tool.arguments.user.name", false},
		{"attributes.*", "attributes.a.b", true},
		{"attributes.http.url", "attributes.http.url", true},
		{"outcome.reason", "outcome.reasons", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"~"+tt.path, func(t *testing.T) {
			p, err := parseField(tt.pattern)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.covers([]byte(tt.path)); got != tt.want {
				t.Fatalf("covers = %v, want %v", got, tt.want)
			}
		})
	}
}
