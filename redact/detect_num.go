package redact

import "net/netip"

// Number detectors: payment cards, US SSNs, phone numbers, IPv4 addresses
// and IBANs. All of them start at a digit (an IBAN at the digits after its
// country code), so the scan hands every digit run to onDigit, which parses
// the number once into groups and tries the shapes in turn.

// maxNumDigits bounds how many digits a number token collects: the longest
// shape (a 19-digit card) plus one to see that a token is too long.
const maxNumDigits = 20

// numTok is a run of digit groups separated by single spaces, dashes or dots.
type numTok struct {
	d      [maxNumDigits]byte // the digits
	nd     int                // how many digits (capped at maxNumDigits)
	groups [8]uint8           // digits per group
	ng     int
	sep    byte   // the separator, 0 if none; another separator ends the token
	ends   [8]int // index after each group
	end    int    // index after the last digit
	long   bool   // the first group has more than maxNumDigits digits
	more   bool   // further groups follow that were not read
}

// parseNum reads the number token starting at digit s[i]. It stops before
// a group that would bring the digits past maxNumDigits (more is then set)
// and reports long if the first group alone is longer than that.
func parseNum(t *numTok, s string, i int) {
	j := i
	for {
		g := 0
		for j+g < len(s) && isDigit(s[j+g]) {
			if t.nd+g < maxNumDigits {
				t.d[t.nd+g] = s[j+g]
			}
			g++
		}
		if t.nd+g > maxNumDigits {
			if t.ng == 0 {
				t.long = true
				t.end = j + g
				t.ends[0] = j + g
			} else {
				t.more = true
			}
			return
		}
		t.nd += g
		j += g
		t.groups[t.ng] = uint8(g)
		t.ends[t.ng] = j
		t.ng++
		t.end = j
		if j+1 >= len(s) || !isDigit(s[j+1]) {
			return
		}
		c := s[j]
		if c != ' ' && c != '-' && c != '.' {
			return
		}
		if t.sep != 0 && t.sep != c {
			return // another separator ends the token
		}
		if t.ng == len(t.groups) {
			t.more = true
			return
		}
		t.sep = c
		j++
	}
}

// onDigit handles the digit at s[i], the first of its run.
func (r *Redactor) onDigit(sc *scratch, s string, i int) int {
	if sc.wordBefore(s, i) {
		// Inside a word: only an IBAN starts this way (two capital letters
		// of the country code, then the check digits).
		if r.on[ruleIBAN] && i >= 2 && isUpper(s[i-1]) && isUpper(s[i-2]) && !sc.wordBefore(s, i-2) {
			if end := r.iban(sc, s, i-2); end > 0 {
				return end
			}
		}
		return skipAlnum(s, i)
	}
	if i >= 2 && (s[i-1] == '.' || s[i-1] == '-') && isDigit(s[i-2]) && i-1 != sc.lastEnd {
		// The continuation of a number that started earlier and matched
		// nothing (a date, a version, an ISBN): no shape starts here. After
		// a match it is a new number ("10.0.0.1-10.0.0.9"), as it will be
		// once the match is a token.
		return skipDigits(s, i)
	}
	if r.on[rulePhone] && i >= 1 {
		switch s[i-1] {
		case '+':
			if end := r.phoneIntl(sc, s, i-1); end > 0 {
				return end
			}
		case '(':
			if end := r.phoneParen(sc, s, i-1); end > 0 {
				return end
			}
		}
	}
	// Fast path for the common case: a lone number of fewer than 13 digits
	// ("200", "12ms", "2026,") can only be the start of no shape at all.
	j := i + 1
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	if j-i < 13 && !(j+1 < len(s) && (s[j] == ' ' || s[j] == '-' || s[j] == '.') && isDigit(s[j+1])) {
		sc.work += j - i
		return j
	}
	var t numTok
	parseNum(&t, s, i)
	sc.work += t.end - i
	first := t.ends[0]
	if t.long {
		return first
	}
	// The exact shapes must end where the token ends, or, in a token of
	// space-separated groups, before a space: "219 45 6789 10.0.0.1" is an
	// SSN and then an address, as it will be once the address is a token.
	nd := t.nd
	for g := t.ng; g >= 1; g-- {
		end := t.ends[g-1]
		if g == t.ng && !t.more && !wordAt(s, end) || g < t.ng && t.sep == ' ' {
			if id := r.shape(&t, g, nd, s[i:end]); id >= 0 {
				sc.add(i, end, id)
				return end
			}
		}
		if t.sep != ' ' {
			break
		}
		nd -= int(t.groups[g-1])
	}
	if r.on[ruleCard] && t.nd >= 13 && t.sep != '.' {
		// Try the whole token, then shorter prefixes that end at a group
		// boundary (a card number followed by a CVV or an expiry).
		nd := t.nd
		for g := t.ng - 1; g >= 0 && nd >= 13; g-- {
			if (g < t.ng-1 || !wordAt(s, t.end) && !startsNumber(s, t.end)) && cardShape(t.groups[:g+1]) && validCard(t.d[:nd]) {
				sc.add(i, t.ends[g], ruleCard)
				return t.ends[g]
			}
			nd -= int(t.groups[g])
		}
	}
	return first
}

// startsNumber reports whether s[i] is a '.' or '-' followed by a digit: a
// group just before i belongs to another number ("219-45-6789",
// "203.0.113.7") rather than to the one that ends there. These are the
// separators after which onDigit sees a continuation, so both decide alike.
func startsNumber(s string, i int) bool {
	return i+1 < len(s) && (s[i] == '.' || s[i] == '-') && isDigit(s[i+1])
}

// shape returns the rule whose exact shape the first g groups (nd digits,
// text v) of t have and whose validator accepts them, or -1.
func (r *Redactor) shape(t *numTok, g, nd int, v string) int {
	groups := [8]uint8{}
	copy(groups[:g], t.groups[:g])
	switch {
	case t.sep == '.' && g == 4:
		if r.on[ruleIPv4] && validIPv4(v) {
			return ruleIPv4
		}
	case g == 3 && groups == [8]uint8{3, 2, 4} && (t.sep == '-' || t.sep == ' '):
		if r.on[ruleSSN] && validSSN(t.d[:9]) {
			return ruleSSN
		}
	case nd == 10 && g == 3 && groups == [8]uint8{3, 3, 4} && (t.sep == '-' || t.sep == '.'):
		if r.on[rulePhone] && validNANP(t.d[:10]) {
			return rulePhone
		}
	case nd == 11 && g == 4 && groups == [8]uint8{1, 3, 3, 4} && t.d[0] == '1':
		if r.on[rulePhone] && validNANP(t.d[1:11]) {
			return rulePhone
		}
	}
	return -1
}

func skipDigits(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

func skipAlnum(s string, i int) int {
	for i < len(s) && isAlnum(s[i]) {
		i++
	}
	return i
}

// cardShape accepts an ungrouped number or groups that start with four
// digits and have at least three digits each (4-4-4-4, 4-6-5, 4-4-4-4-3).
func cardShape(g []uint8) bool {
	if len(g) == 1 {
		return true
	}
	if g[0] != 4 {
		return false
	}
	for _, n := range g[1:] {
		if n < 3 || n > 6 {
			return false
		}
	}
	return true
}

// validCard checks the length against the issuer (IIN) prefix and the Luhn
// checksum.
func validCard(d []byte) bool {
	n := len(d)
	if n < 13 || n > 19 {
		return false
	}
	p2 := int(d[0]-'0')*10 + int(d[1]-'0')
	p4 := p2*100 + int(d[2]-'0')*10 + int(d[3]-'0')
	p3 := p4 / 10
	ok := false
	switch d[0] {
	case '4': // Visa
		ok = n == 13 || n == 16 || n == 19
	case '5':
		switch {
		case p2 >= 51 && p2 <= 55: // Mastercard
			ok = n == 16
		default: // Maestro 50, 56-58
			ok = p2 != 59
		}
	case '2':
		switch {
		case p4 >= 2221 && p4 <= 2720: // Mastercard 2-series
			ok = n == 16
		case p4 >= 2200 && p4 <= 2204: // Mir
			ok = n >= 16
		}
	case '3':
		switch {
		case p2 == 34 || p2 == 37: // American Express
			ok = n == 15
		case p3 >= 300 && p3 <= 305, p2 == 36, p2 == 38, p2 == 39: // Diners Club
			ok = n >= 14
		case p4 >= 3528 && p4 <= 3589: // JCB
			ok = n >= 16
		}
	case '6': // Discover, UnionPay, Maestro, RuPay
		ok = n >= 14
	}
	return ok && luhn(d)
}

func luhn(d []byte) bool {
	sum := 0
	double := false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

// validSSN rejects what the SSA never issues: area 000, 666 and 900-999,
// group 00, serial 0000, numbers of one repeated digit, and the numbers
// published in advertising (078-05-1120, 219-09-9999, 123-45-6789).
func validSSN(d []byte) bool {
	area := string(d[0:3])
	if area == "000" || area == "666" || d[0] == '9' || string(d[3:5]) == "00" || string(d[5:9]) == "0000" {
		return false
	}
	switch string(d) {
	case "078051120", "219099999", "123456789":
		return false
	}
	for _, c := range d[1:] {
		if c != d[0] {
			return true
		}
	}
	return false
}

// validNANP checks a 10-digit North American number: area code NXX with a
// middle digit other than 9 and not N11, exchange NXX not N11.
func validNANP(d []byte) bool {
	if d[0] < '2' || d[1] == '9' || d[1] == '1' && d[2] == '1' {
		return false
	}
	if d[3] < '2' || d[4] == '1' && d[5] == '1' {
		return false
	}
	return true
}

// validIPv4 accepts a dotted quad without leading zeros, except the
// addresses that identify nobody: 0.0.0.0/8, loopback and 255.x netmasks.
func validIPv4(s string) bool {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return false
	}
	b := a.As4()
	return b[0] != 0 && b[0] != 127 && b[0] != 255
}

// phoneParen matches "(415) 555-2671" with the '(' at p, and a "1 " or
// "+1 " before it.
func (r *Redactor) phoneParen(sc *scratch, s string, p int) int {
	j := p + 1
	var d [10]byte
	n := 0
	read := func(k int) bool {
		for ; k > 0; k-- {
			if j >= len(s) || !isDigit(s[j]) {
				return false
			}
			d[n] = s[j]
			n++
			j++
		}
		return true
	}
	if !read(3) || j >= len(s) || s[j] != ')' {
		return 0
	}
	j++
	if j < len(s) && s[j] == ' ' {
		j++
	}
	if !read(3) || j >= len(s) || (s[j] != '-' && s[j] != '.' && s[j] != ' ') {
		return 0
	}
	j++
	if !read(4) || wordAt(s, j) || j+1 < len(s) && (s[j] == '-' || s[j] == '.') && isDigit(s[j+1]) {
		return 0
	}
	sc.work += j - p
	if !validNANP(d[:]) {
		return 0
	}
	start := p
	if p >= 2 && (s[p-1] == ' ' || s[p-1] == '-') && s[p-2] == '1' && !(p >= 3 && isWord(s[p-3])) {
		start = p - 2
		if start >= 1 && s[start-1] == '+' {
			start--
		}
	}
	if start == p && sc.wordBefore(s, p) {
		return 0
	}
	sc.add(start, j, rulePhone)
	return j
}

// phoneIntl matches an international number written with '+' at p:
// "+14155552671", "+44 20 7946 0958", "+44 (0)20 7946 0958", "+1 415-555-2671".
// It needs a known country calling code and 8 to 15 digits; numbers with
// country code 1 must also be valid North American numbers. When more digit
// groups follow, the longest valid prefix that ends at a group boundary is
// the number.
func (r *Redactor) phoneIntl(sc *scratch, s string, p int) int {
	if sc.wordBefore(s, p) {
		return 0
	}
	var d [15]byte
	var ends [16]int // ends[k]: index after the group that brings the count to k digits; 0 if none
	n := 0
	j := p + 1
	parens := 0
scan:
	for {
		for j < len(s) && isDigit(s[j]) {
			if n == len(d) {
				break scan
			}
			d[n] = s[j]
			n++
			j++
		}
		if parens != 1 && !wordAt(s, j) {
			ends[n] = j
		}
		if j >= len(s) {
			break
		}
		c := s[j]
		if c == ')' && parens == 1 {
			parens = 2
			j++
			if j < len(s) && s[j] == ' ' && j+1 < len(s) && isDigit(s[j+1]) {
				j++
			}
			continue
		}
		if (c == ' ' || c == '-' || c == '.') && j+1 < len(s) {
			if isDigit(s[j+1]) {
				j++
				continue
			}
			if s[j+1] == '(' && parens == 0 && shortParen(s, j+1) {
				parens = 1
				j += 2
				continue
			}
		}
		if c == '(' && parens == 0 && shortParen(s, j) {
			parens = 1
			j++
			continue
		}
		break
	}
	sc.work += j - p
	if n < 3 || callingCode(d[:n]) == 0 {
		return 0
	}
	for k := min(n, 15); k >= 8; k-- {
		e := ends[k]
		if e == 0 || startsNumber(s, e) {
			continue
		}
		if d[0] == '1' && (k != 11 || !validNANP(d[1:11])) {
			continue
		}
		if d[0] == '7' && k != 11 {
			continue
		}
		sc.add(p, e, rulePhone)
		// Scan on after the country code's group, not after the number:
		// if the number's last groups also start another number, both
		// matches merge and nothing of either survives.
		for g := p + 1; g < e; g++ {
			if !isDigit(s[g]) {
				return g
			}
		}
		return e
	}
	return 0
}

// shortParen reports whether s[i] opens a group of 1 to 4 digits and ')',
// like the "(0)" trunk prefix or "(20)" area code of an international number.
func shortParen(s string, i int) bool {
	j := i + 1
	for j < len(s) && j-i <= 5 && isDigit(s[j]) {
		j++
	}
	return j > i+1 && j-i <= 5 && j < len(s) && s[j] == ')'
}

// iban matches an IBAN whose country code starts at p, written compact
// ("DE89370400440532013000") or in groups of four separated by single spaces.
// The length must be the country's and the ISO 7064 mod-97 check must hold.
func (r *Redactor) iban(sc *scratch, s string, p int) int {
	want := int(ibanLength[s[p]-'A'][s[p+1]-'A'])
	if want == 0 || p+4 > len(s) || !isDigit(s[p+3]) {
		return 0
	}
	var buf [34]byte
	n := 0
	j := p
	spaced := p+4 < len(s) && s[p+4] == ' '
	justSpaced := false
	for n < want {
		if j >= len(s) {
			return 0
		}
		c := s[j]
		if spaced && n > 0 && n%4 == 0 && !justSpaced {
			if c != ' ' {
				return 0
			}
			j++
			justSpaced = true
			continue
		}
		justSpaced = false
		if !isDigit(c) && !isUpper(c) {
			return 0
		}
		buf[n] = c
		n++
		j++
	}
	sc.work += j - p
	if wordAt(s, j) {
		return 0
	}
	if spaced && n%4 == 0 && j+1 < len(s) && s[j] == ' ' && (isDigit(s[j+1]) || isUpper(s[j+1])) {
		return 0 // more groups follow: longer than the country's IBAN
	}
	if !validIBAN(buf[:n]) {
		return 0
	}
	sc.add(p, j, ruleIBAN)
	return j
}

// validIBAN checks the check digits (02-98) and the mod-97 remainder of the
// rearranged number (ISO 13616).
func validIBAN(b []byte) bool {
	if !isDigit(b[2]) || !isDigit(b[3]) {
		return false
	}
	cd := int(b[2]-'0')*10 + int(b[3]-'0')
	if cd < 2 || cd > 98 {
		return false
	}
	rem := 0
	add := func(c byte) {
		if isDigit(c) {
			rem = (rem*10 + int(c-'0')) % 97
		} else {
			rem = (rem*100 + int(c-'A') + 10) % 97
		}
	}
	for _, c := range b[4:] {
		add(c)
	}
	for _, c := range b[:4] {
		add(c)
	}
	return rem == 1
}
