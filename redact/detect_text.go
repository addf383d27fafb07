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
		if st == sc.lastEnd {
			// The local part runs into the previous match
			// ("1.0.0.0@x.io"): take it in, and the matches merge, for
			// its token would be read as the local part next time.
			st = sc.matches[len(sc.matches)-1].start
			break
		}
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
	end := emailDomain(sc, s, a)
	if end == 0 {
		return a + 1
	}
	// "a@b.cd@e.fg" is one match: split, its tail would become an address
	// with the first token as its local part.
	for end < len(s) && s[end] == '@' {
		e := emailDomain(sc, s, end)
		if e == 0 {
			break
		}
		end = e
	}
	if wordAt(s, end) {
		return a + 1
	}
	if end+1 < len(s) && s[end] == ':' && s[end+1] != ' ' && s[end+1] != '\n' && s[end+1] != '\t' {
		return end // user@host:path is an scp-style address
	}
	sc.add(st, end, ruleEmail)
	return end
}

// emailDomain returns the end of the domain after the '@' at s[a], or 0.
// The domain ends after the last label that is a valid TLD with only valid
// labels before it: "a@b.cd.1.2.3.4" is the address a@b.cd followed by an
// IPv4 address.
func emailDomain(sc *scratch, s string, a int) int {
	e := a + 1
	for e < len(s) && (isAlnum(s[e]) || s[e] == '.' || s[e] == '-') {
		e++
		if e-a > 254 {
			return 0
		}
	}
	sc.work += e - a
	end, labels := 0, 0
	ls := a + 1
	for i := a + 1; i <= e; i++ {
		if i < e && s[i] != '.' {
			continue
		}
		l := s[ls:i]
		if l == "" || l[0] == '-' || l[len(l)-1] == '-' || len(l) > 63 {
			break
		}
		labels++
		if labels >= 2 && validTLD(l) {
			end = i
		}
		ls = i + 1
	}
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
			return c + 1
		}
	}
	st := c
	for st > 0 && st != sc.lastEnd && hexOrColon(s[st-1]) {
		st--
		if e-st > 46 {
			return c + 1
		}
	}
	sc.work += e - st
	if st > 0 && st != sc.lastEnd && (isWord(s[st-1]) || s[st-1] == '.') {
		return c + 1
	}
	end := e
	for end > c+1 && s[end-1] == '.' {
		end--
	}
	if end >= 2 && s[end-1] == ':' && s[end-2] != ':' {
		end--
	}
	if wordAt(s, end) {
		return c + 1
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
		return c + 1
	}
	a, err := netip.ParseAddr(s[st:end])
	if err != nil || !a.Is6() || a.IsLoopback() || a.IsUnspecified() {
		return c + 1
	}
	sc.add(st, end, ruleIPv6)
	return end
}
