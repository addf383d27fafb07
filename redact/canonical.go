package redact

import (
	"net/netip"
	"strings"
)

// canonical appends the form of v that the pseudonym action hashes, so that
// one value written in different ways gets one pseudonym: e-mail addresses
// in lower case; phone numbers as their digits with the country code (a
// 10-digit North American number gets its 1, a "(0)" trunk prefix goes);
// card numbers, SSNs and IBANs without separators; IP addresses in the form
// net/netip prints. Every other value is hashed as written.
func canonical(b []byte, id int, v string) []byte {
	switch id {
	case ruleEmail:
		for i := 0; i < len(v); i++ {
			b = append(b, lower(v[i]))
		}
		return b
	case rulePhone:
		v = strings.Replace(v, "(0)", "", 1)
		n := 0
		for i := 0; i < len(v); i++ {
			if isDigit(v[i]) {
				n++
			}
		}
		if n == 10 && !strings.HasPrefix(v, "+") {
			b = append(b, '1')
		}
		fallthrough
	case ruleCard, ruleSSN:
		for i := 0; i < len(v); i++ {
			if isDigit(v[i]) {
				b = append(b, v[i])
			}
		}
		return b
	case ruleIBAN:
		for i := 0; i < len(v); i++ {
			if v[i] != ' ' {
				b = append(b, upper(v[i]))
			}
		}
		return b
	case ruleIPv4, ruleIPv6:
		if a, err := netip.ParseAddr(v); err == nil {
			return a.AppendTo(b)
		}
	}
	return append(b, v...)
}
