package redact

import (
	"strings"
	"testing"
)

// pathological inputs: each repeats a fragment that makes some detector
// look further than the trigger byte.
var pathological = map[string]string{
	"digits":          "1",
	"spaced digits":   "1 ",
	"dashed digits":   "1-",
	"dotted digits":   "1.",
	"at signs":        "@",
	"local parts":     "a.",
	"emails chained":  "a@b.",
	"colons":          ":",
	"hex colons":      "a:",
	"eyJ":             "eyJ",
	"eyJ dots":        "eyJa.",
	"bearer":          "Bearer ",
	"bearer tokens":   "Bearer 0123456789abcdef ",
	"pem begin":       "-----BEGIN PRIVATE KEY-----",
	"pem end":         "-----END PRIVATE KEY-----x",
	"dashes":          "-",
	"akia":            "AKIA",
	"aws keyword":     "aws_secret ",
	"underscores":     "_",
	"ghp":             "ghp_",
	"slack":           "xoxb-",
	"stripe":          "sk_live_",
	"plus digits":     "+1 ",
	"parens":          "(1",
	"iban":            "DE89 ",
	"redacted tokens": "[REDACTED:X]",
	"pseudonyms":      "tok_0123456789abcdef0123456789abcdef ",
}

// work returns the detector work counter after scanning s.
func work(r *Redactor, s string, secretCtx bool) int {
	sc := new(scratch)
	r.find(sc, s, secretCtx)
	return sc.work
}

// TestLinearWork checks by operation counting (not by the clock) that the
// work detectors do beyond the trigger scan grows linearly with the input,
// and that large pathological inputs (1 MiB of digits, '@', ':', ...)
// complete.
func TestLinearWork(t *testing.T) {
	r, err := New(Config{Presets: []string{"default", "gdpr", "hipaa"}, Rules: []Rule{
		{Name: "MRN", Pattern: `MRN\d{7}`},
		{Name: "ANY", Pattern: `(x+x+)+y`},
	}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, frag := range pathological {
		t.Run(name, func(t *testing.T) {
			const n = 16 << 10
			small := strings.Repeat(frag, n/len(frag))
			big := strings.Repeat(frag, 4*n/len(frag))
			for _, secret := range []bool{false, true} {
				ws, wb := work(r, small, secret), work(r, big, secret)
				if wb > 4*ws+4*n/10 {
					t.Errorf("secretCtx=%v: work %d for %d bytes, %d for %d bytes: not linear", secret, ws, len(small), wb, len(big))
				}
				if wb > 300*len(big) {
					t.Errorf("secretCtx=%v: work %d for %d bytes: more than 300 per byte", secret, wb, len(big))
				}
			}
			size := 256 << 10
			switch name {
			case "digits", "at signs", "colons", "eyJ", "pem begin", "bearer tokens":
				size = 1 << 20
			}
			mb := strings.Repeat(frag, size/len(frag))
			out, _ := r.RedactString("x", mb)
			if len(out) > outputBound(mb) {
				t.Errorf("output %d bytes for %d", len(out), len(mb))
			}
		})
	}
}
