package redact

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vellumlog/vellum"
)

// FuzzRedactString: no panic; the output is bounded; redaction is
// idempotent under every action; valid UTF-8 stays valid; no matched value
// survives; text in which nothing matched comes back unchanged.
func FuzzRedactString(f *testing.F) {
	for _, s := range piiFragments {
		f.Add(s)
	}
	for _, s := range cleanFragments {
		f.Add(s)
	}
	f.Add("a@b.cd@e.fg +44 20 7946 0958 203.0.113.7 4111 1111 1111 1111 219-45-6789")
	rs := map[Action]*Redactor{}
	for _, a := range []Action{ActionReplace, ActionMask, ActionPseudonym} {
		r, err := New(Config{Presets: []string{"default", "gdpr", "hipaa"}, Action: a}, Options{PseudonymKey: kat})
		if err != nil {
			f.Fatal(err)
		}
		rs[a] = r
	}
	f.Fuzz(func(t *testing.T, in string) {
		for a, r := range rs {
			out, reds := r.RedactString("x", in)
			if len(out) > outputBound(in) {
				t.Fatalf("%s: %d bytes out for %d in", a, len(out), len(in))
			}
			if reds == nil && out != in {
				t.Fatalf("%s: changed without redactions: %q -> %q", a, in, out)
			}
			if again, reds2 := r.RedactString("x", out); again != out || reds2 != nil {
				t.Fatalf("%s: not idempotent:\n in: %q\nout: %q\nagain: %q", a, in, out, again)
			}
			if utf8.ValidString(in) && !utf8.ValidString(out) {
				t.Fatalf("%s: invalid UTF-8 out of valid input %q", a, in)
			}
			if a == ActionReplace {
				// A matched value may appear in the output only where the
				// input has it outside every match (e.g. inside a longer
				// number that is not itself a match).
				sc := new(scratch)
				r.find(sc, in, false)
				var rest strings.Builder
				last := 0
				for _, m := range sc.matches {
					rest.WriteString(in[last:m.start])
					rest.WriteByte(0)
					last = m.end
				}
				rest.WriteString(in[last:])
				for _, m := range sc.matches {
					if v := in[m.start:m.end]; strings.Contains(out, v) && !strings.Contains(rest.String(), v) {
						t.Fatalf("matched value %q survives: %q -> %q", v, in, out)
					}
				}
			}
		}
	})
}

// FuzzArguments: tool arguments that are valid JSON stay valid JSON;
// arguments in which nothing matched keep their exact bytes; the result is
// idempotent.
func FuzzArguments(f *testing.F) {
	f.Add([]byte(`{"to":["bob@example.com"],"n":4111111111111111,"q":"call 415-555-2671"}`))
	f.Add([]byte(`{"a":{"b":[1,"x",{"c@d.io":null}]},"s":"\u0040 esc\"aped \ud83d\ude00"}`))
	f.Add([]byte(`"4111 1111 1111 1111"`))
	f.Add([]byte(`[[[[]]]]`))
	f.Add([]byte(`{not json a@b.io`))
	r := allRules(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		rec := vellum.Record{Tool: vellum.Tool{Arguments: append([]byte(nil), b...)}}
		r.Redact(&rec)
		if json.Valid(b) && !json.Valid(rec.Tool.Arguments) {
			t.Fatalf("valid JSON became invalid:\n in: %s\nout: %s", b, rec.Tool.Arguments)
		}
		if rec.Redactions == nil && string(rec.Tool.Arguments) != string(b) {
			t.Fatalf("changed without redactions: %q -> %q", b, rec.Tool.Arguments)
		}
		before := string(rec.Tool.Arguments)
		r.Redact(&rec)
		if string(rec.Tool.Arguments) != before {
			t.Fatalf("not idempotent:\n in: %q\nout: %q\nagain: %q", b, before, rec.Tool.Arguments)
		}
	})
}

// FuzzCustomRule: any pattern either fails New with ErrBadRule or
// ErrUnknownAction, or runs on any text without panicking, within the
// output bound, leaving existing tokens alone.
func FuzzCustomRule(f *testing.F) {
	f.Add(`MRN[:# ]*(?P<value>\d{7})`, "MRN", "MRN: 1234567 [REDACTED:X]")
	f.Add(`\bE\d{6}\b`, "", "E123456 xE123456")
	f.Add(`(a|b)*c`, "c", "aabbc tok_0123456789abcdef0123456789abcdef")
	f.Add(`x\b`, "", "xxxx y")
	f.Add(`(`, "", "x")
	f.Add(`a*`, "", "aaa")
	f.Fuzz(func(t *testing.T, pattern, keyword, text string) {
		rule := Rule{Name: "CUSTOM", Pattern: pattern}
		if keyword != "" {
			rule.Keywords = []string{keyword}
		}
		r, err := New(Config{Presets: []string{"none"}, Rules: []Rule{rule}}, Options{})
		if err != nil {
			return
		}
		out, _ := r.RedactString("x", text)
		if len(out) > outputBound(text)*maxRounds {
			t.Fatalf("%d bytes out for %d in", len(out), len(text))
		}
		for _, tok := range []string{"[REDACTED:X]", "tok_0123456789abcdef0123456789abcdef"} {
			if strings.Count(out, tok) < strings.Count(text, tok) {
				t.Fatalf("token %q rewritten: %q -> %q", tok, text, out)
			}
		}
	})
}
