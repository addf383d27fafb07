package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/query"
)

// Field ids mixed into key hashes. Wire constants: summaries are stored in
// segment footers; do not change.
const (
	fieldTenant       = 1
	fieldUser         = 2
	fieldAction       = 3
	fieldActionPrefix = 4
	fieldTool         = 5
	fieldModel        = 6
)

// Bloom parameters. Wire constants.
const (
	bloomK         = 4
	builderWords   = 64 // 4096 bits while a span is being built
	minWords       = 1
	foldFillTarget = 0.25
	maxKeys        = 12
)

// ErrCorrupt reports a summary section that does not parse.
var ErrCorrupt = errors.New("index: corrupt summary section")

// Keys are the summary keys of one record: hashes of its indexed field values
// and its outcome bit. Computing them is the costly part of indexing, so the
// engine does it on the appending goroutine.
type Keys struct {
	h        [maxKeys]uint64
	n        uint8
	outcome  uint8
	overflow bool // more keys than fit: the span's summary must be unknown
}

// KeysOf returns the keys of a record with these field values (the action's
// dotted prefixes, like "approval." of "approval.granted", are keys too).
//
// The hashes are those of hashKey, computed two at a time (tenant and
// user, the action and its prefixes, tool and model): FNV-1a is one
// multiply after another, and two independent chains in one loop run in
// the time of about one.
func KeysOf[S string | []byte](tenant, user, action, tool, model, status S) Keys {
	var k Keys
	add := func(n int, h uint64) {
		switch {
		case n == 0:
		case int(k.n) == maxKeys:
			k.overflow = true // a summary without this key would lie
		default:
			k.h[k.n] = h
			k.n++
		}
	}
	ht, hu := hashKey2(fieldTenant, tenant, fieldUser, user)
	add(len(tenant), ht)
	add(len(user), hu)
	// The action and its dotted prefixes: a prefix's hash is the state of
	// a second chain, seeded with the prefix field's id, at its dot.
	ha, hp := fnvStart(fieldAction), fnvStart(fieldActionPrefix)
	var pre [maxKeys]uint64
	np := 0
	for i := 0; i < len(action); i++ {
		c := uint64(action[i])
		ha = (ha ^ c) * fnvPrime
		hp = (hp ^ c) * fnvPrime
		if c == '.' && i < len(action)-1 && np < len(pre) {
			pre[np] = hp
			np++
		}
	}
	add(len(action), ha)
	for _, h := range pre[:np] {
		add(1, h) // past maxKeys prefixes, the keys have overflowed anyway
	}
	hto, hm := hashKey2(fieldTool, tool, fieldModel, model)
	add(len(tool), hto)
	add(len(model), hm)
	k.outcome = vellum.StatusBit(string(status))
	return k
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvStart(id byte) uint64 { return (fnvOffset ^ uint64(id)) * fnvPrime }

// hashKey2 returns hashKey(ia, a) and hashKey(ib, b), the two chains
// interleaved.
func hashKey2[S string | []byte](ia byte, a S, ib byte, b S) (uint64, uint64) {
	ha, hb := fnvStart(ia), fnvStart(ib)
	n := min(len(a), len(b))
	a1, b1 := a[:n], b[:n]
	for i := 0; i < len(a1) && i < len(b1); i++ {
		ha = (ha ^ uint64(a1[i])) * fnvPrime
		hb = (hb ^ uint64(b1[i])) * fnvPrime
	}
	for i := n; i < len(a); i++ {
		ha = (ha ^ uint64(a[i])) * fnvPrime
	}
	for i := n; i < len(b); i++ {
		hb = (hb ^ uint64(b[i])) * fnvPrime
	}
	return ha, hb
}

// KeysOfFields returns the keys of a record read with vellum.PeekFields.
func KeysOfFields(f *vellum.Fields) Keys {
	return KeysOf(f.TenantID, f.UserID, f.Action, f.Tool, f.Model, f.Status)
}

// hashKey is FNV-1a (64-bit) over the field id byte followed by the value.
func hashKey[S string | []byte](id byte, v S, n int) uint64 {
	h := uint64(14695981039346656037)
	h ^= uint64(id)
	h *= 1099511628211
	for i := 0; i < n; i++ {
		h ^= uint64(v[i])
		h *= 1099511628211
	}
	return h
}

func keyOf(id byte, v string) uint64 { return hashKey(id, v, len(v)) }

// Summary describes what a span holds. The zero value (no Bloom filter)
// means "unknown": every query may match.
type Summary struct {
	// Outcomes has bit i set when some record's status is vellum.Statuses[i].
	Outcomes uint8
	// Bloom is a Bloom filter of len(Bloom)*64 bits (a power of two) with
	// bloomK probes per key; nil when unknown.
	Bloom []uint64
}

// Known reports whether s carries information.
func (s *Summary) Known() bool { return s.Bloom != nil }

func (s *Summary) has(h uint64) bool {
	m := uint32(len(s.Bloom)*64 - 1)
	h1, h2 := uint32(h), uint32(h>>32)|1
	for i := uint32(0); i < bloomK; i++ {
		p := (h1 + i*h2) & m
		if s.Bloom[p>>6]&(1<<(p&63)) == 0 {
			return false
		}
	}
	return true
}

// MayMatch reports whether a record of the span could satisfy q's filters.
// False means certainly not; the time range and cursor are not considered.
func (s *Summary) MayMatch(q *query.Query) bool {
	if !s.Known() {
		return true
	}
	if q.Outcome != "" && s.Outcomes&vellum.StatusBit(q.Outcome) == 0 {
		return false
	}
	for _, c := range [...]struct {
		id byte
		v  string
	}{{fieldTenant, q.TenantID}, {fieldUser, q.UserID}, {fieldTool, q.Tool}, {fieldModel, q.Model}} {
		if c.v != "" && !s.has(keyOf(c.id, c.v)) {
			return false
		}
	}
	if q.Action != "" {
		id := byte(fieldAction)
		if q.Action[len(q.Action)-1] == '.' {
			id = fieldActionPrefix
		}
		if !s.has(keyOf(id, q.Action)) {
			return false
		}
	}
	if len(q.Tenants) > 0 {
		any := false
		for _, t := range q.Tenants {
			if s.has(keyOf(fieldTenant, t)) {
				any = true
				break
			}
		}
		if !any {
			return false
		}
	}
	return true
}

// Builder accumulates the keys of one span's records. The zero value is
// ready; it is not safe for concurrent use.
type Builder struct {
	outcomes uint8
	bloom    [builderWords]uint64
	n        int
	unknown  bool
}

// Add adds one record's keys.
func (b *Builder) Add(k *Keys) {
	b.outcomes |= k.outcome
	b.unknown = b.unknown || k.overflow
	const m = builderWords*64 - 1
	for _, h := range k.h[:k.n] {
		h1, h2 := uint32(h), uint32(h>>32)|1
		for i := uint32(0); i < bloomK; i++ {
			p := (h1 + i*h2) & m
			b.bloom[p>>6] |= 1 << (p & 63)
		}
	}
	b.n++
}

// Len returns how many records were added.
func (b *Builder) Len() int { return b.n }

// Build returns the span's summary and resets the builder. The Bloom filter
// is folded in half (OR of both halves, valid because probe positions are
// taken modulo a power of two) while it stays under a quarter full, so a
// span with few distinct values costs few bytes.
func (b *Builder) Build() Summary {
	if b.unknown {
		*b = Builder{}
		return Summary{}
	}
	words := b.bloom[:]
	for len(words) > minWords {
		half := len(words) / 2
		ones := 0
		for i := 0; i < half; i++ {
			ones += bits.OnesCount64(words[i] | words[i+half])
		}
		if float64(ones) > foldFillTarget*float64(half*64) {
			break
		}
		for i := 0; i < half; i++ {
			words[i] |= words[i+half]
		}
		words = words[:half]
	}
	s := Summary{Outcomes: b.outcomes, Bloom: append([]uint64(nil), words...)}
	*b = Builder{}
	return s
}

// MarshalSummaries encodes the summaries of a segment's spans, in span
// order, as footer section 2:
//
//	u32 count, then per span: u8 outcomes, u8 probes (4), u16 reserved (0),
//	u32 words, words × u64 Bloom bits (all little-endian)
//
// An unknown summary is written with 0 words.
func MarshalSummaries(sums []Summary) []byte {
	n := 4
	for _, s := range sums {
		n += 8 + 8*len(s.Bloom)
	}
	b := make([]byte, 0, n)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(sums)))
	for _, s := range sums {
		b = append(b, s.Outcomes, bloomK, 0, 0)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s.Bloom)))
		for _, w := range s.Bloom {
			b = binary.LittleEndian.AppendUint64(b, w)
		}
	}
	return b
}

// UnmarshalSummaries decodes footer section 2, which must describe exactly
// spans spans.
func UnmarshalSummaries(b []byte, spans int) ([]Summary, error) {
	le := binary.LittleEndian
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: %d bytes", ErrCorrupt, len(b))
	}
	if n := int(le.Uint32(b)); n != spans {
		return nil, fmt.Errorf("%w: %d summaries for %d spans", ErrCorrupt, n, spans)
	}
	sums := make([]Summary, spans)
	p := 4
	for i := range sums {
		if len(b)-p < 8 {
			return nil, fmt.Errorf("%w: summary %d truncated", ErrCorrupt, i)
		}
		if b[p+1] != bloomK || b[p+2] != 0 || b[p+3] != 0 {
			return nil, fmt.Errorf("%w: summary %d has probes %d", ErrCorrupt, i, b[p+1])
		}
		words := int(le.Uint32(b[p+4:]))
		if words != 0 && (words > builderWords || words&(words-1) != 0) {
			return nil, fmt.Errorf("%w: summary %d has %d words (not a power of two up to %d)", ErrCorrupt, i, words, builderWords)
		}
		if len(b)-p-8 < 8*words {
			return nil, fmt.Errorf("%w: summary %d truncated", ErrCorrupt, i)
		}
		sums[i].Outcomes = b[p]
		if words > 0 {
			sums[i].Bloom = make([]uint64, words)
			for j := range sums[i].Bloom {
				sums[i].Bloom[j] = le.Uint64(b[p+8+8*j:])
			}
		}
		p += 8 + 8*words
	}
	if p != len(b) {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(b)-p)
	}
	return sums, nil
}

// Summarizer rebuilds the summaries of a segment's spans from its records
// in order, each tagged with the first seq of its span (segment.Entry.Span
// from a scan). Summaries are deterministic, so a verifier compares the
// result with the footer's section 2 byte for byte.
type Summarizer struct {
	sums []Summary
	b    Builder
	cur  uint64
	have bool
}

// Add adds one record's keys.
func (s *Summarizer) Add(span uint64, k *Keys) {
	if s.have && span != s.cur {
		s.sums = append(s.sums, s.b.Build())
	}
	s.cur, s.have = span, true
	s.b.Add(k)
}

// Finish returns the summaries of every span, the last one included.
func (s *Summarizer) Finish() []Summary {
	if s.have {
		s.sums = append(s.sums, s.b.Build())
		s.have = false
	}
	return s.sums
}
