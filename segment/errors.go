package segment

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by this package wrap one of them together
// with the file and offset.
var (
	// ErrCorrupt reports bytes that do not verify (bad CRC, impossible
	// field) where data that was acknowledged should be.
	ErrCorrupt = errors.New("segment: corrupt")
	// ErrTorn reports an incomplete final batch: bytes after the last valid
	// commit frame that no later commit frame vouches for.
	ErrTorn = errors.New("segment: torn tail")
	// ErrTooLarge reports a record over the maximum record size.
	ErrTooLarge = errors.New("segment: record too large")
	// ErrSealed reports an attempt to write to a sealed segment.
	ErrSealed = errors.New("segment: sealed")
	// ErrNotSealed reports a segment without a valid footer where one is
	// required.
	ErrNotSealed = errors.New("segment: not sealed")
	// ErrVersion reports a format version this build cannot read.
	ErrVersion = errors.New("segment: unknown format version")
	// ErrFailed reports a writer that has seen an I/O error; it accepts
	// nothing more.
	ErrFailed = errors.New("segment: writer failed")
	// ErrStopped reports a Preallocate its caller stopped.
	ErrStopped = errors.New("segment: preallocation stopped")
)

// CorruptError locates corruption: the file, the byte offset of the frame
// that does not verify, the seq nearest to it when known, and what was
// wrong.
type CorruptError struct {
	Path   string
	Offset int64
	Seq    uint64 // 0 when unknown
	Reason string
}

func (e *CorruptError) Error() string {
	if e.Seq != 0 {
		return fmt.Sprintf("segment: corrupt: %s offset %d (seq %d): %s", e.Path, e.Offset, e.Seq, e.Reason)
	}
	return fmt.Sprintf("segment: corrupt: %s offset %d: %s", e.Path, e.Offset, e.Reason)
}

// Unwrap makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

func corrupt(path string, off int64, seq uint64, format string, args ...any) error {
	return &CorruptError{Path: path, Offset: off, Seq: seq, Reason: fmt.Sprintf(format, args...)}
}
