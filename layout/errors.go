package layout

import (
	"errors"
	"fmt"
)

// ErrCorrupt reports a data directory that breaks the layout: an unreadable
// STORE file, or a segment header that does not belong to the store or does
// not continue the segment before it. Errors wrap it with the file and what
// was wrong.
var ErrCorrupt = errors.New("layout: corrupt data directory")

// LinkError is a segment header that does not link: which header field,
// its byte offset in the file (-1 when the problem is the file's place in
// the directory), what the store or the previous segment calls for, and
// what the header says.
type LinkError struct {
	Segment  uint64 // the file's segment number
	Field    string // FieldNumber, FieldStoreID, FieldFirstSeq or FieldPrevMAC
	Offset   int64
	Expected string
	Found    string
	Reason   string
}

func (e *LinkError) Error() string {
	return fmt.Sprintf("layout: segment %d offset %d: %s (expected %s, found %s)", e.Segment, e.Offset, e.Reason, e.Expected, e.Found)
}

// The header fields a LinkError names.
const (
	FieldNumber   = "segment number"
	FieldStoreID  = "store id"
	FieldFirstSeq = "first seq"
	FieldPrevMAC  = "prev MAC"
)

// Unwrap makes errors.Is(err, ErrCorrupt) true.
func (e *LinkError) Unwrap() error { return ErrCorrupt }
