package engine

import (
	"errors"

	"github.com/vellumlog/vellum/backends"
)

// Sentinel errors. Returned errors wrap them with the detail (file, offset,
// seq) and are tested with errors.Is.
var (
	// ErrClosed is returned by calls on a closed engine.
	ErrClosed = is("engine: closed", backends.ErrClosed)
	// ErrFailed is returned by Append once a write or fsync has failed: the
	// engine acknowledges nothing more until it is reopened. The wrapped
	// error says why.
	ErrFailed = is("engine: failed, accepting no more records", backends.ErrFailed)
	// ErrTooLarge reports a record whose encoding exceeds MaxRecordSize
	// (inside a *RecordError naming it). Nothing of the call was written.
	ErrTooLarge = is("engine: record too large", backends.ErrTooLarge)
	// ErrNotFound reports a seq that the store does not hold (never
	// written, or expired by retention).
	ErrNotFound = is("engine: record not found", backends.ErrNotFound)
	// ErrLocked reports a data directory that another process has open.
	ErrLocked = errors.New("engine: data directory is locked by another process")
	// ErrKeyMismatch reports a store written under a key that is not
	// configured.
	ErrKeyMismatch = errors.New("engine: key mismatch")
	// ErrCorrupt reports data that does not verify; the wrapped error names
	// the segment, offset and seq. The engine never repairs it.
	ErrCorrupt = errors.New("engine: corrupt store")
	// ErrNoSigner reports a checkpoint request to an engine without
	// Options.Signer.
	ErrNoSigner = errors.New("engine: no checkpoint signer configured")
	// ErrPreparedUsed reports a Prepared handed to AppendPrepared a
	// second time; its records were appended the first time.
	ErrPreparedUsed = errors.New("engine: these prepared records were already appended")
)

// kindError is a sentinel of this package that also matches the shared
// backends sentinel of its kind (errors.Is), so callers written against
// the AuditStore contract need not know the engine.
type kindError struct {
	msg  string
	kind error
}

func is(msg string, kind error) error { return &kindError{msg, kind} }
func (e *kindError) Error() string    { return e.msg }
func (e *kindError) Unwrap() error    { return e.kind }

// The engine is the default AuditStore.
var _ backends.Store = (*Engine)(nil)
