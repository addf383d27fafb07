package redact

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
)

// Action says what replaces a matched value.
type Action string

// Actions. The zero value of Config.Action means ActionReplace.
const (
	// ActionReplace writes "[REDACTED:<RULE>]" in place of the value.
	ActionReplace Action = "replace"
	// ActionMask keeps the last 4 characters and writes '*' for every
	// other character; values of 4 characters or fewer are masked whole.
	ActionMask Action = "mask"
	// ActionPseudonym writes "tok_" and 32 lower-case hex digits: the first
	// 16 bytes of HMAC-SHA256(key, RULE || 0x00 || canonical value). Equal
	// values correlate across records without being revealed.
	ActionPseudonym Action = "pseudonym"
)

// MinKeySize is the smallest pseudonym key New accepts, in bytes.
const MinKeySize = 32

// maxRuleName bounds custom rule names, which also bounds the length of a
// replacement token.
const maxRuleName = 32

// Config is the redaction configuration of a deployment. It is embedded in
// the server's YAML configuration; its zero value enables the default
// preset with the replace action and the default never-redact list.
//
//	redaction:
//	  presets: [default, gdpr]
//	  action: replace
//	  disable: [IPV6]
//	  actions: {EMAIL: pseudonym, CREDIT_CARD: mask}
//	  never_redact: [attributes.build_sha]
//	  redact_anyway: [user_id]
//	  rules:
//	    - name: UK_NINO
//	      pattern: '\b[A-CEGHJ-PR-TW-Z]{2}\d{6}[A-D]\b'
type Config struct {
	// Presets names the built-in rule sets to start from (see Presets):
	// default, hipaa, pci, gdpr or none. Several presets add up. Empty
	// means [default].
	Presets []string `yaml:"presets,omitempty" json:"presets,omitempty"`
	// Enable adds rules by name (built-in rules outside the chosen presets).
	Enable []string `yaml:"enable,omitempty" json:"enable,omitempty"`
	// Disable removes rules by name, built-in or custom.
	Disable []string `yaml:"disable,omitempty" json:"disable,omitempty"`
	// Action is the action of every rule without one of its own; empty
	// means replace.
	Action Action `yaml:"action,omitempty" json:"action,omitempty"`
	// Actions sets the action of individual rules by name.
	Actions map[string]Action `yaml:"actions,omitempty" json:"actions,omitempty"`
	// Rules defines custom regular-expression rules. They are enabled
	// unless named in Disable.
	Rules []Rule `yaml:"rules,omitempty" json:"rules,omitempty"`
	// NeverRedact adds field paths that are never scanned, on top of
	// DefaultNeverRedact. A path covers the fields below it ("model" covers
	// "model.finish_reason"); "*" matches one path segment.
	NeverRedact []string `yaml:"never_redact,omitempty" json:"never_redact,omitempty"`
	// RedactAnyway takes paths off DefaultNeverRedact so that they are
	// scanned, e.g. user_id when user ids are e-mail addresses. Each must be
	// an entry of DefaultNeverRedact other than action, outcome.status and
	// outcome.mode (closed vocabularies the record schema validates).
	RedactAnyway []string `yaml:"redact_anyway,omitempty" json:"redact_anyway,omitempty"`
}

// Rule is a custom rule: a regular expression (RE2 syntax, as package
// regexp) with a name. If the pattern has a capture group named "value",
// only that group is redacted; otherwise the whole match is.
type Rule struct {
	// Name is the rule's name in redaction tokens and in
	// Record.Redactions: upper-case letters, digits and underscores, at
	// most 32 characters, starting with a letter. Lower-case is upper-cased.
	Name string `yaml:"name" json:"name"`
	// Pattern is the regular expression.
	Pattern string `yaml:"pattern" json:"pattern"`
	// Keywords are literal strings of which at least one must occur in a
	// text for the pattern to run on it (case-sensitive). Without keywords
	// the pattern's literal prefix is used; a pattern with neither runs on
	// every scanned string, which costs a full regexp pass per string.
	Keywords []string `yaml:"keywords,omitempty" json:"keywords,omitempty"`
	// Action overrides Config.Action for this rule.
	Action Action `yaml:"action,omitempty" json:"action,omitempty"`
}

// Built-in rule identifiers. Their order is the tie-break when two matches
// start at the same byte and have the same length: earlier wins.
const (
	rulePEM = iota
	ruleJWT
	ruleAWSKey
	ruleAWSSecret
	ruleGitHub
	ruleSlack
	ruleStripe
	ruleBearer
	ruleEmail
	ruleIBAN
	ruleCard
	ruleSSN
	rulePhone
	ruleIPv6
	ruleIPv4
	numBuiltins
)

var builtinNames = [numBuiltins]string{
	rulePEM:       "PRIVATE_KEY",
	ruleJWT:       "JWT",
	ruleAWSKey:    "AWS_ACCESS_KEY",
	ruleAWSSecret: "AWS_SECRET_KEY",
	ruleGitHub:    "GITHUB_TOKEN",
	ruleSlack:     "SLACK_TOKEN",
	ruleStripe:    "STRIPE_KEY",
	ruleBearer:    "BEARER_TOKEN",
	ruleEmail:     "EMAIL",
	ruleIBAN:      "IBAN",
	ruleCard:      "CREDIT_CARD",
	ruleSSN:       "US_SSN",
	rulePhone:     "PHONE",
	ruleIPv6:      "IPV6",
	ruleIPv4:      "IPV4",
}

// Builtins returns the names of the built-in rules in a stable order.
func Builtins() []string {
	out := make([]string, 0, numBuiltins)
	for _, n := range builtinNames {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

var secretRules = []int{rulePEM, ruleJWT, ruleAWSKey, ruleAWSSecret, ruleGitHub, ruleSlack, ruleStripe, ruleBearer}

// presets maps a preset name to the built-in rules it enables. Every preset
// but none includes the credential rules: a leaked secret in an audit log is
// a liability under every regime.
var presets = map[string][]int{
	"none":    nil,
	"default": append([]int{ruleEmail, rulePhone, ruleSSN, ruleCard, ruleIBAN}, secretRules...),
	"hipaa":   append([]int{ruleEmail, rulePhone, ruleSSN, ruleIPv4, ruleIPv6}, secretRules...),
	"pci":     append([]int{ruleCard}, secretRules...),
	"gdpr":    append([]int{ruleEmail, rulePhone, ruleCard, ruleIBAN, ruleIPv4, ruleIPv6}, secretRules...),
}

// Presets returns the preset names and the rules each enables, sorted.
func Presets() map[string][]string {
	out := make(map[string][]string, len(presets))
	for p, ids := range presets {
		names := []string{}
		for _, id := range ids {
			names = append(names, builtinNames[id])
		}
		slices.Sort(names)
		out[p] = names
	}
	return out
}

// DefaultNeverRedact lists the field paths that are never scanned unless
// taken off with Config.RedactAnyway: the identity and location fields an
// auditor needs to answer "who did what, where".
var DefaultNeverRedact = []string{
	"event_id", "tenant_id", "user_id", "service", "auth_mode", "action",
	"agent", "session_id", "trace_id", "request_id",
	"tool.name", "tool.call_id", "model.name", "model.provider",
	"outcome.status", "outcome.rule_id", "outcome.approver", "outcome.mode",
}

// closedFields are validated against a fixed vocabulary by the record
// schema; redacting them would only make the record invalid.
var closedFields = []string{"action", "outcome.status", "outcome.mode"}

// topFields are the scalar string fields of a record, in the order Redact
// visits them. Index i of Redactor.scanTop says whether topFields[i] is
// scanned.
var topFields = []string{
	"event_id", "tenant_id", "user_id", "service", "auth_mode", "action",
	"agent", "session_id", "trace_id", "request_id",
	"tool.name", "tool.call_id", "model.name", "model.provider", "model.finish_reason",
	"outcome.status", "outcome.reason", "outcome.rule_id", "outcome.approver", "outcome.mode",
}

// validAction reports whether a is a known action, treating "" as unset.
func validAction(a Action) bool {
	switch a {
	case "", ActionReplace, ActionMask, ActionPseudonym:
		return true
	}
	return false
}

func validRuleName(n string) bool {
	if n == "" || len(n) > maxRuleName || n[0] < 'A' || n[0] > 'Z' {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// compileRule checks and compiles one custom rule.
func compileRule(cr Rule) (rule, error) {
	name := strings.ToUpper(strings.TrimSpace(cr.Name))
	if !validRuleName(name) {
		return rule{}, fmt.Errorf("%w: custom rule name %q: want upper-case letters, digits and underscores, starting with a letter, at most %d characters", ErrBadRule, cr.Name, maxRuleName)
	}
	if !validAction(cr.Action) {
		return rule{}, fmt.Errorf("%w: rule %s: action %q (want replace, mask or pseudonym)", ErrUnknownAction, name, cr.Action)
	}
	if cr.Pattern == "" {
		return rule{}, fmt.Errorf("%w: rule %s: empty pattern", ErrBadRule, name)
	}
	re, err := regexp.Compile(cr.Pattern)
	if err != nil {
		return rule{}, fmt.Errorf("%w: rule %s: pattern does not compile: %v", ErrBadRule, name, err)
	}
	if re.MatchString("") {
		return rule{}, fmt.Errorf("%w: rule %s: pattern matches the empty string", ErrBadRule, name)
	}
	group := 0
	if i := re.SubexpIndex("value"); i > 0 {
		group = i
	}
	kw := make([]string, 0, len(cr.Keywords))
	for _, k := range cr.Keywords {
		if k == "" {
			return rule{}, fmt.Errorf("%w: rule %s: empty keyword", ErrBadRule, name)
		}
		kw = append(kw, k)
	}
	if len(kw) == 0 {
		if p := literalPrefix(cr.Pattern); p != "" {
			kw = append(kw, p)
		}
	}
	return rule{name: name, action: cr.Action, re: re, keywords: kw, group: group}, nil
}

// literalPrefix returns a literal that every match of pattern contains
// (its leading literal), or "". It reads the parsed pattern rather than
// Regexp.LiteralPrefix so that a case-insensitive literal is never taken for
// a case-sensitive keyword.
func literalPrefix(pattern string) string {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return ""
	}
	return leadingLiteral(re.Simplify())
}

func leadingLiteral(re *syntax.Regexp) string {
	switch re.Op {
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			switch sub.Op {
			case syntax.OpBeginLine, syntax.OpBeginText, syntax.OpWordBoundary, syntax.OpNoWordBoundary, syntax.OpEmptyMatch:
				continue
			}
			return leadingLiteral(sub)
		}
	case syntax.OpCapture:
		return leadingLiteral(re.Sub[0])
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase == 0 {
			return string(re.Rune)
		}
	}
	return ""
}
