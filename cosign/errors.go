package cosign

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors.
var (
	// ErrKey reports a key that is not a cosignature/v1 key in the note
	// formats.
	ErrKey = errors.New("cosign: malformed key")
	// ErrQuorum reports a checkpoint without valid cosignatures from
	// enough of the trusted witnesses.
	ErrQuorum = errors.New("cosign: too few witness cosignatures")
)

// QuorumError says how many of the trusted witnesses cosigned a checkpoint
// and how many were required, and which cosignatures did not verify.
type QuorumError struct {
	Need, Have int
	// Witnesses lists the trusted witnesses (name+hash).
	Witnesses []string
	// Invalid lists trusted witnesses whose signature line is present but
	// does not verify.
	Invalid []string
}

func (e *QuorumError) Error() string {
	msg := fmt.Sprintf("cosign: too few witness cosignatures: %d of the trusted witnesses (%s) cosigned the checkpoint, %d required",
		e.Have, strings.Join(e.Witnesses, ", "), e.Need)
	if len(e.Invalid) > 0 {
		msg += "; invalid cosignature by " + strings.Join(e.Invalid, ", ")
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrQuorum) true.
func (e *QuorumError) Unwrap() error { return ErrQuorum }
