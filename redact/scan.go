package redact

import (
	"cmp"
	"slices"
	"strings"
)

// match is a span of the text that rule rule matched.
type match struct {
	start, end int
	rule       int
}

// span is a half-open byte range.
type span struct{ start, end int }

// Trigger classes: the bytes the scan stops at. Everything else is skipped
// with one table lookup per byte, which is what makes clean text cheap.
const (
	tNone       = iota
	tDigit      // numbers: card, SSN, phone, IPv4, IBAN
	tAt         // e-mail
	tColon      // IPv6; "[REDACTED:" tokens
	tUnderscore // ghp_, github_pat_, sk_live_, aws_secret, tok_
	tDash       // -----BEGIN; aws-secret, secret-access-key
	tJ          // eyJ (JWT)
	tX          // xox? (Slack)
	tA          // AKIA, ASIA; SecretAccessKey
	tB          // Bearer
)

func (r *Redactor) buildTriggers() {
	r.protectTok = len(r.custom) > 0
	for i := range r.rules {
		if r.rules[i].enabled && r.rules[i].action == ActionPseudonym {
			r.protectTok = true
		}
	}
	set := func(t uint8, cs string) {
		for i := 0; i < len(cs); i++ {
			r.trig[cs[i]] = t
		}
	}
	if r.on[ruleCard] || r.on[rulePhone] || r.on[ruleSSN] || r.on[ruleIPv4] || r.on[ruleIBAN] {
		set(tDigit, "0123456789")
	}
	if r.on[ruleEmail] {
		set(tAt, "@")
	}
	if r.on[ruleIPv6] {
		set(tColon, ":")
	}
	if r.on[ruleGitHub] || r.on[ruleStripe] || r.on[ruleAWSSecret] {
		set(tUnderscore, "_")
	}
	if r.on[rulePEM] || r.on[ruleAWSSecret] {
		set(tDash, "-")
	}
	if r.on[ruleJWT] {
		set(tJ, "J")
	}
	if r.on[ruleSlack] {
		set(tX, "x")
	}
	if r.on[ruleAWSKey] || r.on[ruleAWSSecret] {
		set(tA, "A")
	}
	if r.on[ruleBearer] {
		set(tB, "Bb")
	}
}

// find fills sc.matches with the non-overlapping matches in s, in order.
// secretCtx says that the field's name is an AWS secret key name, so that
// AWS_SECRET_KEY looks at the whole text rather than only near a keyword.
func (r *Redactor) find(sc *scratch, s string, secretCtx bool) {
	sc.matches = sc.matches[:0]
	sc.protect = sc.protect[:0]
	sc.lastEnd = -1
	if !r.any || len(s) == 0 {
		return
	}
	trig := &r.trig
	for i := 0; i < len(s); i++ {
		t := trig[s[i]]
		if t == tNone {
			continue
		}
		next := i + 1
		switch t {
		case tDigit:
			next = r.onDigit(sc, s, i)
		case tAt:
			next = r.onAt(sc, s, i)
		case tColon:
			next = r.onColon(sc, s, i)
		case tUnderscore:
			next = r.onUnderscore(sc, s, i)
		case tDash:
			next = r.onDash(sc, s, i)
		case tJ:
			next = r.onJ(sc, s, i)
		case tX:
			next = r.onX(sc, s, i)
		case tA:
			next = r.onA(sc, s, i)
		case tB:
			next = r.onB(sc, s, i)
		}
		i = next - 1
	}
	if secretCtx && r.on[ruleAWSSecret] {
		r.awsSecretIn(sc, s, 0, len(s), false)
	}
	for _, id := range r.custom {
		r.findCustom(sc, s, id)
	}
	if r.protectTok && len(sc.matches) > 0 {
		protect(sc, s)
	}
	if len(sc.matches) > 1 || len(sc.matches) == 1 && len(sc.protect) > 0 {
		resolve(sc)
	}
}

func (sc *scratch) add(start, end, rule int) {
	sc.matches = append(sc.matches, match{start, end, rule})
	sc.lastEnd = max(sc.lastEnd, end)
}

// wordBefore reports whether the byte before i continues a word. The end
// of a match counts as a word boundary: once the match is a token ('[...]'),
// it will be one, and a detector must decide the same way in both passes
// for redaction to be idempotent.
func (sc *scratch) wordBefore(s string, i int) bool {
	return i > 0 && isWord(s[i-1]) && i != sc.lastEnd
}

// findCustom runs custom rule id on s if one of its keywords occurs in s.
func (r *Redactor) findCustom(sc *scratch, s string, id int) {
	ru := &r.rules[id]
	if len(ru.keywords) > 0 {
		found := false
		for _, k := range ru.keywords {
			if strings.Contains(s, k) {
				found = true
				break
			}
		}
		if !found {
			return
		}
	}
	sc.work += len(s)
	if ru.group == 0 {
		for _, m := range ru.re.FindAllStringIndex(s, -1) {
			if m[1] > m[0] {
				sc.add(m[0], m[1], id)
			}
		}
		return
	}
	for _, m := range ru.re.FindAllStringSubmatchIndex(s, -1) {
		a, b := m[2*ru.group], m[2*ru.group+1]
		if a >= 0 && b > a {
			sc.add(a, b, id)
		}
	}
}

// resolve sorts the matches and makes them disjoint: overlapping matches
// become one span named by the match that starts first (then the longest,
// then the lower rule id: built-in rules in their priority order, then
// custom rules in configuration order). A match that overlaps an existing
// redaction token is dropped, which keeps custom rules from rewriting tokens
// and so keeps redaction idempotent.
func resolve(sc *scratch) {
	ms := sc.matches
	slices.SortFunc(ms, func(a, b match) int {
		if c := cmp.Compare(a.start, b.start); c != 0 {
			return c
		}
		if c := cmp.Compare(b.end, a.end); c != 0 {
			return c
		}
		return cmp.Compare(a.rule, b.rule)
	})
	out := ms[:0]
	for _, m := range ms {
		if overlapsAny(sc.protect, m) {
			continue
		}
		if n := len(out); n > 0 && m.start < out[n-1].end {
			// Overlapping matches merge into one span under the first
			// rule, so that no part of either value survives and the
			// rest of one cannot match anew next to the other's token.
			if merged := (match{out[n-1].start, max(out[n-1].end, m.end), out[n-1].rule}); !overlapsAny(sc.protect, merged) {
				out[n-1] = merged
			}
			continue
		}
		out = append(out, m)
	}
	sc.matches = out
}

func overlapsAny(ps []span, m match) bool {
	for _, p := range ps {
		if m.start < p.end && p.start < m.end {
			return true
		}
	}
	return false
}

// apply writes s with every match rendered by its rule's action.
func (r *Redactor) apply(sc *scratch, s string) string {
	return string(r.applyBytes(sc, s))
}

// applyBytes is apply into sc.out, valid until the next use of sc.
func (r *Redactor) applyBytes(sc *scratch, s string) []byte {
	b := sc.out[:0]
	last := 0
	for _, m := range sc.matches {
		b = append(b, s[last:m.start]...)
		b = r.render(sc, b, m.rule, s[m.start:m.end])
		last = m.end
	}
	b = append(b, s[last:]...)
	sc.out = b
	return b
}

func (r *Redactor) render(sc *scratch, b []byte, id int, v string) []byte {
	switch r.rules[id].action {
	case ActionMask:
		return mask(b, v)
	case ActionPseudonym:
		return r.pseudonym(sc, b, id, v)
	default:
		return append(b, r.rules[id].token...)
	}
}

// mask appends v with every character but the last four replaced by '*'.
// A value of four characters or fewer is masked whole.
func mask(b []byte, v string) []byte {
	n := 0
	for range v {
		n++
	}
	keep := 4
	if n <= 4 {
		keep = 0
	}
	i := 0
	for j := range v {
		if i == n-keep {
			return append(b, v[j:]...)
		}
		b = append(b, '*')
		i++
	}
	return b
}

// protect records the redaction tokens that overlap a match, so that
// resolve drops the match and a token is never rewritten. "[REDACTED:...]"
// tokens matter to custom rules (no built-in detector matches '[' or ']');
// pseudonyms also to built-in ones, since "tok_" and hex digits can continue
// a bearer token or an e-mail local part.
func protect(sc *scratch, s string) {
	const longest = len("[REDACTED:]") + maxRuleName
	for _, m := range sc.matches {
		from := max(0, m.start-longest)
		for i := from; i < m.end; {
			k := strings.IndexAny(s[i:m.end], "t[")
			if k < 0 {
				break
			}
			p := i + k
			switch {
			case isPseudonym(s, p):
				sc.protect = append(sc.protect, span{p, p + pseudonymLen})
			case strings.HasPrefix(s[p:], "[REDACTED:"):
				j := p + len("[REDACTED:")
				for j < len(s) && j-p <= longest && (isUpper(s[j]) || isDigit(s[j]) || s[j] == '_') {
					j++
				}
				if j < len(s) && s[j] == ']' {
					sc.protect = append(sc.protect, span{p, j + 1})
				}
			}
			i = p + 1
		}
		sc.work += m.end - from
	}
}

// isPseudonym reports whether s[i:] starts with a pseudonym token that is
// not followed by another word character.
func isPseudonym(s string, i int) bool {
	if len(s)-i < pseudonymLen || s[i:i+4] != "tok_" {
		return false
	}
	for j := i + 4; j < i+pseudonymLen; j++ {
		c := s[j]
		if !(isDigit(c) || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return !wordAt(s, i+pseudonymLen)
}
