package redact

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/vellumlog/vellum"
)

// Options carries what does not belong in a configuration file. Its zero
// value works for every action but pseudonym.
type Options struct {
	// PseudonymKey is the HMAC-SHA256 key of the pseudonym action and of
	// Pseudonym, at least MinKeySize bytes. Keep it apart from the chain
	// key: whoever holds it can test guesses against pseudonyms. New keeps
	// a copy.
	PseudonymKey []byte
}

// rule is one compiled rule, built in or custom.
type rule struct {
	name     string
	action   Action
	token    string // "[REDACTED:NAME]"
	enabled  bool
	builtin  bool
	re       *regexp.Regexp // custom rules only
	keywords []string       // custom rules only
	group    int            // custom rules: submatch index to redact
}

// Redactor finds and rewrites personal data and secrets. It is built once by
// New, never changes afterwards, and is safe for concurrent use.
type Redactor struct {
	rules  []rule // built-ins at their rule ids, then custom rules
	on     [numBuiltins]bool
	custom []int // indices of enabled custom rules
	trig   [256]uint8
	any    bool // some rule is enabled
	// protectTok says that pseudonym tokens in a text are left alone: set
	// when a rule uses the pseudonym action or custom rules exist.
	protectTok bool

	never     neverSet
	scanTop   [len(topFieldsArr)]bool
	argsOff   bool // tool.arguments is never scanned
	argsNever bool // some never pattern reaches below tool.arguments
	attrOff   bool
	attrNever bool

	key  []byte
	pool sync.Pool
}

var topFieldsArr = [20]string(topFields)

// New compiles cfg. It fails, naming the rule, preset or field and why, on a
// pattern that does not compile, an unknown preset, rule or action, a
// pseudonym action without a key of at least MinKeySize bytes, or a field
// path that is not part of the record.
func New(cfg Config, opts Options) (*Redactor, error) {
	r := &Redactor{rules: make([]rule, numBuiltins, int(numBuiltins)+len(cfg.Rules))}
	for id, n := range builtinNames {
		r.rules[id] = rule{name: n, builtin: true}
	}
	byName := map[string]int{}
	for id, n := range builtinNames {
		byName[n] = id
	}
	for _, cr := range cfg.Rules {
		cr2, err := compileRule(cr)
		if err != nil {
			return nil, err
		}
		if _, dup := byName[cr2.name]; dup {
			return nil, fmt.Errorf("%w: rule %s is defined twice or shadows a built-in rule", ErrBadRule, cr2.name)
		}
		byName[cr2.name] = len(r.rules)
		cr2.enabled = true
		r.rules = append(r.rules, cr2)
	}
	lookup := func(what, n string) (int, error) {
		id, ok := byName[strings.ToUpper(strings.TrimSpace(n))]
		if !ok {
			return 0, fmt.Errorf("%w: %s names rule %q, which is neither built in (%s) nor a custom rule", ErrUnknownRule, what, n, strings.Join(Builtins(), ", "))
		}
		return id, nil
	}

	ps := cfg.Presets
	if len(ps) == 0 {
		ps = []string{"default"}
	}
	for _, p := range ps {
		ids, ok := presets[strings.ToLower(strings.TrimSpace(p))]
		if !ok {
			return nil, fmt.Errorf("%w: %q (want default, hipaa, pci, gdpr or none)", ErrUnknownPreset, p)
		}
		for _, id := range ids {
			r.rules[id].enabled = true
		}
	}
	enabled := map[int]bool{}
	for _, n := range cfg.Enable {
		id, err := lookup("enable", n)
		if err != nil {
			return nil, err
		}
		r.rules[id].enabled = true
		enabled[id] = true
	}
	for _, n := range cfg.Disable {
		id, err := lookup("disable", n)
		if err != nil {
			return nil, err
		}
		if enabled[id] {
			return nil, fmt.Errorf("%w: rule %s is both enabled and disabled", ErrConflict, r.rules[id].name)
		}
		r.rules[id].enabled = false
	}

	if !validAction(cfg.Action) {
		return nil, fmt.Errorf("%w: default action %q (want replace, mask or pseudonym)", ErrUnknownAction, cfg.Action)
	}
	def := cfg.Action
	if def == "" {
		def = ActionReplace
	}
	for i := range r.rules {
		if r.rules[i].action == "" {
			r.rules[i].action = def
		}
	}
	for _, n := range slices.Sorted(maps.Keys(cfg.Actions)) {
		a := cfg.Actions[n]
		id, err := lookup("actions", n)
		if err != nil {
			return nil, err
		}
		if !validAction(a) || a == "" {
			return nil, fmt.Errorf("%w: rule %s: action %q (want replace, mask or pseudonym)", ErrUnknownAction, r.rules[id].name, a)
		}
		if !r.rules[id].builtin && cfg.Rules[id-numBuiltins].Action != "" && cfg.Rules[id-numBuiltins].Action != a {
			return nil, fmt.Errorf("%w: rule %s has action %s in its definition and %s in actions", ErrConflict, r.rules[id].name, cfg.Rules[id-numBuiltins].Action, a)
		}
		r.rules[id].action = a
	}

	if len(opts.PseudonymKey) > 0 {
		if len(opts.PseudonymKey) < MinKeySize {
			return nil, fmt.Errorf("%w: the key has %d bytes, want at least %d", ErrPseudonymKey, len(opts.PseudonymKey), MinKeySize)
		}
		r.key = slices.Clone(opts.PseudonymKey)
	}
	for i := range r.rules {
		ru := &r.rules[i]
		ru.token = "[REDACTED:" + ru.name + "]"
		if !ru.enabled {
			continue
		}
		if ru.action == ActionPseudonym && r.key == nil {
			return nil, fmt.Errorf("%w: rule %s uses the pseudonym action but Options.PseudonymKey is empty", ErrPseudonymKey, ru.name)
		}
		r.any = true
		if ru.builtin {
			r.on[i] = true
		} else {
			r.custom = append(r.custom, i)
		}
	}

	if err := r.compileFields(cfg); err != nil {
		return nil, err
	}
	r.buildTriggers()
	r.pool.New = func() any { return new(scratch) }
	return r, nil
}

func (r *Redactor) compileFields(cfg Config) error {
	anyway := map[string]bool{}
	for _, p := range cfg.RedactAnyway {
		if _, err := parseField(p); err != nil {
			return err
		}
		if !slices.Contains(DefaultNeverRedact, p) {
			return fmt.Errorf("%w: redact_anyway %q is not on the default never-redact list (%s)", ErrBadField, p, strings.Join(DefaultNeverRedact, ", "))
		}
		if slices.Contains(closedFields, p) {
			return fmt.Errorf("%w: redact_anyway %q: the field has a closed vocabulary the record schema validates", ErrBadField, p)
		}
		anyway[p] = true
	}
	for _, p := range DefaultNeverRedact {
		if !anyway[p] {
			fp, _ := parseField(p)
			r.never = append(r.never, fp)
		}
	}
	for _, p := range cfg.NeverRedact {
		fp, err := parseField(p)
		if err != nil {
			return err
		}
		if anyway[p] {
			return fmt.Errorf("%w: field %q is both in never_redact and redact_anyway", ErrConflict, p)
		}
		r.never = append(r.never, fp)
	}
	for i, f := range topFieldsArr {
		r.scanTop[i] = !r.never.coversString(f)
	}
	r.argsOff = r.never.coversString("tool.arguments")
	r.argsNever = r.never.anyUnder("tool.arguments")
	r.attrOff = r.never.coversString("attributes")
	r.attrNever = r.never.anyUnder("attributes")
	return nil
}

// Rules returns the names of the enabled rules, sorted.
func (r *Redactor) Rules() []string {
	var out []string
	for _, ru := range r.rules {
		if ru.enabled {
			out = append(out, ru.name)
		}
	}
	slices.Sort(out)
	return out
}

// Pseudonym returns the token the pseudonym action writes for value under
// rule, so that an administrator who knows a value can find the records
// about it (like Vault's sys/audit-hash). The value is canonicalized as the
// rule does before hashing: "Alice@Example.com" and "alice@example.com", or
// "(415) 555-2671" and "+1 415 555 2671", give the same token.
func (r *Redactor) Pseudonym(ruleName, value string) (string, error) {
	id := -1
	for i := range r.rules {
		if r.rules[i].name == strings.ToUpper(strings.TrimSpace(ruleName)) {
			id = i
		}
	}
	if id < 0 {
		return "", fmt.Errorf("%w: %q", ErrUnknownRule, ruleName)
	}
	if r.key == nil {
		return "", fmt.Errorf("%w: Options.PseudonymKey is empty", ErrPseudonymKey)
	}
	if !r.rules[id].enabled || r.rules[id].action != ActionPseudonym {
		return "", fmt.Errorf("%w: %s", ErrNotPseudonym, r.rules[id].name)
	}
	sc := r.get()
	defer r.put(sc)
	return string(r.pseudonym(sc, nil, id, value)), nil
}

// pseudonymLen is the length of a pseudonym token: "tok_" and 32 hex digits.
const pseudonymLen = 4 + 32

// pseudonym appends the pseudonym token of value under rule id to b.
func (r *Redactor) pseudonym(sc *scratch, b []byte, id int, value string) []byte {
	if sc.mac == nil {
		sc.mac = hmac.New(sha256.New, r.key)
	}
	sc.mac.Reset()
	sc.canon = canonical(sc.canon[:0], id, value)
	sc.mac.Write([]byte(r.rules[id].name))
	sc.mac.Write([]byte{0})
	sc.mac.Write(sc.canon)
	sum := sc.mac.Sum(sc.sum[:0])
	b = append(b, "tok_"...)
	return hex.AppendEncode(b, sum[:16])
}

// scratch is per-call working memory, pooled so that a clean text costs no
// allocation.
type scratch struct {
	matches []match
	lastEnd int // the furthest end of the matches added
	rounds  []match
	protect []span
	out     []byte
	canon   []byte
	sum     [sha256.Size]byte
	mac     hash.Hash
	tally   []vellum.Redaction
	path    []byte
	unq     []byte
	keys    []string
	// work counts the bytes the detectors examine beyond the trigger scan,
	// so tests can check that the cost stays linear in the input.
	work int
}

func (r *Redactor) get() *scratch {
	sc := r.pool.Get().(*scratch)
	sc.tally = sc.tally[:0]
	return sc
}

func (r *Redactor) put(sc *scratch) {
	if cap(sc.out) > 1<<20 {
		sc.out = nil
	}
	r.pool.Put(sc)
}
