package redact

import "errors"

// Sentinel errors returned by New and Pseudonym. Callers test them with
// errors.Is; the wrapped message names the rule, preset or field path and
// says why it was refused.
var (
	// ErrUnknownPreset reports a preset name that is not one of Presets.
	ErrUnknownPreset = errors.New("redact: unknown preset")
	// ErrUnknownRule reports a rule name that is neither built in nor
	// defined as a custom rule.
	ErrUnknownRule = errors.New("redact: unknown rule")
	// ErrUnknownAction reports an action other than replace, mask or
	// pseudonym.
	ErrUnknownAction = errors.New("redact: unknown action")
	// ErrBadRule reports a custom rule that cannot be used: a name that is
	// not upper-case letters, digits and underscores, a duplicate name, or
	// a pattern that does not compile or matches the empty string.
	ErrBadRule = errors.New("redact: bad rule")
	// ErrPseudonymKey reports a pseudonym action (or a Pseudonym lookup)
	// without a pseudonym key of at least MinKeySize bytes.
	ErrPseudonymKey = errors.New("redact: pseudonym key missing or too short")
	// ErrBadField reports a never-redact or redact-anyway field path that is
	// malformed or contradicts another setting.
	ErrBadField = errors.New("redact: bad field path")
	// ErrConflict reports settings that contradict each other, such as a
	// rule both enabled and disabled.
	ErrConflict = errors.New("redact: conflicting settings")
	// ErrNotPseudonym reports a Pseudonym lookup for a rule that is not
	// enabled with the pseudonym action, so its tokens never appear in
	// records.
	ErrNotPseudonym = errors.New("redact: rule does not use the pseudonym action")
)
