package redact

import (
	"net/netip"
	"strings"
)

// onAt matches an e-mail address around the '@' at s[a]: a local part of up
// to 64 characters [A-Za-z0-9._%+-] that does not end with a dot, and a
// domain of at least two labels whose last label (the TLD) is at least two
// letters or an "xn--" label. "git@github.com:org/repo" (scp-style git and
// ssh addresses) is not an e-mail address.
func (r *Redactor) onAt(sc *scratch, s string, a int) int {
	st := a
	for st > 0 && charClass[s[st-1]]&cLocal != 0 {
		st--
		if a-st > 64 {
			return a + 1
		}
	}
	for st < a && s[st] == '.' {
		st++
	}
	if st == a || s[a-1] == '.' {
		return a + 1
	}
	e := a + 1
	for e < len(s) && (isAlnum(s[e]) || s[e] == '.' || s[e] == '-') {
		e++
		if e-a > 254 {
			return a + 1
		}
	}
	sc.work += e - st
	end := e
	for end > a+1 && s[end-1] == '.' {
		end--
	}
	if wordAt(s, end) || end < len(s) && s[end] == '-' {
		return a + 1
	}
	// Check the labels right to left; the last one is the TLD.
	labels := 0
	le := end
	for i := end - 1; i >= a; i-- {
		if i > a && s[i] != '.' {
			continue
		}
		l := s[i+1 : le]
		if l == "" || l[0] == '-' || l[len(l)-1] == '-' || len(l) > 63 {
			return a + 1
		}
		if labels == 0 && !validTLD(l) {
			return a + 1
		}
		labels++
		le = i
	}
	if labels < 2 {
		return a + 1
	}
	if end+1 < len(s) && s[end] == ':' && s[end+1] != ' ' && s[end+1] != '\n' && s[end+1] != '\t' {
		return end // user@host:path is an scp-style address
	}
	sc.add(st, end, ruleEmail)
	return end
}

func validTLD(l string) bool {
	if len(l) < 2 {
		return false
	}
	if len(l) > 4 && lower(l[0]) == 'x' && lower(l[1]) == 'n' && l[2] == '-' && l[3] == '-' {
		return true
	}
	for i := 0; i < len(l); i++ {
		if charClass[l[i]]&(cUpper|cLower) == 0 {
			return false
		}
	}
	return true
}

// onColon matches an IPv6 address around the ':' at s[c]: a run of hex
// digits and colons (with an optional dotted IPv4 tail) of at least three
// groups that net/netip parses as IPv6, bounded by non-word characters.
// Loopback and the unspecified address identify nobody and stay.
func (r *Redactor) onColon(sc *scratch, s string, c int) int {
	if len(r.custom) > 0 {
		r.protectedAt(sc, s, c)
	}
	if !r.on[ruleIPv6] {
		return c + 1
	}
	hexOrColon := func(b byte) bool { return charClass[b]&cHex != 0 || b == ':' }
	if !(c > 0 && charClass[s[c-1]]&cHex != 0 || c+1 < len(s) && hexOrColon(s[c+1])) {
		return c + 1
	}
	e := c + 1
	for e < len(s) && (hexOrColon(s[e]) || s[e] == '.') {
		e++
		if e-c > 46 {
			return skipAddr(s, e)
		}
	}
	st := c
	for st > 0 && hexOrColon(s[st-1]) {
		st--
		if e-st > 46 {
			return e
		}
	}
	sc.work += e - st
	if st > 0 && st != sc.lastEnd && (isWord(s[st-1]) || s[st-1] == '.') {
		return e
	}
	end := e
	for end > c+1 && s[end-1] == '.' {
		end--
	}
	if end >= 2 && s[end-1] == ':' && s[end-2] != ':' {
		end--
	}
	if wordAt(s, end) {
		return e
	}
	colons, groups, double := 0, 0, false
	for i := st; i < end; i++ {
		if s[i] == ':' {
			colons++
			if i+1 < end && s[i+1] == ':' {
				double = true
			}
		} else if i == st || s[i-1] == ':' {
			groups++
		}
	}
	if strings.IndexByte(s[st:end], '.') >= 0 {
		groups++ // a dotted IPv4 tail stands for two groups
	}
	if groups < 3 || (!double && colons < 6) {
		return e
	}
	a, err := netip.ParseAddr(s[st:end])
	if err != nil || !a.Is6() || a.IsLoopback() || a.IsUnspecified() {
		return e
	}
	sc.add(st, end, ruleIPv6)
	return e
}

func skipAddr(s string, i int) int {
	for i < len(s) && (charClass[s[i]]&cHex != 0 || s[i] == ':' || s[i] == '.') {
		i++
	}
	return i
}
