package vellum

import (
	"encoding/binary"
	"fmt"
)

// Fields are the indexed fields of an encoded record, as slices of the
// encoding itself: reading them allocates nothing. They are valid as long as
// the encoding's buffer is.
type Fields struct {
	Seq       uint64
	Time      int64
	EventID   []byte
	TenantID  []byte
	UserID    []byte
	Action    []byte
	SessionID []byte
	TraceID   []byte
	Tool      []byte // tool.name
	Model     []byte // model.name
	Status    []byte // outcome.status
}

// peekFields is how many fields PeekFields walks: up to outcome.status.
const peekFields = 17

// PeekFields reads the indexed fields of a canonical encoding without
// decoding the rest. It checks only what it reads; UnmarshalBinary is the
// full check.
func PeekFields(b []byte, f *Fields) error {
	if len(b) < fixedLen {
		return fmt.Errorf("%w: %d bytes is shorter than the %d-byte fixed part", ErrCorrupt, len(b), fixedLen)
	}
	if b[0] != EncodingVersion {
		return fmt.Errorf("%w: version %d", ErrVersion, b[0])
	}
	f.Seq = binary.LittleEndian.Uint64(b[SeqOffset:])
	f.Time = int64(binary.LittleEndian.Uint64(b[TimeOffset:]))
	// Field order of encoding version 1: event_id, tenant_id, user_id,
	// service, auth_mode, action, agent, session_id, trace_id, request_id,
	// tool.name, tool.call_id, tool.arguments, model.name, model.provider,
	// model.finish_reason, outcome.status. One loop finds where each
	// starts and ends; most lengths are one byte, read without
	// binary.Uvarint.
	var at, end [peekFields]int // where field i's bytes start and end
	p := fixedLen
	for i := range peekFields {
		var n uint64
		k := 1
		if p < len(b) && b[p] < 0x80 {
			n = uint64(b[p])
		} else if n, k = binary.Uvarint(b[p:]); k <= 0 {
			return fmt.Errorf("%w: a field runs past the end", ErrCorrupt)
		}
		if n > uint64(len(b)-p-k) {
			return fmt.Errorf("%w: a field runs past the end", ErrCorrupt)
		}
		at[i], end[i] = p+k, p+k+int(n)
		p += k + int(n)
	}
	field := func(i int) []byte { return b[at[i]:end[i]:end[i]] }
	f.EventID = field(0)
	f.TenantID = field(1)
	f.UserID = field(2)
	f.Action = field(5)
	f.SessionID = field(7)
	f.TraceID = field(8)
	f.Tool = field(10)
	f.Model = field(13)
	f.Status = field(16)
	return nil
}
