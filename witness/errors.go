package witness

import (
	"errors"
	"fmt"
)

// Sentinel errors.
var (
	// ErrMalformed reports a request that does not parse.
	ErrMalformed = errors.New("witness: malformed request")
	// ErrState reports a witness state directory that cannot be trusted:
	// a missing key or view, a view not cosigned by this witness's key, or
	// an alarm log that was cut back or altered. The witness refuses to
	// start rather than forget what it has seen.
	ErrState = errors.New("witness: state")
	// ErrCorrupt reports an alarm log whose framing or chain does not
	// verify where later entries show data was written after it.
	ErrCorrupt = errors.New("witness: corrupt alarm log")
	// ErrRefused reports a checkpoint the witness did not cosign; the
	// error is a *RefusedError.
	ErrRefused = errors.New("witness: checkpoint refused")
)

// Refusal kinds. Kinds marked "alarm" are also recorded in the witness's
// alarm log.
const (
	KindMalformed    = "malformed"    // 400: the request does not parse or breaks a protocol rule
	KindUnknownLog   = "unknown-log"  // 404: the witness does not watch this origin
	KindSignature    = "signature"    // 403, alarm: no valid signature by the log's key
	KindConflict     = "conflict"     // 409: the old size is not the latest cosigned size
	KindRollback     = "rollback"     // 409 (or 400), alarm: a checkpoint smaller than the latest cosigned one
	KindFork         = "fork"         // 409, alarm: the latest cosigned size with another root
	KindInconsistent = "inconsistent" // 422, alarm: the consistency proof from the latest cosigned checkpoint fails
	KindStorage      = "storage"      // 500: the witness could not persist its view; nothing was cosigned
)

// RefusedError is why the witness did not cosign a checkpoint: the HTTP
// status C2SP tlog-witness prescribes, a kind, and for 409 the size of the
// latest checkpoint the witness cosigned.
type RefusedError struct {
	Status int
	Kind   string
	// Size is the latest cosigned tree size (409 answers carry it).
	Size   uint64
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("witness: checkpoint refused (%d %s): %s", e.Status, e.Kind, e.Reason)
}

// Unwrap makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Unwrap() error { return ErrRefused }

// CorruptError locates damage in the alarm log.
type CorruptError struct {
	Path   string
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("witness: corrupt alarm log: %s offset %d: %s", e.Path, e.Offset, e.Reason)
}

// Unwrap makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }
