package redact

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/vellumlog/vellum"
)

// The benchmark corpora are built deterministically from templates of what
// agent servers record: tool-call arguments (search queries, e-mail drafts,
// SQL, shell commands), model output, source code and service logs.

var (
	words = strings.Fields(`the of and to in is for on with as by at from that this be are was it an or
		weather forecast Paris quarterly revenue report customer order status shipping delayed warehouse
		invoice refund policy summary meeting notes draft reply thanks regards please attached review
		deployment rollback cluster latency error retry timeout request response token budget model
		function returns value handler context config database query index migration schema table`)
	cleanTemplates = []string{
		`{"query":"%s %s %s in %s","max_results":%d,"lang":"en","safe":true}`,
		`{"to_team":"support","subject":"Re: %s %s","body":"Hi team,\n\nThe %s %s is %s. Please review the %s before %d.\n\nThanks"}`,
		`{"sql":"SELECT id, status, total FROM orders WHERE created_at > '2026-11-%02d' AND status = '%s' LIMIT %d"}`,
		`{"cmd":"git log --oneline -n %d && go test ./... -run Test%s","cwd":"/srv/app/%s"}`,
		"2026-11-27T10:%02d:%02d.%03dZ INFO request_id=%s trace=%s method=POST path=/v1/%s status=200 dur=%dms version=v1.%d.%d\n",
		"func (h *%sHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {\n\tctx, cancel := context.WithTimeout(r.Context(), %d*time.Second)\n\tdefer cancel()\n\tif err := h.store.%s(ctx); err != nil {\n\t\thttp.Error(w, err.Error(), 500)\n\t}\n}\n",
		"The %s for %s was %s because the %s %s exceeded %d%% of the %s. Commit 9fceb02d0ae598e95dc970b74767f19372d61af8 fixed it in release %d.%d.%d.\n",
	}
	piiTemplates = []string{
		`{"to":"%s.%s@example.com","cc":"ops@corp-mail.io","body":"call me at 415-555-%04d or +44 20 7946 %04d"}`,
		`{"card":"4111 1111 1111 1111","ssn":"219-45-%04d","iban":"DE89 3704 0044 0532 0130 00","note":"%s"}`,
		"2026-11-27T10:%02d:00Z WARN login from 203.0.113.%d user=%s@example.org token=ghp_16C7e42F292c6912E7710c838347Ae178B4a\n",
		"Authorization: Bearer 8f14e45fceea167a5a36dedd4bea25%02d key=AKIAIOSFODNN7EXAMPLE peer 2001:db8::%x slack xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oO\n",
		`{"jwt":"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c","stripe":"sk_live_4eC39HqLyjWDarjtT1zdp7dc"}`,
	}
)

func fill(rng *rand.Rand, tmpl string) string {
	var args []any
	for i := 0; i < len(tmpl)-1; i++ {
		if tmpl[i] != '%' {
			continue
		}
		j := i + 1
		for j < len(tmpl) && (tmpl[j] >= '0' && tmpl[j] <= '9') {
			j++
		}
		switch tmpl[j] {
		case 's':
			args = append(args, words[rng.IntN(len(words))])
		case 'd', 'x':
			args = append(args, rng.IntN(60))
		}
		i = j
	}
	return fmt.Sprintf(tmpl, args...)
}

// corpus returns about size bytes of text; dense mixes in one PII template
// for every two clean ones (a value every ~100 bytes).
func corpus(size int, dense bool, templates []string) string {
	rng := rand.New(rand.NewPCG(42, uint64(size)))
	var b strings.Builder
	for b.Len() < size {
		if dense && rng.IntN(3) == 0 {
			b.WriteString(fill(rng, piiTemplates[rng.IntN(len(piiTemplates))]))
		} else {
			b.WriteString(fill(rng, templates[rng.IntN(len(templates))]))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// naiveRules are regular expressions for the same rules, the way a first
// implementation would write them (without validators).
var naiveRules = []struct {
	name string
	re   *regexp.Regexp
}{
	{"PRIVATE_KEY", regexp.MustCompile(`(?s)-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----`)},
	{"JWT", regexp.MustCompile(`\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`)},
	{"AWS_ACCESS_KEY", regexp.MustCompile(`\b(?:AKIA|ASIA)[A-Z0-9]{16}\b`)},
	{"AWS_SECRET_KEY", regexp.MustCompile(`(?i)(?:aws_?secret|secret_?access_?key)[A-Za-z_]*["']?\s*[:=]\s*["']?[A-Za-z0-9/+]{40}`)},
	{"GITHUB_TOKEN", regexp.MustCompile(`\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,251})\b`)},
	{"SLACK_TOKEN", regexp.MustCompile(`\bxox[baprs]-[A-Za-z0-9-]{10,}`)},
	{"STRIPE_KEY", regexp.MustCompile(`\b[srp]k_(?:live|test)_[A-Za-z0-9]{10,247}\b`)},
	{"BEARER_TOKEN", regexp.MustCompile(`(?i)\bbearer\s+[A-Za-z0-9._~+/-]{16,}=*`)},
	{"EMAIL", regexp.MustCompile(`[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`)},
	{"IBAN", regexp.MustCompile(`\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b`)},
	{"CREDIT_CARD", regexp.MustCompile(`\b(?:\d[ -]?){12,18}\d\b`)},
	{"US_SSN", regexp.MustCompile(`\b\d{3}[- ]\d{2}[- ]\d{4}\b`)},
	{"PHONE", regexp.MustCompile(`(?:\+\d{1,3}[ .-]?)?\(?\b\d{3}\)?[ .-]?\d{3}[ .-]\d{4}\b`)},
	{"IPV6", regexp.MustCompile(`\b(?:[0-9A-Fa-f]{1,4}:){2,7}:?[0-9A-Fa-f]{1,4}\b`)},
	{"IPV4", regexp.MustCompile(`\b(?:\d{1,3}\.){3}\d{1,3}\b`)},
}

func naiveRedact(s string) string {
	for _, nr := range naiveRules {
		s = nr.re.ReplaceAllString(s, "[REDACTED:"+nr.name+"]")
	}
	return s
}

var sink string

func BenchmarkRedactString(b *testing.B) {
	r := allRules(b)
	texts := []struct{ name, text string }{
		{"clean", corpus(64<<10, false, cleanTemplates)},
		{"clean-logs", corpus(64<<10, false, cleanTemplates[4:5])},
		{"clean-code", corpus(64<<10, false, cleanTemplates[5:6])},
		{"dense", corpus(64<<10, true, cleanTemplates)},
	}
	for _, tt := range texts {
		b.Run("text="+tt.name+"/impl=redact", func(b *testing.B) {
			b.SetBytes(int64(len(tt.text)))
			for b.Loop() {
				sink, _ = r.RedactString("outcome.reason", tt.text)
			}
		})
		b.Run("text="+tt.name+"/impl=naive-regexp", func(b *testing.B) {
			b.SetBytes(int64(len(tt.text)))
			for b.Loop() {
				sink = naiveRedact(tt.text)
			}
		})
	}
}

// toolArgs builds the arguments of one tool call: a JSON object of about
// 1 KiB with a search query, an e-mail body with newlines, a nested filter
// object, an array of items and a shell command. Dense arguments carry an
// e-mail address, a phone number, a card number, an IP address and a token.
func toolArgs(rng *rand.Rand, dense bool) json.RawMessage {
	w := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[rng.IntN(len(words))])
		}
		return b.String()
	}
	args := map[string]any{
		"query":       w(6),
		"max_results": rng.IntN(50),
		"filters":     map[string]any{"lang": "en", "since": "2026-11-01", "region": "eu-west-1", "tags": []string{w(1), w(1)}},
		"body":        "Hi team,\n\n" + w(25) + ".\n" + w(20) + " (see v1.26.0, build 9fceb02d).\n\nThanks",
		"items":       []any{map[string]any{"sku": "A-1234", "qty": 2, "note": w(5)}, map[string]any{"sku": "B-77", "qty": 1, "note": w(4)}},
		"cmd":         "go test ./... -run Test" + w(1) + " -count=1 2>&1 | tee /tmp/out.log",
		"request_at":  "2026-11-27T10:00:00.123Z",
	}
	if dense {
		args["to"] = []string{"alice.smith@example.com", "bob@corp-mail.io"}
		args["body"] = "Hi, call me at 415-555-2671 or +44 20 7946 0958.\n" + args["body"].(string)
		args["payment"] = map[string]any{"card": "4111 1111 1111 1111", "iban": "DE89 3704 0044 0532 0130 00"}
		args["client_ip"] = "203.0.113.7"
		args["auth"] = "Bearer 8f14e45fceea167a5a36dedd4bea2543"
	}
	b, _ := json.Marshal(args)
	return b
}

// BenchmarkRedactRecord redacts tool-call records as Redact does on the
// write path: JSON arguments, an outcome reason and attributes.
func BenchmarkRedactRecord(b *testing.B) {
	r := allRules(b)
	for _, dense := range []bool{false, true} {
		name := "clean"
		if dense {
			name = "dense"
		}
		var recs []vellum.Record
		total := 0
		rng := rand.New(rand.NewPCG(7, 7))
		for len(recs) < 64 {
			rec := vellum.Record{Action: "tool.call", Tool: vellum.Tool{Name: "x", Arguments: toolArgs(rng, dense)},
				Outcome:    vellum.Outcome{Status: "success", Reason: fill(rng, cleanTemplates[6])},
				Attributes: map[string]string{"region": "eu-west-1", "agent_version": "2.4.1"}}
			recs = append(recs, rec)
			total += len(rec.Tool.Arguments) + len(rec.Outcome.Reason) + len("eu-west-1") + len("2.4.1")
		}
		b.Run("text="+name+"-record/impl=redact", func(b *testing.B) {
			b.SetBytes(int64(total))
			attrs := map[string]string{}
			for b.Loop() {
				for i := range recs {
					rec := recs[i] // Redact rewrites fields of the copy, never the shared bytes
					clear(attrs)
					for k, v := range recs[i].Attributes {
						attrs[k] = v
					}
					rec.Attributes = attrs
					r.Redact(&rec)
				}
			}
		})
		b.Run("text="+name+"-record/impl=naive-regexp", func(b *testing.B) {
			b.SetBytes(int64(total))
			for b.Loop() {
				for i := range recs {
					sink = naiveRedact(string(recs[i].Tool.Arguments))
					sink = naiveRedact(recs[i].Outcome.Reason)
					for _, v := range recs[i].Attributes {
						sink = naiveRedact(v)
					}
				}
			}
		})
	}
}
