package vellum

import (
	"encoding/binary"
	"math/bits"
)

// validJSON reports whether b is one well-formed JSON value (RFC 8259) with
// optional surrounding white space, exactly as encoding/json.Valid does, at
// several times its speed: a recursive-descent scanner over bytes instead of
// a state machine calling a function per byte. Tool arguments are validated
// on every append, so this is on the hot path. FuzzValidJSON checks it
// against json.Valid. (It replaced jsontext's Value.IsValid again: that
// scanner's large stack frame made every one of 1,024 appending goroutines
// grow its stack, ~700 ns per record against ~150 here: PERFORMANCE.md,
// issue 8. The server's ingest decoder checks arguments with jsontext as it
// reads them, and Validate does not scan them again.)
//
// The scanner passes its position in and out of small functions rather
// than through a struct, so that it stays in a register, and skips the
// plain bytes of strings, most of the arguments, eight at a time
// (strStop).
func validJSON(b []byte) bool {
	i, ok := jsonValue(b, jsonWS(b, 0), 0)
	return ok && jsonWS(b, i) == len(b)
}

// maxJSONDepth bounds nesting, as encoding/json does (10000).
const maxJSONDepth = 10000

// jsonWS returns the index of the first byte at or after i that is not
// JSON white space.
func jsonWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// jsonValue scans the value starting at b[i] (no white space before it),
// nested depth levels deep, and returns the index after it.
func jsonValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '"':
		return jsonString(b, i+1)
	case c == '{':
		return jsonObject(b, i+1, depth+1)
	case c == '[':
		return jsonArray(b, i+1, depth+1)
	case c == '-' || c >= '0' && c <= '9':
		return jsonNumber(b, i)
	case c == 't':
		return jsonLiteral(b, i, "true")
	case c == 'f':
		return jsonLiteral(b, i, "false")
	case c == 'n':
		return jsonLiteral(b, i, "null")
	}
	return i, false
}

func jsonLiteral(b []byte, i int, s string) (int, bool) {
	if len(b)-i < len(s) || string(b[i:i+len(s)]) != s {
		return i, false
	}
	return i + len(s), true
}

// jsonObject scans an object whose '{' is just before b[i].
func jsonObject(b []byte, i, depth int) (int, bool) {
	if depth > maxJSONDepth {
		return i, false
	}
	i = jsonWS(b, i)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, false
		}
		var ok bool
		if i, ok = jsonString(b, i+1); !ok {
			return i, false
		}
		i = jsonWS(b, i)
		if i >= len(b) || b[i] != ':' {
			return i, false
		}
		if i, ok = jsonValue(b, jsonWS(b, i+1), depth); !ok {
			return i, false
		}
		i = jsonWS(b, i)
		if i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i = jsonWS(b, i+1)
		case '}':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// jsonArray scans an array whose '[' is just before b[i].
func jsonArray(b []byte, i, depth int) (int, bool) {
	if depth > maxJSONDepth {
		return i, false
	}
	i = jsonWS(b, i)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		var ok bool
		if i, ok = jsonValue(b, i, depth); !ok {
			return i, false
		}
		i = jsonWS(b, i)
		if i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i = jsonWS(b, i+1)
		case ']':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// jsonString scans a string whose opening quote is just before b[i]. Like
// encoding/json.Valid it accepts any bytes >= 0x20 (invalid UTF-8
// included, which the decoder would replace) and rejects control
// characters and bad escapes.
func jsonString(b []byte, i int) (int, bool) {
	for {
		// Skip to the next quote, backslash or control character.
		if len(b)-i >= 8 {
			m := strStop(binary.LittleEndian.Uint64(b[i:]))
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) >> 3
		} else {
			for i < len(b) && b[i] != '"' && b[i] != '\\' && b[i] >= 0x20 {
				i++
			}
			if i >= len(b) {
				return i, false
			}
		}
		switch b[i] {
		case '"':
			return i + 1, true
		case '\\':
			i++
			if i >= len(b) {
				return i, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if len(b)-i < 5 {
					return i, false
				}
				for _, h := range b[i+1 : i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return i, false
					}
				}
				i += 5
			default:
				return i, false
			}
		default: // a control character
			return i, false
		}
	}
}

// strStop returns, for the eight bytes of x (little-endian), a mask with
// the high bit of a byte set where the byte is a quote, a backslash or
// below 0x20, and zero when none is. Its lowest set bit is exact (a borrow
// runs only upwards from a byte that matches), so it gives the index of
// the first such byte; bits above it may be spurious.
func strStop(x uint64) uint64 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	q := x ^ (lo * '"')
	s := x ^ (lo * '\\')
	return ((q-lo)&^q | (s-lo)&^s | (x-lo*0x20)&^x) & hi
}

// jsonNumber scans a number starting at b[i], a '-' or a digit.
func jsonNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return i, false
	}
	var ok bool
	if b[i] == '0' {
		i++
	} else if i, ok = jsonDigits(b, i); !ok {
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		if i, ok = jsonDigits(b, i+1); !ok {
			return i, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i, ok = jsonDigits(b, i); !ok {
			return i, false
		}
	}
	return i, true
}

// jsonDigits scans one or more digits starting at b[i].
func jsonDigits(b []byte, i int) (int, bool) {
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i, i > start
}
