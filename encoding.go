package vellum

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"time"
	"unsafe"
)

// EncodingVersion is the version byte of the canonical binary encoding.
// Wire constant: do not change; a new layout gets a new version.
const EncodingVersion = 1

// Offsets of the fixed-width prefix of a version 1 encoding: version (1
// byte), seq, receipt time and event time (8 bytes each, little-endian),
// flags (1 byte). Wire constants (segment/FORMAT.md, "Record encoding"):
// do not change; a new layout gets a new version.
const (
	// SeqOffset is where the 8-byte seq starts.
	SeqOffset = 1
	// TimeOffset is where the 8-byte receipt time (Unix nanoseconds)
	// starts.
	TimeOffset = 9
	// eventTimeOffset and flagsOffset follow.
	eventTimeOffset = 17
	flagsOffset     = 25
	// fixedLen is the size of the fixed-width prefix.
	fixedLen = 26
)

const flagToolError = 1 << 0

// AppendBinary appends the canonical version 1 encoding of r to b and returns
// the extended slice. The encoding covers every field except KeyID, PrevMAC
// and MAC, which the chain derives. Equal records encode to equal bytes:
// attributes are written in key order. See segment/FORMAT.md.
func (r *Record) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, EncodingVersion)
	b = binary.LittleEndian.AppendUint64(b, r.Seq)
	b = binary.LittleEndian.AppendUint64(b, uint64(unixNano(r.Time)))
	b = binary.LittleEndian.AppendUint64(b, uint64(unixNano(r.EventTime)))
	var flags byte
	if r.Tool.IsError {
		flags |= flagToolError
	}
	b = append(b, flags)
	for _, s := range [...]string{
		r.EventID, r.TenantID, r.UserID, r.Service, r.AuthMode, r.Action,
		r.Agent, r.SessionID, r.TraceID, r.RequestID,
		r.Tool.Name, r.Tool.CallID,
	} {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Tool.Arguments)))
	b = append(b, r.Tool.Arguments...)
	for _, s := range [...]string{
		r.Model.Name, r.Model.Provider, r.Model.FinishReason,
		r.Outcome.Status, r.Outcome.Reason, r.Outcome.RuleID, r.Outcome.Approver, r.Outcome.Mode,
	} {
		b = appendString(b, s)
	}
	if r.Tool.DurationNS < 0 {
		return nil, fmt.Errorf("%w: tool.duration_ns is negative", ErrInvalid)
	}
	b = binary.AppendUvarint(b, uint64(r.Tool.DurationNS))
	b = binary.AppendUvarint(b, r.Model.InputTokens)
	b = binary.AppendUvarint(b, r.Model.OutputTokens)

	b = binary.AppendUvarint(b, uint64(len(r.Attributes)))
	if len(r.Attributes) > 0 {
		keys := make([]string, 0, len(r.Attributes))
		for k := range r.Attributes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if k == "" {
				return nil, fmt.Errorf("%w: attributes has an empty key", ErrInvalid)
			}
			b = appendString(b, k)
			b = appendString(b, r.Attributes[k])
		}
	}
	b = binary.AppendUvarint(b, uint64(len(r.Redactions)))
	for _, x := range r.Redactions {
		b = appendString(b, x.Rule)
		b = appendString(b, x.Field)
		b = binary.AppendUvarint(b, uint64(x.Count))
	}
	return b, nil
}

// StampEncoded writes the store-assigned seq and receipt time t (Unix
// nanoseconds) into enc, an encoding AppendBinary made. Both fields are
// fixed-width, so the encoding's length and every other byte stay as they
// were: a store encodes a record once, before it knows its seq, and stamps
// it when it chains it. It panics if enc is shorter than the fixed prefix.
func StampEncoded(enc []byte, seq uint64, t int64) {
	_ = enc[fixedLen-1]
	binary.LittleEndian.PutUint64(enc[SeqOffset:], seq)
	binary.LittleEndian.PutUint64(enc[TimeOffset:], uint64(t))
}

// EncodedSize returns the length of r's canonical encoding, so a caller can
// allocate it once.
func (r *Record) EncodedSize() int {
	// Every string and the arguments take a one-byte length while the
	// longest of them is under 128 bytes, the common case: summing the
	// lengths then needs no varint size per field.
	ls := [...]int{
		len(r.EventID), len(r.TenantID), len(r.UserID), len(r.Service), len(r.AuthMode), len(r.Action),
		len(r.Agent), len(r.SessionID), len(r.TraceID), len(r.RequestID), len(r.Tool.Name), len(r.Tool.CallID),
		len(r.Model.Name), len(r.Model.Provider), len(r.Model.FinishReason),
		len(r.Outcome.Status), len(r.Outcome.Reason), len(r.Outcome.RuleID), len(r.Outcome.Approver), len(r.Outcome.Mode),
		len(r.Tool.Arguments),
	}
	n := fixedLen + len(ls)
	or := 0
	for _, l := range ls {
		n += l
		or |= l
	}
	if or >= 0x80 {
		for _, l := range ls {
			n += uvarintLen(uint64(l)) - 1
		}
	}
	n += uvarintLen(uint64(r.Tool.DurationNS)) + uvarintLen(r.Model.InputTokens) + uvarintLen(r.Model.OutputTokens)
	n += uvarintLen(uint64(len(r.Attributes)))
	if len(r.Attributes) > 0 {
		for k, v := range r.Attributes {
			n += uvarintLen(uint64(len(k))) + len(k) + uvarintLen(uint64(len(v))) + len(v)
		}
	}
	n += uvarintLen(uint64(len(r.Redactions)))
	for _, x := range r.Redactions {
		n += uvarintLen(uint64(len(x.Rule))) + len(x.Rule) + uvarintLen(uint64(len(x.Field))) + len(x.Field) + uvarintLen(uint64(x.Count))
	}
	return n
}

// uvarintLen returns the length of v's uvarint encoding.
func uvarintLen(v uint64) int {
	return (bits.Len64(v|1) + 6) / 7
}

// MarshalBinary returns the canonical encoding of r.
func (r *Record) MarshalBinary() ([]byte, error) { return r.AppendBinary(nil) }

// UnmarshalBinary decodes a canonical encoding into r, replacing its
// contents. It accepts only canonical bytes (minimal varints, sorted unique
// attribute keys, no trailing data), so that decoding and re-encoding gives
// the same bytes. It never allocates more than a small multiple of len(b).
// KeyID, PrevMAC and MAC are left zero.
func (r *Record) UnmarshalBinary(b []byte) error {
	if len(b) < fixedLen {
		return fmt.Errorf("%w: %d bytes is shorter than the %d-byte fixed part", ErrCorrupt, len(b), fixedLen)
	}
	if b[0] != EncodingVersion {
		return fmt.Errorf("%w: version %d", ErrVersion, b[0])
	}
	// One private copy backs every string, so the decoded record does not
	// alias the caller's buffer and costs one allocation for all fields.
	own := make([]byte, len(b))
	copy(own, b)
	d := decoder{b: own, off: fixedLen}
	*r = Record{
		Seq:       binary.LittleEndian.Uint64(own[SeqOffset:]),
		Time:      fromUnixNano(int64(binary.LittleEndian.Uint64(own[TimeOffset:]))),
		EventTime: fromUnixNano(int64(binary.LittleEndian.Uint64(own[eventTimeOffset:]))),
	}
	flags := own[flagsOffset]
	if flags&^flagToolError != 0 {
		return fmt.Errorf("%w: unknown flag bits %#x at offset %d", ErrCorrupt, flags, flagsOffset)
	}
	r.Tool.IsError = flags&flagToolError != 0
	for _, p := range [...]*string{
		&r.EventID, &r.TenantID, &r.UserID, &r.Service, &r.AuthMode, &r.Action,
		&r.Agent, &r.SessionID, &r.TraceID, &r.RequestID,
		&r.Tool.Name, &r.Tool.CallID,
	} {
		*p = d.string()
	}
	if args := d.bytes(); len(args) > 0 {
		r.Tool.Arguments = args
	}
	for _, p := range [...]*string{
		&r.Model.Name, &r.Model.Provider, &r.Model.FinishReason,
		&r.Outcome.Status, &r.Outcome.Reason, &r.Outcome.RuleID, &r.Outcome.Approver, &r.Outcome.Mode,
	} {
		*p = d.string()
	}
	dur := d.uvarint()
	if dur > math.MaxInt64 {
		d.fail("tool.duration_ns overflows int64")
	}
	r.Tool.DurationNS = int64(dur)
	r.Model.InputTokens = d.uvarint()
	r.Model.OutputTokens = d.uvarint()

	// Every attribute takes at least two bytes and every redaction three,
	// so a count above the remaining bytes is corrupt; checking before
	// allocating bounds memory by the input size.
	if n := d.count(2); n > 0 {
		r.Attributes = make(map[string]string, n)
		prev := ""
		for i := 0; i < n && d.err == nil; i++ {
			k := d.string()
			v := d.string()
			if d.err == nil && (k == "" || (i > 0 && k <= prev)) {
				d.fail("attribute keys not strictly ascending and non-empty")
			}
			r.Attributes[k] = v
			prev = k
		}
	}
	if n := d.count(3); n > 0 {
		r.Redactions = make([]Redaction, n)
		for i := range r.Redactions {
			x := &r.Redactions[i]
			x.Rule = d.string()
			x.Field = d.string()
			c := d.uvarint()
			if c > math.MaxUint32 {
				d.fail("redaction count overflows uint32")
			}
			x.Count = uint32(c)
		}
	}
	if d.err == nil && d.off != len(own) {
		d.fail(fmt.Sprintf("%d trailing bytes", len(own)-d.off))
	}
	if d.err != nil {
		*r = Record{}
		return d.err
	}
	return nil
}

// DecodeSeqTime reads the seq and time of an encoded record without decoding
// the rest.
func DecodeSeqTime(b []byte) (seq uint64, t int64, err error) {
	if len(b) < fixedLen {
		return 0, 0, fmt.Errorf("%w: %d bytes is shorter than the %d-byte fixed part", ErrCorrupt, len(b), fixedLen)
	}
	if b[0] != EncodingVersion {
		return 0, 0, fmt.Errorf("%w: version %d", ErrVersion, b[0])
	}
	return binary.LittleEndian.Uint64(b[SeqOffset:]), int64(binary.LittleEndian.Uint64(b[TimeOffset:])), nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// unixNano maps the zero time to 0, so an absent time encodes as 0.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// decoder reads canonical fields from b, remembering the first error so the
// caller can check once at the end.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at offset %d", ErrCorrupt, what, d.off)
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	// Reject non-minimal encodings (a trailing 0x00 continuation byte), so
	// the encoding is canonical.
	if n > 1 && d.b[d.off+n-1] == 0 {
		d.fail("non-minimal varint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail(fmt.Sprintf("length %d exceeds the %d remaining bytes", n, len(d.b)-d.off))
		return nil
	}
	s := d.b[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return s
}

func (d *decoder) string() string {
	s := d.bytes()
	if len(s) == 0 {
		return ""
	}
	// The backing array is the decoder's private copy, never written again.
	return unsafe.String(&s[0], len(s))
}

func (d *decoder) count(minEach int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64((len(d.b)-d.off)/minEach) {
		d.fail(fmt.Sprintf("count %d exceeds what %d remaining bytes can hold", n, len(d.b)-d.off))
		return 0
	}
	return int(n)
}
