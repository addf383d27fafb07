package redact

import (
	"encoding/json"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// maxJSONDepth bounds the nesting the argument walker follows; deeper
// arguments are redacted as plain text (encoding/json has the same limit).
const maxJSONDepth = 10000

// arguments redacts tool arguments: object keys, string values and numbers,
// each under its field path. Only the tokens that change are rewritten; all
// other bytes are copied as they are. Arguments that are not JSON are
// redacted as one plain text at "tool.arguments".
func (r *Redactor) arguments(sc *scratch, raw json.RawMessage) (json.RawMessage, bool) {
	// A view, not a copy: nothing below keeps a reference to s or to its
	// substrings past this call (changed text is built in fresh memory), and
	// the caller owns raw and does not change it while Redact runs.
	s := unsafe.String(unsafe.SliceData(raw), len(raw))
	mark := len(sc.tally)
	w := jsonWalker{r: r, sc: sc, s: s, path: append(sc.path[:0], "tool.arguments"...)}
	w.ws()
	ok := w.value()
	w.ws()
	sc.path = w.path
	if !ok || w.pos != len(s) {
		sc.tally = sc.tally[:mark]
		out, changed := r.text(sc, s, false)
		if !changed {
			return raw, false
		}
		r.tally(sc, "tool.arguments")
		return json.RawMessage(out), true // out is fresh memory (apply copies)
	}
	if w.out == nil {
		return raw, false
	}
	return append(w.out, s[w.copied:]...), true
}

// jsonWalker is a recursive-descent JSON reader that rewrites the string and
// number tokens whose redaction changes them.
type jsonWalker struct {
	r      *Redactor
	sc     *scratch
	s      string
	pos    int
	out    []byte // nil until the first change
	copied int    // s[:copied] is already in out
	path   []byte // field path of the current value
	depth  int
	off    int  // > 0 inside a never-redact value
	secret bool // the current key names an AWS secret key
}

func (w *jsonWalker) ws() {
	for w.pos < len(w.s) {
		switch w.s[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
		default:
			return
		}
	}
}

func (w *jsonWalker) value() bool {
	if w.pos >= len(w.s) {
		return false
	}
	switch c := w.s[w.pos]; {
	case c == '{':
		return w.object()
	case c == '[':
		return w.array()
	case c == '"':
		st := w.pos
		v, ok := w.str()
		if ok {
			w.rewrite(st, v, w.secret)
		}
		return ok
	case c == 't':
		return w.lit("true")
	case c == 'f':
		return w.lit("false")
	case c == 'n':
		return w.lit("null")
	case c == '-' || isDigit(c):
		return w.number()
	}
	return false
}

func (w *jsonWalker) lit(word string) bool {
	if !strings.HasPrefix(w.s[w.pos:], word) {
		return false
	}
	w.pos += len(word)
	return true
}

func (w *jsonWalker) number() bool {
	st := w.pos
	for w.pos < len(w.s) {
		c := w.s[w.pos]
		if !isDigit(c) && c != '-' && c != '+' && c != '.' && c != 'e' && c != 'E' {
			break
		}
		w.pos++
	}
	w.rewrite(st, w.s[st:w.pos], false)
	return true
}

func (w *jsonWalker) object() bool {
	if w.depth++; w.depth > maxJSONDepth {
		return false
	}
	w.pos++
	w.ws()
	if w.pos < len(w.s) && w.s[w.pos] == '}' {
		w.pos++
		w.depth--
		return true
	}
	base := len(w.path)
	for {
		if w.pos >= len(w.s) || w.s[w.pos] != '"' {
			return false
		}
		st := w.pos
		k, ok := w.str()
		if !ok {
			return false
		}
		w.path = append(append(w.path[:base], '.'), k...)
		never := w.off == 0 && w.r.argsNever && w.r.never.covers(w.path)
		if w.off == 0 && !never {
			if nk, changed := w.rewriteKey(st, k, base); changed {
				w.path = append(w.path[:base+1], nk...)
			}
		}
		w.ws()
		if w.pos >= len(w.s) || w.s[w.pos] != ':' {
			return false
		}
		w.pos++
		w.ws()
		if never {
			w.off++
		}
		secret := w.secret
		w.secret = w.r.on[ruleAWSSecret] && secretKeyName(k)
		ok = w.value()
		w.secret = secret
		if never {
			w.off--
		}
		if !ok {
			return false
		}
		w.ws()
		if w.pos >= len(w.s) {
			return false
		}
		if w.s[w.pos] == ',' {
			w.pos++
			w.ws()
			continue
		}
		if w.s[w.pos] != '}' {
			return false
		}
		w.pos++
		break
	}
	w.path = w.path[:base]
	w.depth--
	return true
}

func (w *jsonWalker) array() bool {
	if w.depth++; w.depth > maxJSONDepth {
		return false
	}
	w.pos++
	w.ws()
	if w.pos < len(w.s) && w.s[w.pos] == ']' {
		w.pos++
		w.depth--
		return true
	}
	for {
		if !w.value() {
			return false
		}
		w.ws()
		if w.pos >= len(w.s) {
			return false
		}
		if w.s[w.pos] == ',' {
			w.pos++
			w.ws()
			continue
		}
		if w.s[w.pos] != ']' {
			return false
		}
		w.pos++
		w.depth--
		return true
	}
}

// str reads the string token at w.pos and returns its value.
func (w *jsonWalker) str() (string, bool) {
	st := w.pos + 1
	i := strings.IndexByte(w.s[st:], '"')
	if i < 0 {
		return "", false
	}
	raw := w.s[st : st+i]
	if strings.IndexByte(raw, '\\') < 0 {
		w.pos = st + i + 1
		return raw, true
	}
	// Escapes: the closing quote is the first one after an even number of
	// backslashes.
	end := st + i
	for {
		n := 0
		for end-1-n >= st && w.s[end-1-n] == '\\' {
			n++
		}
		if n%2 == 0 {
			break
		}
		j := strings.IndexByte(w.s[end+1:], '"')
		if j < 0 {
			return "", false
		}
		end += 1 + j
	}
	w.pos = end + 1
	return w.unquote(w.s[st:end])
}

// rewrite redacts the value v of the token s[st:w.pos] under the current
// path and, if it changed, replaces the token with a JSON string.
func (w *jsonWalker) rewrite(st int, v string, secret bool) {
	if w.off > 0 {
		return
	}
	r, sc := w.r, w.sc
	r.find(sc, v, secret)
	if len(sc.matches) == 0 {
		return
	}
	if sc.needsRescan(r) {
		nv, _ := r.text(sc, v, secret)
		r.tallyBytes(sc, w.path)
		w.emit(st, nv)
		return
	}
	// The common case writes the redacted value straight from the scratch
	// buffer into the output, without an intermediate string.
	b := r.applyBytes(sc, v)
	r.tallyBytes(sc, w.path)
	w.emit(st, unsafe.String(unsafe.SliceData(b), len(b)))
}

// rewriteKey redacts an object key; its redactions are reported at the
// member's path with the rewritten key.
func (w *jsonWalker) rewriteKey(st int, k string, base int) (string, bool) {
	nk, changed := w.r.text(w.sc, k, false)
	if !changed {
		return k, false
	}
	w.path = append(w.path[:base+1], nk...)
	w.r.tallyBytes(w.sc, w.path)
	w.emit(st, nk)
	return nk, true
}

func (w *jsonWalker) emit(st int, v string) {
	if w.out == nil {
		w.out = make([]byte, 0, len(w.s)+len(w.s)/4+64)
	}
	w.out = append(w.out, w.s[w.copied:st]...)
	w.out = appendJSONString(w.out, v)
	w.copied = w.pos
}

// unquote decodes the inside of a JSON string literal with escapes. A lone
// surrogate becomes U+FFFD, as encoding/json decodes it.
func (w *jsonWalker) unquote(raw string) (string, bool) {
	b := w.sc.unq[:0]
	defer func() { w.sc.unq = b[:0] }()
	for len(raw) > 0 {
		k := strings.IndexByte(raw, '\\')
		if k < 0 {
			b = append(b, raw...)
			break
		}
		b = append(b, raw[:k]...)
		raw = raw[k:]
		if len(raw) < 2 {
			return "", false
		}
		switch raw[1] {
		case '"', '\\', '/':
			b = append(b, raw[1])
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r1, ok := hex4(raw, 2)
			if !ok {
				return "", false
			}
			raw = raw[6:]
			if utf16.IsSurrogate(r1) {
				if len(raw) >= 6 && raw[0] == '\\' && raw[1] == 'u' {
					if r2, ok := hex4(raw, 2); ok {
						if dec := utf16.DecodeRune(r1, r2); dec != utf8.RuneError {
							b = utf8.AppendRune(b, dec)
							raw = raw[6:]
							continue
						}
					}
				}
				r1 = utf8.RuneError
			}
			b = utf8.AppendRune(b, r1)
			continue
		default:
			return "", false
		}
		raw = raw[2:]
	}
	// A view of the scratch buffer: the value is only scanned, and the
	// buffer is not reused before the scan is done.
	return unsafe.String(unsafe.SliceData(b), len(b)), true
}

func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		var v byte
		switch {
		case isDigit(c):
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	return r, true
}

// appendJSONString appends v as a JSON string literal, escaping as
// encoding/json does except for <, > and & (which JSON does not require).
func appendJSONString(b []byte, v string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(v); {
		// Copy the run of bytes that need no escaping in one go.
		j := i
		for j < len(v) && v[j] >= 0x20 && v[j] < utf8.RuneSelf && v[j] != '"' && v[j] != '\\' {
			j++
		}
		b = append(b, v[i:j]...)
		if i = j; i == len(v) {
			break
		}
		c := v[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xf])
		default:
			b = append(b, v[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
