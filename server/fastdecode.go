package server

import (
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"strings"
	"time"
	"unsafe"

	"github.com/vellumlog/vellum"
)

// The fast path of decodeEvents: a hand-written scanner for the plain
// bodies agents send (ASCII strings without escapes, known fields, no
// nulls), which decodes them into exactly the records the jsontext path
// would. It accepts only a subset of what that path accepts and never
// reports an error: on anything outside the subset (an escape, a byte
// above 0x7F, null, an unknown or repeated field, a number with a
// fraction, deep tool arguments, a malformed body, a record that fails
// its checks) it gives up, and decodeEvents decodes the whole body again
// with jsontext, which accepts it or says what is wrong exactly as
// before. jsontext's decoding was ~2.5 µs per event, the largest share of
// the server's own CPU per event in batches (issue 14's profile).
// FuzzFastDecode holds the two paths to the same records and offsets.

// fastDecoder scans one body; it is used once.
type fastDecoder struct {
	b     []byte
	off   int
	arena []byte         // as eventDecoder.arena: the records' strings, never rewritten
	sc    *ingestScratch // nil, or where the attribute maps come from
}

// fastArgsDepth bounds the nesting of tool arguments the fast path takes;
// deeper arguments go to jsontext, which applies the real bound.
const fastArgsDepth = 64

// fastDecodeEvents decodes body as decodeEvents would, or returns ok
// false when it leaves the body to the jsontext path.
func fastDecodeEvents(body []byte, opts DecodeOptions, starts *[]int, check bool) (recs []vellum.Record, ok bool) {
	return fastDecodeInto(nil, body, opts, starts, check)
}

// fastDecodeInto is fastDecodeEvents decoding into sc's records and arena
// when sc is not nil (scratch.go); sc keeps the arena, and takes back the
// records with release. When it gives up, sc's records are zero again.
func fastDecodeInto(sc *ingestScratch, body []byte, opts DecodeOptions, starts *[]int, check bool) (recs []vellum.Record, ok bool) {
	f := fastDecoder{b: body, sc: sc}
	if sc != nil && cap(sc.arena) >= len(body) {
		f.arena = sc.arena[:0]
	} else {
		f.arena = make([]byte, 0, len(body))
	}
	if sc != nil {
		recs, sc.recs = sc.recs[:0], nil
	}
	recs, ok = f.events(recs, opts, starts, check)
	if sc != nil {
		sc.arena = f.arena[:0]
		if !ok {
			clear(recs[:cap(recs)])
			sc.recs = recs[:0]
		}
	}
	if !ok {
		return nil, false
	}
	return recs, true
}

func (f *fastDecoder) events(recs []vellum.Record, opts DecodeOptions, starts *[]int, check bool) ([]vellum.Record, bool) {
	body := f.b
	f.space()
	if f.off == len(body) {
		return recs, false
	}
	array := body[f.off] == '[' && !opts.NDJSON
	if array {
		f.off++
		f.space()
	}
	if cap(recs) == 0 {
		recs = make([]vellum.Record, 0, 1)
	}
	for {
		if len(recs) == opts.MaxEvents || f.off >= len(body) || body[f.off] != '{' {
			return recs, false
		}
		start := f.off
		if len(recs) < cap(recs) {
			recs = recs[:len(recs)+1] // zero already: spare re-zeroing it with write barriers
		} else {
			recs = append(recs, vellum.Record{})
		}
		if !f.event(&recs[len(recs)-1]) || check && !fastChecked(&recs[len(recs)-1], opts) {
			return recs, false
		}
		if rest := len(body) - f.off; len(recs) == 1 && rest > 16 {
			// Size the slice from the first event, sparing the copies
			// (with write barriers) of growing it record by record.
			if est := max(min(rest/(f.off-start)*5/4+2, opts.MaxEvents), 1); cap(recs) < est {
				recs = append(make([]vellum.Record, 0, est), recs[0])
			}
		}
		if starts != nil {
			*starts = append(*starts, start)
		}
		sep := f.off
		f.space()
		switch {
		case f.off == len(body):
			if array {
				return recs, false // no closing ]
			}
			return recs, true
		case array && body[f.off] == ',':
			f.off++
			f.space()
		case array && body[f.off] == ']':
			f.off++
			f.space()
			return recs, f.off == len(body)
		case !array && f.off > sep: // objects of a sequence: whitespace between
		default:
			return recs, false
		}
	}
}

// fastChecked runs DecodeEvents' per-record checks; a record that fails
// them goes to the jsontext path for its error.
func fastChecked(r *vellum.Record, opts DecodeOptions) bool {
	args := r.Tool.Arguments
	r.Tool.Arguments = nil
	err := r.Validate()
	r.Tool.Arguments = args
	return err == nil && r.EncodedSize() <= opts.MaxRecordSize
}

func (f *fastDecoder) space() {
	if f.off < len(f.b) && f.b[f.off] > ' ' {
		return // the common case, compact JSON: one comparison
	}
	for f.off < len(f.b) {
		switch f.b[f.off] {
		case ' ', '\t', '\n', '\r':
			f.off++
		default:
			return
		}
	}
}

// next skips whitespace and reports whether the next byte is c, taking it.
func (f *fastDecoder) next(c byte) bool {
	f.space()
	if f.off < len(f.b) && f.b[f.off] == c {
		f.off++
		return true
	}
	return false
}

// plain reads a string of printable ASCII without escapes and returns its
// contents (aliasing the body).
func (f *fastDecoder) plain() ([]byte, bool) {
	if !f.next('"') {
		return nil, false
	}
	n := plainLen(f.b[f.off:])
	if n < 0 {
		return nil, false
	}
	s := f.b[f.off : f.off+n]
	f.off += n + 1
	return s, true
}

// plainLen returns the length of the plain string s starts with, up to
// its closing quote: the index of the first quote when every byte before
// it is printable ASCII other than a backslash, else -1. It is
// bytes.IndexByte(s, '"') and plainASCII of what precedes it in one pass:
// the first byte that is a quote or not plain decides. In a word, the
// lowest flagged byte is always a true one (a borrow that flags a higher
// byte starts at a lower, true one).
func plainLen(s []byte) int {
	const (
		lo = 0x0101010101010101
		hi = 0x8080808080808080
		bs = 0x5c5c5c5c5c5c5c5c // backslashes
		qt = 0x2222222222222222 // quotes
		sp = 0x2020202020202020 // below this: control bytes
	)
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := binary.LittleEndian.Uint64(s[i:])
		x, q := w^bs, w^qt // zero bytes where s has a backslash, a quote
		if m := (w | ((x - lo) &^ x) | ((q - lo) &^ q) | ((w - sp) &^ w)) & hi; m != 0 {
			if j := i + bits.TrailingZeros64(m)/8; s[j] == '"' {
				return j
			}
			return -1
		}
	}
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return i
		case c < 0x20 || c == '\\' || c >= 0x80:
			return -1
		}
	}
	return -1
}

// str reads a plain string into the arena.
func (f *fastDecoder) str(p *string) bool {
	s, ok := f.plain()
	if ok && len(s) > 0 {
		start := len(f.arena)
		f.arena = append(f.arena, s...)
		*p = unsafe.String(&f.arena[start], len(s))
	}
	return ok
}

// object reads the members of an object with the field ids of lookup,
// each at most once, calling member for each value.
func (f *fastDecoder) object(lookup lookupFunc, member func(id int) bool) bool {
	if !f.next('{') {
		return false
	}
	if f.next('}') {
		return true
	}
	var seen uint64
	for {
		name, ok := f.plain()
		if !ok || !f.next(':') {
			return false
		}
		id, _ := lookup(name)
		if id < 0 || seen&(1<<id) != 0 {
			return false
		}
		seen |= 1 << id
		f.space()
		if !member(id) {
			return false
		}
		if f.next('}') {
			return true
		}
		if !f.next(',') {
			return false
		}
	}
}

func (f *fastDecoder) event(r *vellum.Record) bool {
	return f.object(eventField, func(id int) bool { return f.member(r, id) })
}

// member decodes the value of field id into r, as eventDecoder.member.
func (f *fastDecoder) member(r *vellum.Record, id int) bool {
	switch id {
	case fEventID:
		return f.str(&r.EventID)
	case fTime:
		return f.time(&r.EventTime)
	case fTenantID:
		return f.str(&r.TenantID)
	case fUserID:
		return f.str(&r.UserID)
	case fService:
		return f.str(&r.Service)
	case fAuthMode:
		return f.str(&r.AuthMode)
	case fAction:
		return f.str(&r.Action)
	case fAgent:
		return f.str(&r.Agent)
	case fSessionID:
		return f.str(&r.SessionID)
	case fTraceID:
		return f.str(&r.TraceID)
	case fRequestID:
		return f.str(&r.RequestID)
	case fTool:
		return f.object(toolField, func(id int) bool { return f.member(r, id) })
	case fModel:
		return f.object(modelField, func(id int) bool { return f.member(r, id) })
	case fOutcome:
		return f.object(outcomeField, func(id int) bool { return f.member(r, id) })
	case fAttributes:
		return f.attributes(&r.Attributes)
	case fToolName:
		return f.str(&r.Tool.Name)
	case fToolCallID:
		return f.str(&r.Tool.CallID)
	case fToolArguments:
		return f.arguments(&r.Tool.Arguments)
	case fToolIsError:
		return f.bool(&r.Tool.IsError)
	case fToolDuration:
		return f.whole(true, func(b []byte) bool { n, ok := parseInt(b); r.Tool.DurationNS = n; return ok })
	case fModelName:
		return f.str(&r.Model.Name)
	case fModelProvider:
		return f.str(&r.Model.Provider)
	case fModelFinish:
		return f.str(&r.Model.FinishReason)
	case fModelIn:
		return f.whole(false, func(b []byte) bool { n, ok := parseUint(b); r.Model.InputTokens = n; return ok })
	case fModelOut:
		return f.whole(false, func(b []byte) bool { n, ok := parseUint(b); r.Model.OutputTokens = n; return ok })
	case fStatus:
		return f.str(&r.Outcome.Status)
	case fReason:
		return f.str(&r.Outcome.Reason)
	case fRuleID:
		return f.str(&r.Outcome.RuleID)
	case fApprover:
		return f.str(&r.Outcome.Approver)
	case fMode:
		return f.str(&r.Outcome.Mode)
	}
	return false
}

// time reads an RFC 3339 time string as eventDecoder.time does.
func (f *fastDecoder) time(p *time.Time) bool {
	s, ok := f.plain()
	if !ok {
		return false
	}
	t, err := time.Parse(time.RFC3339Nano, unsafe.String(unsafe.SliceData(s), len(s)))
	if err != nil {
		return false
	}
	*p = t.UTC()
	return true
}

func (f *fastDecoder) bool(p *bool) bool {
	switch {
	case f.literal("true"):
		*p = true
	case f.literal("false"):
	default:
		return false
	}
	return true
}

// literal takes lit when it comes next, followed by a delimiter.
func (f *fastDecoder) literal(lit string) bool {
	end := f.off + len(lit)
	if end > len(f.b) || string(f.b[f.off:end]) != lit || end < len(f.b) && !delimiter(f.b[end]) {
		return false
	}
	f.off = end
	return true
}

func delimiter(c byte) bool {
	return c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// whole reads a JSON integer (an optional minus when signed, no leading
// zeros, no fraction or exponent) and passes its bytes to set.
func (f *fastDecoder) whole(signed bool, set func([]byte) bool) bool {
	start, i := f.off, f.off
	if signed && i < len(f.b) && f.b[i] == '-' {
		i++
	}
	digits := i
	for i < len(f.b) && f.b[i] >= '0' && f.b[i] <= '9' {
		i++
	}
	if i == digits || f.b[digits] == '0' && i > digits+1 || i < len(f.b) && !delimiter(f.b[i]) {
		return false
	}
	f.off = i
	return set(f.b[start:i])
}

// attributes reads an object of plain strings under plain names, none
// reserved, none twice, as eventDecoder.attributes.
func (f *fastDecoder) attributes(m *map[string]string) bool {
	if !f.next('{') {
		return false
	}
	if f.next('}') {
		return true
	}
	for {
		var k, v string
		if !f.str(&k) || !f.next(':') || !f.str(&v) || strings.HasPrefix(k, ReservedAttrPrefix) {
			return false
		}
		if _, dup := (*m)[k]; dup {
			return false
		}
		if *m == nil {
			*m = f.sc.attrs()
		}
		(*m)[k] = v
		if f.next('}') {
			return true
		}
		if !f.next(',') {
			return false
		}
	}
}

// arguments keeps tool.arguments byte for byte, as eventDecoder.arguments
// does, when they are JSON of ASCII (null: left to the jsontext path).
func (f *fastDecoder) arguments(p *json.RawMessage) bool {
	start := f.off
	if !f.value(0) || f.b[start] == 'n' {
		return false
	}
	v := f.b[start:f.off]
	at := len(f.arena)
	f.arena = append(f.arena, v...)
	*p = f.arena[at:len(f.arena):len(f.arena)]
	return true
}

// value skips one JSON value of printable ASCII (escapes other than \u
// allowed in strings), nested at most fastArgsDepth deep, starting at the
// current offset, with no whitespace before it.
func (f *fastDecoder) value(depth int) bool {
	if f.off >= len(f.b) || depth > fastArgsDepth {
		return false
	}
	switch c := f.b[f.off]; {
	case c == '{' || c == '[':
		return f.container(c, depth)
	case c == '"':
		return f.argString()
	case c == 't':
		return f.literal("true")
	case c == 'f':
		return f.literal("false")
	case c == 'n':
		return f.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return f.number()
	}
	return false
}

// container skips an object or array (open is its first byte).
func (f *fastDecoder) container(open byte, depth int) bool {
	closer := byte('}')
	if open == '[' {
		closer = ']'
	}
	f.off++
	if f.next(closer) {
		return true
	}
	for {
		f.space()
		if open == '{' {
			if f.off >= len(f.b) || f.b[f.off] != '"' || !f.argString() || !f.next(':') {
				return false
			}
			f.space()
		}
		if !f.value(depth + 1) {
			return false
		}
		if f.next(closer) {
			return true
		}
		if !f.next(',') {
			return false
		}
	}
}

// argString skips a string of printable ASCII whose escapes are \" \\ \/
// \b \f \n \r \t.
func (f *fastDecoder) argString() bool {
	for i := f.off + 1; i < len(f.b); i++ {
		switch c := f.b[i]; {
		case c == '"':
			f.off = i + 1
			return true
		case c == '\\':
			i++
			if i == len(f.b) || !strings.ContainsRune(`"\/bfnrt`, rune(f.b[i])) {
				return false
			}
		case c < 0x20 || c >= 0x80:
			return false
		}
	}
	return false
}

// number skips a JSON number.
func (f *fastDecoder) number() bool {
	b, i := f.b, f.off
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if b[i] == '-' {
		i++
	}
	first := i
	if n := digits(); n == 0 || n > 1 && b[first] == '0' {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && !delimiter(b[i]) {
		return false
	}
	f.off = i
	return true
}
