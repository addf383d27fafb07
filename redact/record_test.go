package redact

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/vellumlog/vellum"
)

func TestRedactRecord(t *testing.T) {
	r, err := New(Config{
		NeverRedact:  []string{"tool.arguments.repo", "attributes.build"},
		RedactAnyway: []string{"user_id"},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := vellum.Record{
		TenantID: "acme", UserID: "alice@example.com", Service: "mail-bot", Action: "tool.call",
		Agent: "support", SessionID: "s-1", TraceID: "t-1", RequestID: "r-1",
		Tool: vellum.Tool{Name: "send_email", CallID: "call_1", Arguments: json.RawMessage(`{
  "to": ["bob@example.com", "carol@example.org"],
  "subject": "card 4111 1111 1111 1111",
  "items": [{"email": "dave@example.net", "qty": 2}, {"email": "erin@example.net", "pan": 5555555555554444}],
  "repo": "git@github.com:acme/x.git maintainer frank@example.com",
  "note": "esc\u0061ped \u0040 fine: gina\u0040example.com",
  "bob@example.com": true,
  "n": 12.5e3, "ok": null
}`)},
		Model:      vellum.Model{Name: "gpt", Provider: "vllm", FinishReason: "stop"},
		Outcome:    vellum.Outcome{Status: vellum.StatusDenied, Reason: "denied for 219-45-6789", RuleID: "r-7", Approver: "boss@example.com", Mode: "enforce"},
		Attributes: map[string]string{"ip": "10.0.0.1", "customer": "call +1 415 555 2671", "build": "harry@example.com", "owner:ivan@example.com": "x"},
		Redactions: []vellum.Redaction{{Rule: "EMAIL", Field: "user_id", Count: 1}},
	}
	r.Redact(&rec)

	if rec.UserID != "[REDACTED:EMAIL]" {
		t.Errorf("user_id (redact_anyway) = %q", rec.UserID)
	}
	if rec.Outcome.Approver != "boss@example.com" {
		t.Errorf("outcome.approver is on the never-redact list but became %q", rec.Outcome.Approver)
	}
	if rec.Outcome.Reason != "denied for [REDACTED:US_SSN]" {
		t.Errorf("outcome.reason = %q", rec.Outcome.Reason)
	}
	wantAttrs := map[string]string{"ip": "10.0.0.1", "customer": "call [REDACTED:PHONE]", "build": "harry@example.com", "owner:[REDACTED:EMAIL]": "x"}
	if !reflect.DeepEqual(rec.Attributes, wantAttrs) {
		t.Errorf("attributes = %v\nwant %v", rec.Attributes, wantAttrs)
	}
	wantArgs := `{
  "to": ["[REDACTED:EMAIL]", "[REDACTED:EMAIL]"],
  "subject": "card [REDACTED:CREDIT_CARD]",
  "items": [{"email": "[REDACTED:EMAIL]", "qty": 2}, {"email": "[REDACTED:EMAIL]", "pan": "[REDACTED:CREDIT_CARD]"}],
  "repo": "git@github.com:acme/x.git maintainer frank@example.com",
  "note": "escaped @ fine: [REDACTED:EMAIL]",
  "[REDACTED:EMAIL]": true,
  "n": 12.5e3, "ok": null
}`
	if string(rec.Tool.Arguments) != wantArgs {
		t.Errorf("arguments =\n%s\nwant\n%s", rec.Tool.Arguments, wantArgs)
	}
	if !json.Valid(rec.Tool.Arguments) {
		t.Error("arguments are no longer valid JSON")
	}
	want := []vellum.Redaction{
		{Rule: "PHONE", Field: "attributes.customer", Count: 1},
		{Rule: "EMAIL", Field: "attributes.owner:[REDACTED:EMAIL]", Count: 1},
		{Rule: "US_SSN", Field: "outcome.reason", Count: 1},
		{Rule: "EMAIL", Field: "tool.arguments.[REDACTED:EMAIL]", Count: 1},
		{Rule: "EMAIL", Field: "tool.arguments.items.email", Count: 2},
		{Rule: "CREDIT_CARD", Field: "tool.arguments.items.pan", Count: 1},
		{Rule: "EMAIL", Field: "tool.arguments.note", Count: 1},
		{Rule: "CREDIT_CARD", Field: "tool.arguments.subject", Count: 1},
		{Rule: "EMAIL", Field: "tool.arguments.to", Count: 2},
		{Rule: "EMAIL", Field: "user_id", Count: 2}, // 1 already there + 1
	}
	if !reflect.DeepEqual(rec.Redactions, want) {
		t.Errorf("redactions:\n got %v\nwant %v", rec.Redactions, want)
	}
	if err := rec.Validate(); err != nil {
		t.Errorf("redacted record does not validate: %v", err)
	}

	// Idempotent at record level.
	before := rec
	before.Attributes = cloneMap(rec.Attributes)
	before.Redactions = append([]vellum.Redaction(nil), rec.Redactions...)
	r.Redact(&rec)
	if !reflect.DeepEqual(before, rec) {
		t.Errorf("second Redact changed the record:\n%+v\n%+v", before, rec)
	}
}

func cloneMap(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestRedactRecordCleanUntouched(t *testing.T) {
	r := allRules(t)
	args := json.RawMessage(`{"query":"weather in Paris 2026-11-27", "limit": 10, "tags":["a","b"], "nested":{"v":"1.26.0"}}`)
	attrs := map[string]string{"region": "eu-west-1", "sha": "9fceb02d0ae598e95dc970b74767f19372d61af8"}
	rec := vellum.Record{Action: "tool.call", Tool: vellum.Tool{Name: "search", Arguments: args},
		Outcome: vellum.Outcome{Status: "success", Reason: "ok after 3 retries"}, Attributes: attrs}
	r.Redact(&rec)
	if unsafe.SliceData(rec.Tool.Arguments) != unsafe.SliceData(args) || len(rec.Tool.Arguments) != len(args) {
		t.Fatal("clean arguments were replaced")
	}
	if rec.Redactions != nil || rec.Outcome.Reason != "ok after 3 retries" || len(rec.Attributes) != 2 || rec.Attributes["sha"] != attrs["sha"] {
		t.Fatalf("clean record changed: %+v", rec)
	}
}

func TestRedactArgumentsShapes(t *testing.T) {
	r := allRules(t)
	tests := []struct {
		name, in, want string
		fields         []string
	}{
		{"top-level string", `"mail a@b.io"`, `"mail [REDACTED:EMAIL]"`, []string{"tool.arguments"}},
		{"top-level number card", `4111111111111111`, `"[REDACTED:CREDIT_CARD]"`, []string{"tool.arguments"}},
		{"not json is text", `{to: a@b.io`, `{to: [REDACTED:EMAIL]`, []string{"tool.arguments"}},
		{"trailing garbage is text", `{"a":"x@y.io"} x`, `{"a":"[REDACTED:EMAIL]"} x`, []string{"tool.arguments"}},
		{"escaped quote around email", `{"q":"say \"a@b.io\" now"}`, `{"q":"say \"[REDACTED:EMAIL]\" now"}`, []string{"tool.arguments.q"}},
		{"unicode kept", `{"q":"héllo a@b.io \u2028"}`, `{"q":"héllo [REDACTED:EMAIL] \u2028"}`, []string{"tool.arguments.q"}},
		{"nested arrays", `[[{"x":["a@b.io"]}]]`, `[[{"x":["[REDACTED:EMAIL]"]}]]`, []string{"tool.arguments.x"}},
		{"aws secret by key name", `{"aws_secret_access_key":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}`,
			`{"aws_secret_access_key":"[REDACTED:AWS_SECRET_KEY]"}`, []string{"tool.arguments.aws_secret_access_key"}},
		{"secret context does not leak to siblings", `{"aws_secret":{"x":1},"y":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}`, ``, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := vellum.Record{Tool: vellum.Tool{Arguments: json.RawMessage(tt.in)}}
			r.Redact(&rec)
			want := tt.want
			if want == "" {
				want = tt.in
			}
			if string(rec.Tool.Arguments) != want {
				t.Fatalf("got  %s\nwant %s", rec.Tool.Arguments, want)
			}
			var fields []string
			for _, red := range rec.Redactions {
				fields = append(fields, red.Field)
			}
			if !reflect.DeepEqual(fields, tt.fields) {
				t.Fatalf("fields %v, want %v", fields, tt.fields)
			}
			if json.Valid([]byte(tt.in)) && !json.Valid(rec.Tool.Arguments) {
				t.Fatal("valid JSON became invalid")
			}
		})
	}
}

func TestAttributeKeyCollision(t *testing.T) {
	r := allRules(t)
	rec := vellum.Record{Attributes: map[string]string{"a@b.io": "1", "c@d.io": "2", "[REDACTED:EMAIL]": "0"}}
	r.Redact(&rec)
	want := map[string]string{"[REDACTED:EMAIL]": "0", "[REDACTED:EMAIL]~2": "1", "[REDACTED:EMAIL]~3": "2"}
	if !reflect.DeepEqual(rec.Attributes, want) {
		t.Fatalf("attributes %v, want %v", rec.Attributes, want)
	}
}

func TestNeverRedactWholeSubtrees(t *testing.T) {
	r, err := New(Config{NeverRedact: []string{"tool.arguments", "attributes", "outcome"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := vellum.Record{
		Tool:       vellum.Tool{Arguments: json.RawMessage(`{"e":"a@b.io"}`)},
		Outcome:    vellum.Outcome{Reason: "a@b.io"},
		Model:      vellum.Model{FinishReason: "a@b.io"},
		Attributes: map[string]string{"e": "a@b.io"},
	}
	r.Redact(&rec)
	if string(rec.Tool.Arguments) != `{"e":"a@b.io"}` || rec.Outcome.Reason != "a@b.io" || rec.Attributes["e"] != "a@b.io" {
		t.Fatalf("never-redact subtree was redacted: %+v", rec)
	}
	if rec.Model.FinishReason != "[REDACTED:EMAIL]" || len(rec.Redactions) != 1 || rec.Redactions[0].Field != "model.finish_reason" {
		t.Fatalf("model.finish_reason not redacted: %+v", rec)
	}
	if got, reds := r.RedactString("outcome.reason", "a@b.io"); got != "a@b.io" || reds != nil {
		t.Fatal("RedactString ignored the never-redact list")
	}
}

func TestRedactStringNoCopy(t *testing.T) {
	r := allRules(t)
	in := strings.Repeat("nothing to see here, version 1.2.3 at 2026-11-27 ", 20)
	out, reds := r.RedactString("x", in)
	if unsafe.StringData(out) != unsafe.StringData(in) || reds != nil {
		t.Fatal("clean text was copied")
	}
	if n := testing.AllocsPerRun(100, func() { r.RedactString("x", in) }); n != 0 {
		t.Fatalf("clean text costs %v allocations", n)
	}
}

func TestCustomRules(t *testing.T) {
	r, err := New(Config{Presets: []string{"none"}, Rules: []Rule{
		{Name: "MRN", Pattern: `MRN[:# ]*(?P<value>\d{7})\b`},
		{Name: "EMP", Pattern: `\bE\d{6}\b`, Keywords: []string{"E"}},
		{Name: "ANY_REDACTED", Pattern: `REDACTED|tok_[0-9a-f]+`},
	}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ in, want string }{
		{"MRN: 1234567 and MRN#7654321", "MRN: [REDACTED:MRN] and MRN#[REDACTED:MRN]"},
		{"no keyword 1234567", "no keyword 1234567"},
		{"badge E123456.", "badge [REDACTED:EMP]."},
		// A custom rule never rewrites an existing token.
		{"[REDACTED:MRN] tok_0123456789abcdef0123456789abcdef", "[REDACTED:MRN] tok_0123456789abcdef0123456789abcdef"},
		{"REDACTED", "[REDACTED:ANY_REDACTED]"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, _ := r.RedactString("x", tt.in)
			if got != tt.want {
				t.Fatalf("got %q want %q", got, tt.want)
			}
			if again, reds := r.RedactString("x", got); again != got || reds != nil {
				t.Fatalf("not idempotent: %q -> %q", got, again)
			}
		})
	}
}
