package redact

import (
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"
)

// Fragments for generated texts. pii fragments each contain one value some
// rule must redact; clean fragments must stay untouched.
var (
	piiFragments = []string{
		"alice@example.com", "first.last+tag@mail.example.co.uk", "415-555-2671", "(415) 555-2671", "+44 20 7946 0958",
		"+14155552671", "219-45-6789", "4111 1111 1111 1111", "5555555555554444", "3782 822463 10005",
		"DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "203.0.113.7", "2001:db8::8a2e:370:7334",
		"AKIAIOSFODNN7EXAMPLE", "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"ghp_16C7e42F292c6912E7710c838347Ae178B4a", "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
		"sk_live_4eC39HqLyjWDarjtT1zdp7dc", "Bearer 8f14e45fceea167a5a36dedd4bea2543",
		"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
		"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\n-----END EC PRIVATE KEY-----",
	}
	cleanFragments = []string{
		"the", "weather in Paris", "2026-11-27T10:00:00.123Z", "v1.26.0", "550e8400-e29b-41d4-a716-446655440000",
		"9fceb02d0ae598e95dc970b74767f19372d61af8", "aa:bb:cc:dd:ee:ff", "order 1000234", "INV-2024-000123",
		"4111111111111112", "12:30:45", "127.0.0.1", "std::vector", "@mention", "C++", "$1,234.56", "x = y + 1;",
		"ghp_short", "Bearer token", "-----BEGIN PUBLIC KEY-----", "DE89370400440532013001", "ölçü 日本",
		"{\"k\": [1, 2.5, true]}", "user@localhost", "10.0.0.256", "fe80::1", "1732701600", "+1 vote",
	}
	separators = []string{" ", "\n", ", ", " | ", "; ", "\t", " (", ") "}
)

func genText(rng *rand.Rand, pii bool) string {
	var b strings.Builder
	n := 1 + rng.IntN(12)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(separators[rng.IntN(len(separators))])
		}
		switch {
		case pii && rng.IntN(3) == 0:
			b.WriteString(piiFragments[rng.IntN(len(piiFragments))])
		default:
			b.WriteString(cleanFragments[rng.IntN(len(cleanFragments))])
		}
	}
	return b.String()
}

func propertyRedactors(t *testing.T) map[string]*Redactor {
	out := map[string]*Redactor{}
	for _, a := range []Action{ActionReplace, ActionMask, ActionPseudonym} {
		r, err := New(Config{Presets: []string{"default", "gdpr", "hipaa"}, Action: a}, Options{PseudonymKey: kat})
		if err != nil {
			t.Fatal(err)
		}
		out[string(a)] = r
	}
	return out
}

// TestPropertyNoMatchedValueSurvives: after redaction no value a rule
// matched is left in the text, and every PII fragment is gone.
func TestPropertyNoMatchedValueSurvives(t *testing.T) {
	for name, r := range propertyRedactors(t) {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			sc := new(scratch)
			for range propN {
				in := genText(rng, true)
				out, _ := r.RedactString("x", in)
				r.find(sc, in, false)
				for _, m := range sc.matches {
					if v := in[m.start:m.end]; strings.Contains(out, v) {
						t.Fatalf("matched %s value %q survives in\n in: %q\nout: %q", r.rules[m.rule].name, v, in, out)
					}
				}
				for _, f := range piiFragments {
					if strings.Contains(out, f) {
						t.Fatalf("PII fragment %q survives in\n in: %q\nout: %q", f, in, out)
					}
				}
			}
		})
	}
}

// TestPropertyIdempotent: redacting redacted text changes nothing and
// reports nothing.
func TestPropertyIdempotent(t *testing.T) {
	for name, r := range propertyRedactors(t) {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			for range propN {
				in := genText(rng, true)
				out, _ := r.RedactString("x", in)
				again, reds := r.RedactString("x", out)
				if again != out || reds != nil {
					t.Fatalf("not idempotent (%v):\n in: %q\nout: %q\nagain: %q", reds, in, out, again)
				}
				if utf8.ValidString(in) && !utf8.ValidString(out) {
					t.Fatalf("valid UTF-8 became invalid: %q -> %q", in, out)
				}
			}
		})
	}
}

// TestPropertyCleanUnchanged: text without PII comes back as the same
// string, not a copy.
func TestPropertyCleanUnchanged(t *testing.T) {
	r := allRules(t)
	rng := rand.New(rand.NewPCG(5, 6))
	for range propN {
		in := genText(rng, false)
		out, reds := r.RedactString("x", in)
		if out != in || reds != nil || unsafe.StringData(out) != unsafe.StringData(in) {
			t.Fatalf("clean text changed (%v):\n in: %q\nout: %q", reds, in, out)
		}
	}
}

// TestPropertyRandomBytes runs arbitrary bytes (biased towards trigger
// characters) through every action: idempotent, and the output bounded.
func TestPropertyRandomBytes(t *testing.T) {
	alphabet := "0123456789 -.:@_+()[]/=abcdefxyzABKISJyeoBearer\n-----BEGIN PRIVATE KEY"
	for name, r := range propertyRedactors(t) {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 8))
			for range propN * 2 {
				b := make([]byte, rng.IntN(80))
				for i := range b {
					b[i] = alphabet[rng.IntN(len(alphabet))]
				}
				in := string(b)
				out, _ := r.RedactString("x", in)
				if again, _ := r.RedactString("x", out); again != out {
					t.Fatalf("not idempotent:\n in: %q\nout: %q\nagain: %q", in, out, again)
				}
				if len(out) > outputBound(in) {
					t.Fatalf("output of %d bytes for %d bytes of input", len(out), len(in))
				}
			}
		})
	}
}

// outputBound is the longest output redaction may produce for in: every
// match is at least minMatch bytes and becomes at most maxToken bytes.
func outputBound(in string) int {
	const minMatch, maxToken = 1, len("[REDACTED:]") + maxRuleName
	return len(in) + (len(in)/minMatch)*maxToken
}

// propN is how many generated texts each property test checks; set
// REDACT_PROPN for a longer run.
var propN = func() int {
	if n, err := strconv.Atoi(os.Getenv("REDACT_PROPN")); err == nil && n > 0 {
		return n
	}
	return 3000
}()
