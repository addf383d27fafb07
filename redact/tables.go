package redact

// Character classes, one bit each in charClass.
const (
	cDigit  = 1 << iota // 0-9
	cUpper              // A-Z
	cLower              // a-z
	cHex                // 0-9 A-F a-f
	cB64URL             // base64url alphabet: A-Z a-z 0-9 - _
	cB64                // base64 alphabet: A-Z a-z 0-9 + /
	cLocal              // e-mail local part: A-Z a-z 0-9 . _ % + -
	cTok68              // RFC 6750 b64token: A-Z a-z 0-9 - . _ ~ + /
)

var charClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		var m uint8
		switch {
		case c >= '0' && c <= '9':
			m = cDigit | cHex | cB64URL | cB64 | cLocal | cTok68
		case c >= 'A' && c <= 'Z':
			m = cUpper | cB64URL | cB64 | cLocal | cTok68
			if c <= 'F' {
				m |= cHex
			}
		case c >= 'a' && c <= 'z':
			m = cLower | cB64URL | cB64 | cLocal | cTok68
			if c <= 'f' {
				m |= cHex
			}
		}
		switch c {
		case '-':
			m |= cB64URL | cLocal | cTok68
		case '_':
			m |= cB64URL | cLocal | cTok68
		case '+':
			m |= cB64 | cLocal | cTok68
		case '/':
			m |= cB64 | cTok68
		case '.':
			m |= cLocal | cTok68
		case '%':
			m |= cLocal
		case '~':
			m |= cTok68
		}
		t[c] = m
	}
	return t
}()

func isDigit(c byte) bool { return c-'0' < 10 }
func isUpper(c byte) bool { return c-'A' < 26 }
func isAlnum(c byte) bool { return charClass[c]&(cDigit|cUpper|cLower) != 0 }

// isWord reports whether c is a letter, digit or underscore: a character
// that continues a word, so a match may not start or end next to it.
func isWord(c byte) bool { return charClass[c]&(cDigit|cUpper|cLower) != 0 || c == '_' }

// wordAt reports whether the byte at i continues a word.
func wordAt(s string, i int) bool { return i < len(s) && isWord(s[i]) }

// lower folds an ASCII letter to lower case.
func lower(c byte) byte {
	if isUpper(c) {
		return c + 'a' - 'A'
	}
	return c
}

// hasFoldPrefix reports whether s[i:] starts with prefix, ignoring ASCII
// case; prefix must be lower-case.
func hasFoldPrefix(s string, i int, prefix string) bool {
	if i < 0 || len(s)-i < len(prefix) {
		return false
	}
	for j := 0; j < len(prefix); j++ {
		if lower(s[i+j]) != prefix[j] {
			return false
		}
	}
	return true
}

// ibanLength is the IBAN length of each country in the SWIFT IBAN registry,
// indexed by the two letters of the country code.
var ibanLength = func() (t [26][26]uint8) {
	for cc, n := range map[string]uint8{
		"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
		"BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
		"EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
		"GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
		"JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25,
		"MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18,
		"NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
		"SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
		"TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
	} {
		t[cc[0]-'A'][cc[1]-'A'] = n
	}
	return t
}()

// callingCode reports the length of the ITU-T E.164 country calling code
// that digits (at least 3 of them) start with, or 0 if they start with none.
func callingCode(d []byte) int {
	if len(d) < 3 {
		return 0
	}
	a, b, c := d[0]-'0', d[1]-'0', d[2]-'0'
	two := int(a)*10 + int(b)
	three := two*10 + int(c)
	switch a {
	case 1, 7:
		return 1
	case 0:
		return 0
	}
	switch two {
	case 20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49,
		51, 52, 53, 54, 55, 56, 57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86,
		90, 91, 92, 93, 94, 95, 98:
		return 2
	}
	switch three {
	case 211, 212, 213, 216, 218,
		220, 221, 222, 223, 224, 225, 226, 227, 228, 229,
		230, 231, 232, 233, 234, 235, 236, 237, 238, 239,
		240, 241, 242, 243, 244, 245, 246, 247, 248, 249,
		250, 251, 252, 253, 254, 255, 256, 257, 258,
		260, 261, 262, 263, 264, 265, 266, 267, 268, 269,
		290, 291, 297, 298, 299,
		350, 351, 352, 353, 354, 355, 356, 357, 358, 359,
		370, 371, 372, 373, 374, 375, 376, 377, 378, 379,
		380, 381, 382, 383, 385, 386, 387, 389,
		420, 421, 423,
		500, 501, 502, 503, 504, 505, 506, 507, 508, 509,
		590, 591, 592, 593, 594, 595, 596, 597, 598, 599,
		670, 672, 673, 674, 675, 676, 677, 678, 679,
		680, 681, 682, 683, 685, 686, 687, 688, 689, 690, 691, 692,
		850, 852, 853, 855, 856, 880, 886,
		960, 961, 962, 963, 964, 965, 966, 967, 968,
		970, 971, 972, 973, 974, 975, 976, 977,
		992, 993, 994, 995, 996, 998:
		return 3
	}
	return 0
}

// upper folds an ASCII letter to upper case.
func upper(c byte) byte {
	if c-'a' < 26 {
		return c - 'a' + 'A'
	}
	return c
}
