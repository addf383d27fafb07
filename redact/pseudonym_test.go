package redact

import (
	"bytes"
	"errors"
	"regexp"
	"testing"
)

// kat is the key of the known-answer vectors: bytes 0x00..0x1f. Reproduce
// a vector with
//
//	{ printf 'EMAIL\0'; printf 'alice@example.com'; } | openssl dgst -sha256 -mac HMAC \
//	  -macopt hexkey:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
//
// and keep the first 32 hex digits.
var kat = func() []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = byte(i)
	}
	return k
}()

func pseudoRedactor(t testing.TB) *Redactor {
	t.Helper()
	r, err := New(Config{Presets: []string{"default", "gdpr"}, Action: ActionPseudonym}, Options{PseudonymKey: kat})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPseudonymKnownAnswers(t *testing.T) {
	r := pseudoRedactor(t)
	tests := []struct{ rule, value, want string }{
		{"EMAIL", "alice@example.com", "tok_f534f52f8f14c528115168667998cbb5"},
		{"EMAIL", "Alice@Example.COM", "tok_f534f52f8f14c528115168667998cbb5"},
		{"PHONE", "+14155552671", "tok_f6d04a3077276b825a36eb6a1ec64c67"},
		{"phone", "(415) 555-2671", "tok_f6d04a3077276b825a36eb6a1ec64c67"},
		{"PHONE", "1-415-555-2671", "tok_f6d04a3077276b825a36eb6a1ec64c67"},
	}
	for _, tt := range tests {
		t.Run(tt.rule+"/"+tt.value, func(t *testing.T) {
			got, err := r.Pseudonym(tt.rule, tt.value)
			if err != nil || got != tt.want {
				t.Fatalf("Pseudonym = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestPseudonymInText(t *testing.T) {
	r := pseudoRedactor(t)
	out, reds := r.RedactString("outcome.reason", "from Alice@example.com to alice@EXAMPLE.com, card 4111 1111 1111 1111")
	p, _ := r.Pseudonym("EMAIL", "alice@example.com")
	c, _ := r.Pseudonym("CREDIT_CARD", "4111111111111111")
	want := "from " + p + " to " + p + ", card " + c
	if out != want {
		t.Fatalf("got  %q\nwant %q", out, want)
	}
	if len(reds) != 2 || reds[0].Rule != "CREDIT_CARD" || reds[1].Rule != "EMAIL" || reds[1].Count != 2 {
		t.Fatalf("redactions %v", reds)
	}
	if !regexp.MustCompile(`^tok_[0-9a-f]{32}$`).MatchString(p) {
		t.Fatalf("pseudonym %q has the wrong shape", p)
	}
	// Same value under another rule, or another key: another pseudonym.
	r2, _ := New(Config{Action: ActionPseudonym}, Options{PseudonymKey: bytes.Repeat([]byte{9}, 32)})
	if p2, _ := r2.Pseudonym("EMAIL", "alice@example.com"); p2 == p {
		t.Fatal("pseudonym does not depend on the key")
	}
	// Pseudonyms are never re-redacted, even after "Bearer ".
	s := "Authorization: Bearer tok_0123456789abcdef0123456789abcdef"
	if got, reds := r.RedactString("x", s); got != s || reds != nil {
		t.Fatalf("pseudonym re-redacted: %q", got)
	}
}

func TestPseudonymErrors(t *testing.T) {
	r := pseudoRedactor(t)
	if _, err := r.Pseudonym("NOPE", "x"); !errors.Is(err, ErrUnknownRule) {
		t.Fatalf("unknown rule: %v", err)
	}
	noKey := allRules(t)
	if _, err := noKey.Pseudonym("EMAIL", "x"); !errors.Is(err, ErrPseudonymKey) {
		t.Fatalf("no key: %v", err)
	}
	mixed, _ := New(Config{Actions: map[string]Action{"EMAIL": ActionPseudonym}}, Options{PseudonymKey: kat})
	if _, err := mixed.Pseudonym("PHONE", "x"); !errors.Is(err, ErrNotPseudonym) {
		t.Fatalf("replace rule: %v", err)
	}
	if _, err := mixed.Pseudonym("EMAIL", "x"); err != nil {
		t.Fatal(err)
	}
}

func TestKeyIsCopied(t *testing.T) {
	k := bytes.Repeat([]byte{7}, 32)
	r, _ := New(Config{Action: ActionPseudonym}, Options{PseudonymKey: k})
	before, _ := r.Pseudonym("EMAIL", "a@b.io")
	k[0] = 8
	if after, _ := r.Pseudonym("EMAIL", "a@b.io"); after != before {
		t.Fatal("New did not copy the key")
	}
}
