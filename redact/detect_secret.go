package redact

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// Credential detectors. Each starts at a rare byte of a fixed prefix (the
// '_' of "ghp_", the 'J' of "eyJ", ...) and checks the prefix around it, so
// the scan only stops where a credential can start.

// runOf returns the end of the run of bytes of class cls starting at i.
func runOf(s string, i int, cls uint8) int {
	for i < len(s) && charClass[s[i]]&cls != 0 {
		i++
	}
	return i
}

func runAlnum(s string, i int) int {
	for i < len(s) && isAlnum(s[i]) {
		i++
	}
	return i
}

// onUnderscore handles GitHub tokens (ghp_, gho_, ghu_, ghs_, ghr_ and
// github_pat_), Stripe-style keys (sk_, rk_, pk_ then live_ or test_) and
// the aws_secret / secret_access_key keywords.
func (r *Redactor) onUnderscore(sc *scratch, s string, u int) int {
	if r.on[ruleGitHub] {
		if u >= 3 && s[u-3] == 'g' && s[u-2] == 'h' && strings.IndexByte("pousr", s[u-1]) >= 0 && !sc.wordBefore(s, u-3) {
			e := runAlnum(s, u+1)
			sc.work += e - u
			if n := e - u - 1; n >= 36 && n <= 251 && !wordAt(s, e) {
				sc.add(u-3, e, ruleGitHub)
				return e
			}
		}
		if u >= 6 && s[u-6:u] == "github" && strings.HasPrefix(s[u:], "_pat_") && !sc.wordBefore(s, u-6) {
			e := u + 5
			for e < len(s) && (isAlnum(s[e]) || s[e] == '_') {
				e++
			}
			sc.work += e - u
			if n := e - u - 5; n >= 22 && n <= 251 && !wordAt(s, e) {
				sc.add(u-6, e, ruleGitHub)
				return e
			}
		}
	}
	if r.on[ruleStripe] && u >= 2 && s[u-1] == 'k' && (s[u-2] == 's' || s[u-2] == 'r' || s[u-2] == 'p') && !sc.wordBefore(s, u-2) &&
		(strings.HasPrefix(s[u+1:], "live_") || strings.HasPrefix(s[u+1:], "test_")) {
		e := runAlnum(s, u+6)
		sc.work += e - u
		if n := e - u - 6; n >= 10 && n <= 247 && !wordAt(s, e) {
			sc.add(u-2, e, ruleStripe)
			return e
		}
	}
	if r.on[ruleAWSSecret] {
		if e := r.awsKeyword(sc, s, u); e > 0 {
			return e
		}
	}
	return u + 1
}

// onDash handles PEM private key blocks and the aws-secret and
// secret-access-key keywords.
func (r *Redactor) onDash(sc *scratch, s string, i int) int {
	if r.on[rulePEM] && strings.HasPrefix(s[i:], "-----BEGIN ") {
		if e := r.pem(sc, s, i); e > 0 {
			return e
		}
	}
	if r.on[ruleAWSSecret] {
		if e := r.awsKeyword(sc, s, i); e > 0 {
			return e
		}
	}
	return i + 1
}

// pem matches "-----BEGIN <label>-----" where the label (upper-case letters,
// digits and spaces) contains "PRIVATE KEY", through the matching
// "-----END ...-----" line or, if there is none, to the end of the text:
// a truncated key is still a key.
func (r *Redactor) pem(sc *scratch, s string, i int) int {
	ls := i + len("-----BEGIN ")
	le := ls
	for le < len(s) && le-ls <= 64 && (isUpper(s[le]) || isDigit(s[le]) || s[le] == ' ') {
		le++
	}
	if !strings.HasPrefix(s[le:], "-----") || !strings.Contains(s[ls:le], "PRIVATE KEY") {
		return 0
	}
	body := le + 5
	end := len(s)
	if k := strings.Index(s[body:], "-----END "); k >= 0 {
		e := body + k + len("-----END ")
		for e < len(s) && e-body-k <= 80 && (isUpper(s[e]) || isDigit(s[e]) || s[e] == ' ') {
			e++
		}
		if strings.HasPrefix(s[e:], "-----") {
			end = e + 5
		}
	}
	sc.work += end - i
	sc.add(i, end, rulePEM)
	return end
}

// onJ matches a JWT at the "eyJ" ending at s[j]: three base64url parts
// joined by dots (the signature may be empty) whose first part decodes to a
// JSON object with an "alg" member.
func (r *Redactor) onJ(sc *scratch, s string, j int) int {
	if j < 2 || s[j-1] != 'y' || s[j-2] != 'e' {
		return j + 1
	}
	p := j - 2
	if p > 0 && p != sc.lastEnd && (charClass[s[p-1]]&cB64URL != 0 || s[p-1] == '.') {
		return j + 1
	}
	e1 := runOf(s, p, cB64URL)
	sc.work += e1 - p
	if e1+1 >= len(s) || s[e1] != '.' || e1-p < 10 || e1-p > 4096 {
		return j + 1
	}
	e2 := runOf(s, e1+1, cB64URL)
	sc.work += e2 - e1
	if e2 == e1+1 || e2 >= len(s) || s[e2] != '.' {
		return j + 1
	}
	e3 := runOf(s, e2+1, cB64URL)
	sc.work += e3 - e2
	if e3 < len(s) && (s[e3] == '.' || s[e3] == '=') {
		return j + 1
	}
	hdr, err := base64.RawURLEncoding.DecodeString(s[p:e1])
	if err != nil {
		return j + 1
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(hdr, &fields) != nil {
		return j + 1
	}
	if _, ok := fields["alg"]; !ok {
		return j + 1
	}
	sc.add(p, e3, ruleJWT)
	return e3
}

// onX matches a Slack token: "xox" then one of b, a, p, r, s, a dash and at
// least ten letters, digits and dashes.
func (r *Redactor) onX(sc *scratch, s string, i int) int {
	if i+5 > len(s) || s[i+1] != 'o' || s[i+2] != 'x' || strings.IndexByte("baprs", s[i+3]) < 0 || s[i+4] != '-' || sc.wordBefore(s, i) {
		return i + 1
	}
	e := i + 5
	for e < len(s) && (isAlnum(s[e]) || s[e] == '-') {
		e++
	}
	sc.work += e - i
	if n := e - i - 5; n < 10 || n > 250 || wordAt(s, e) {
		return e
	}
	sc.add(i, e, ruleSlack)
	return e
}

// onA matches an AWS access key id (AKIA or ASIA and 16 upper-case letters
// or digits) and the SecretAccessKey keyword.
func (r *Redactor) onA(sc *scratch, s string, i int) int {
	if r.on[ruleAWSKey] && i+20 <= len(s) && (s[i+1] == 'K' || s[i+1] == 'S') && s[i+2] == 'I' && s[i+3] == 'A' && !sc.wordBefore(s, i) {
		e := i + 4
		for e < i+20 && (isUpper(s[e]) || isDigit(s[e])) {
			e++
		}
		if e == i+20 && !wordAt(s, e) {
			sc.add(i, e, ruleAWSKey)
			return e
		}
	}
	if r.on[ruleAWSSecret] && i >= 6 && strings.HasPrefix(s[i:], "AccessKey") && hasFoldPrefix(s, i-6, "secret") {
		return r.awsSecretNear(sc, s, i+len("AccessKey"))
	}
	return i + 1
}

// onB matches the credentials of "Bearer <token>" (any case, at a word
// start): a b64token (RFC 6750) of at least 16 characters with a digit.
// Only the token is redacted; "Bearer " stays.
func (r *Redactor) onB(sc *scratch, s string, i int) int {
	if !hasFoldPrefix(s, i, "bearer") || sc.wordBefore(s, i) {
		return i + 1
	}
	j := i + 6
	sp := j
	for j < len(s) && (s[j] == ' ' || s[j] == '\t') && j-sp < 8 {
		j++
	}
	if j == sp {
		return i + 1
	}
	st := j
	j = runOf(s, st, cTok68)
	for j > st && s[j-1] == '.' {
		j--
	}
	end := j
	for end < len(s) && (s[end] == '=' || charClass[s[end]]&cTok68 != 0 && end > j) {
		end++ // padding, and whatever sticks to it: "abc==def" is one credential
	}
	for end > j && s[end-1] == '.' {
		end--
	}
	sc.work += end - i
	if j-st < 16 || end-st == pseudonymLen && isPseudonym(s, st) {
		return end
	}
	digit := false
	for k := st; k < j; k++ {
		if isDigit(s[k]) {
			digit = true
			break
		}
	}
	if !digit {
		return end
	}
	sc.add(st, end, ruleBearer)
	return end
}

// awsKeyword recognizes aws_secret, aws-secret, secret_access_key and
// secret-access-key (any case) at the separator s[u] and looks for the
// secret after the keyword.
func (r *Redactor) awsKeyword(sc *scratch, s string, u int) int {
	switch {
	case hasFoldPrefix(s, u-3, "aws") && hasFoldPrefix(s, u+1, "secret"):
	case hasFoldPrefix(s, u-6, "secret") && hasFoldPrefix(s, u+1, "access") && u+7 < len(s) && (s[u+7] == '_' || s[u+7] == '-') && hasFoldPrefix(s, u+8, "key"):
	default:
		return 0
	}
	k := u + 1
	for k < len(s) && (isAlnum(s[k]) || s[k] == '_' || s[k] == '-') {
		k++
	}
	return r.awsSecretNear(sc, s, k)
}

// awsSecretNear matches a secret access key that is the value right after
// the keyword ending at k: after at most 16 bytes of spaces, quotes, '=',
// ':' or backslashes (aws_secret_access_key = X, "SecretAccessKey": "X",
// AWS_SECRET_ACCESS_KEY=X). It returns where the scan goes on.
func (r *Redactor) awsSecretNear(sc *scratch, s string, k int) int {
	j := k
	for j < len(s) && j-k < 16 && strings.IndexByte(" \t:=\"'`\\", s[j]) >= 0 {
		j++
	}
	if j == len(s) || charClass[s[j]]&cB64 == 0 {
		return k
	}
	if e := r.awsSecretIn(sc, s, j, j+1, true); e > 0 {
		return e
	}
	return k
}

// awsSecretIn finds secret access keys starting in s[from:to]: runs of
// exactly 40 base64 characters with an upper-case letter, a lower-case
// letter and a digit (which a hex digest never has). With first it stops at
// the first and returns its end.
func (r *Redactor) awsSecretIn(sc *scratch, s string, from, to int, first bool) int {
	i := from
	for i < to {
		if charClass[s[i]]&cB64 == 0 || i > 0 && charClass[s[i-1]]&cB64 != 0 {
			i++
			continue
		}
		e := runOf(s, i, cB64)
		sc.work += e - i
		if e-i == 40 && (e == len(s) || s[e] != '=' && s[e] != '_' && s[e] != '-') && mixed(s[i:e]) {
			sc.add(i, e, ruleAWSSecret)
			if first {
				return e
			}
		}
		i = e
	}
	return 0
}

func mixed(v string) bool {
	var m uint8
	for i := 0; i < len(v); i++ {
		m |= charClass[v[i]]
	}
	return m&cUpper != 0 && m&cLower != 0 && m&cDigit != 0
}

// secretKeyName reports whether a field or key name says its value is an
// AWS secret access key.
func secretKeyName(name string) bool {
	if len(name) < 10 {
		return false
	}
	for i := 0; i+10 <= len(name); i++ {
		if c := name[i] | 0x20; c != 'a' && c != 's' {
			continue
		}
		if hasFoldPrefix(name, i, "aws_secret") || hasFoldPrefix(name, i, "aws-secret") ||
			hasFoldPrefix(name, i, "secret_access_key") || hasFoldPrefix(name, i, "secretaccesskey") ||
			hasFoldPrefix(name, i, "secret-access-key") {
			return true
		}
	}
	return false
}
