package checkpoint

import (
	"errors"
	"fmt"
)

// Sentinel errors.
var (
	// ErrMalformed reports a checkpoint or note that does not parse.
	ErrMalformed = errors.New("checkpoint: malformed")
	// ErrSignature reports a note whose signature by the expected key is
	// missing or does not verify.
	ErrSignature = errors.New("checkpoint: signature does not verify")
	// ErrOrigin reports a checkpoint of another log.
	ErrOrigin = errors.New("checkpoint: wrong origin")
	// ErrInconsistent reports two checkpoints that cannot both describe one
	// append-only log.
	ErrInconsistent = errors.New("checkpoint: inconsistent checkpoints")
	// ErrCorrupt reports a checkpoint log whose framing does not verify
	// where later entries show data was written after it.
	ErrCorrupt = errors.New("checkpoint: corrupt log")
	// ErrKeyFileMode reports a private key file readable by group or
	// others.
	ErrKeyFileMode = errors.New("checkpoint: private key file is readable by group or others")
	// ErrFailed reports a Log that has seen an I/O error.
	ErrFailed = errors.New("checkpoint: log failed")
)

// CorruptError locates damage in a checkpoint log file.
type CorruptError struct {
	Path   string
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("checkpoint: corrupt log: %s offset %d: %s", e.Path, e.Offset, e.Reason)
}

// Unwrap makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// InconsistentError says why two checkpoints cannot both be true of one
// append-only log: the later is smaller, or their roots differ at equal
// size, or the consistency proof between them fails.
type InconsistentError struct {
	Old, New Checkpoint
	Reason   string
}

func (e *InconsistentError) Error() string {
	return fmt.Sprintf("checkpoint: inconsistent checkpoints: size %d root %s, then size %d root %s: %s",
		e.Old.Size, e.Old.Root.Base64(), e.New.Size, e.New.Root.Base64(), e.Reason)
}

// Unwrap makes errors.Is(err, ErrInconsistent) true.
func (e *InconsistentError) Unwrap() error { return ErrInconsistent }
