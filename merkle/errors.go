package merkle

import (
	"errors"
	"fmt"
)

// Sentinel errors.
var (
	// ErrRootMismatch reports a root that differs from the one expected;
	// the error is a *RootMismatchError.
	ErrRootMismatch = errors.New("merkle: root mismatch")
	// ErrProof reports a proof that is malformed for its tree sizes (wrong
	// number of hashes, index out of range).
	ErrProof = errors.New("merkle: malformed proof")
	// ErrSection reports a footer Merkle section that does not parse.
	ErrSection = errors.New("merkle: bad tree section")
	// ErrSize reports a tree size a source cannot serve (beyond its data).
	ErrSize = errors.New("merkle: tree size beyond the data")
	// ErrPurged reports a node that only purged leaves could give: a
	// proof against a tree smaller than the purged prefix.
	ErrPurged = errors.New("merkle: node over purged leaves")
)

// RootMismatchError is a Merkle root that does not verify: Expected is the
// root the caller trusts (from a checkpoint or a trailer), Calculated is
// what the data or the proof yields.
type RootMismatchError struct {
	Expected   Hash
	Calculated Hash
}

func (e *RootMismatchError) Error() string {
	return fmt.Sprintf("merkle: root mismatch: expected %s, calculated %s", e.Expected, e.Calculated)
}

// Unwrap makes errors.Is(err, ErrRootMismatch) true.
func (e *RootMismatchError) Unwrap() error { return ErrRootMismatch }
