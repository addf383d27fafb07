package redact_test

import (
	"encoding/json"
	"fmt"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/redact"
)

func ExampleRedactor_Redact() {
	r, err := redact.New(redact.Config{
		Actions: map[string]redact.Action{"CREDIT_CARD": redact.ActionMask},
	}, redact.Options{})
	if err != nil {
		panic(err)
	}
	rec := vellum.Record{
		UserID: "alice", Action: "tool.call",
		Tool: vellum.Tool{Name: "send_email", Arguments: json.RawMessage(
			`{"to": ["bob@example.com"], "body": "card 4111 1111 1111 1111, call 415-555-2671"}`)},
		Outcome: vellum.Outcome{Status: vellum.StatusSuccess},
	}
	r.Redact(&rec)
	fmt.Println(string(rec.Tool.Arguments))
	for _, red := range rec.Redactions {
		fmt.Println(red.Field, red.Rule, red.Count)
	}
	// Output:
	// {"to": ["[REDACTED:EMAIL]"], "body": "card ***************1111, call [REDACTED:PHONE]"}
	// tool.arguments.body CREDIT_CARD 1
	// tool.arguments.body PHONE 1
	// tool.arguments.to EMAIL 1
}

func ExampleRedactor_Pseudonym() {
	key := []byte("an example key of at least 32 bytes!")
	r, err := redact.New(redact.Config{Actions: map[string]redact.Action{"EMAIL": redact.ActionPseudonym}},
		redact.Options{PseudonymKey: key})
	if err != nil {
		panic(err)
	}
	out, _ := r.RedactString("outcome.reason", "mail from Alice@Example.com")
	tok, _ := r.Pseudonym("EMAIL", "alice@example.com")
	fmt.Println(out == "mail from "+tok)
	// Output: true
}
