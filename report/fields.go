package report

import (
	"encoding/binary"
	"errors"
)

// errShort reports an encoding that ends inside a field.
var errShort = errors.New("report: a field of the record runs past its end")

// fields are the parts of a canonical record encoding (version 1,
// segment/FORMAT.md) the report counts, as slices of the encoding: reading
// them allocates nothing.
type fields struct {
	time      int64
	toolError bool
	tenant    []byte
	action    []byte
	tool      []byte
	status    []byte
	// redactions holds the encoded redaction list: rule, field, count
	// triples; next walks it.
	redactions []byte
	nRedact    uint64
}

// fixedLen is the fixed prefix of a version 1 encoding: version, seq,
// time, event time, flags.
const fixedLen = 1 + 8 + 8 + 8 + 1

// parseFields reads what the report needs from enc without decoding the
// rest, checking every length against the buffer (a corrupt record is an
// error, never a panic).
func parseFields(enc []byte, f *fields) error {
	if len(enc) < fixedLen || enc[0] != 1 {
		return errors.New("report: not a version 1 record encoding")
	}
	f.time = int64(binary.LittleEndian.Uint64(enc[9:]))
	f.toolError = enc[25]&1 != 0
	p := fixedLen
	bad := false
	str := func() []byte {
		if bad {
			return nil
		}
		if p < len(enc) && enc[p] < 0x80 && int(enc[p]) <= len(enc)-p-1 {
			// A length under 128 is one byte (most fields): skip the
			// general varint decoder.
			n := int(enc[p])
			s := enc[p+1 : p+1+n]
			p += 1 + n
			return s
		}
		n, k := binary.Uvarint(enc[p:])
		if k <= 0 || n > uint64(len(enc)-p-k) {
			bad = true
			return nil
		}
		s := enc[p+k : p+k+int(n)]
		p += k + int(n)
		return s
	}
	uv := func() uint64 {
		if bad {
			return 0
		}
		n, k := binary.Uvarint(enc[p:])
		if k <= 0 {
			bad = true
			return 0
		}
		p += k
		return n
	}
	// event_id, tenant_id, user_id, service, auth_mode, action, agent,
	// session_id, trace_id, request_id, tool.name, tool.call_id,
	// tool.arguments, model.name, model.provider, model.finish_reason,
	// outcome.status, reason, rule_id, approver, mode.
	str()
	f.tenant = str()
	str()
	str()
	str()
	f.action = str()
	str()
	str()
	str()
	str()
	f.tool = str()
	str()
	str() // arguments
	str()
	str()
	str()
	f.status = str()
	str()
	str()
	str()
	str()
	uv() // tool.duration_ns
	uv() // input tokens
	uv() // output tokens
	for n := uv(); n > 0 && !bad; n-- {
		str()
		str()
	}
	f.nRedact = uv()
	if bad {
		return errShort
	}
	f.redactions = enc[p:]
	return nil
}

// eachRedaction calls fn for each (rule, count) of f's redaction list.
func (f *fields) eachRedaction(fn func(rule []byte, count uint64)) error {
	b := f.redactions
	p := 0
	next := func() ([]byte, bool) {
		n, k := binary.Uvarint(b[p:])
		if k <= 0 || n > uint64(len(b)-p-k) {
			return nil, false
		}
		s := b[p+k : p+k+int(n)]
		p += k + int(n)
		return s, true
	}
	for i := uint64(0); i < f.nRedact; i++ {
		rule, ok := next()
		if !ok {
			return errShort
		}
		if _, ok = next(); !ok {
			return errShort
		}
		c, k := binary.Uvarint(b[p:])
		if k <= 0 {
			return errShort
		}
		p += k
		fn(rule, c)
	}
	return nil
}
