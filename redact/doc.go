// Package redact finds personal data and credentials in audit records and
// rewrites them before a record is encoded, chained or written. A Redactor
// is compiled once from a Config (presets of validated built-in detectors,
// custom regular-expression rules, never-redact field paths and a per-rule
// action) and records in Record.Redactions which rules fired, where and how
// often, never the value.
//
//	r, err := redact.New(redact.Config{
//		Presets: []string{"default"},
//		Actions: map[string]redact.Action{"EMAIL": redact.ActionPseudonym},
//	}, redact.Options{PseudonymKey: key}) // key: at least 32 bytes
//	if err != nil {
//		return err // names the rule, preset or field and why
//	}
//	r.Redact(&rec) // before rec.Validate, encoding and the chain
//	s, reds := r.RedactString("export.note", text)
//
// Detection is a single pass over the text that stops only at bytes where a
// detector can start (digits, '@', ':', '_', '-', and the 'J', 'x', 'A',
// 'B'/'b' of eyJ, xox, AKIA and Bearer) and runs a hand-written matcher and
// validator (Luhn, mod-97, SSA rules, NANP rules, net/netip, a JWT header
// check) on the candidate. Custom rules run package regexp, only on texts
// that contain one of their keywords. The cost is linear in the input.
//
// Redaction is idempotent, never leaves a matched value in its output, and
// returns a text in which nothing matched unchanged (the same string, not a
// copy). The pseudonym action uses HMAC-SHA256 from the standard library
// only, so the package works with GODEBUG=fips140=only.
//
// A Redactor is immutable after New and safe for concurrent use by any
// number of goroutines. The rules, presets, actions and field path syntax
// are specified in docs/redaction.md.
package redact
