package chain

import (
	"errors"
	"fmt"

	"github.com/vellumlog/vellum"
)

// Sentinel errors.
var (
	// ErrKeyTooShort reports key material shorter than MinKeySize bytes.
	ErrKeyTooShort = errors.New("chain: key too short")
	// ErrKeyFileMode reports a key file readable by group or others.
	ErrKeyFileMode = errors.New("chain: key file is readable by group or others")
	// ErrKeyFormat reports a key file or variable that is not hex.
	ErrKeyFormat = errors.New("chain: key is not hex")
	// ErrUnknownKey reports a key id that no configured key has.
	ErrUnknownKey = errors.New("chain: unknown key id")
	// ErrKeyMismatch reports data written under a different key than the one
	// configured.
	ErrKeyMismatch = errors.New("chain: key mismatch")
	// ErrMismatch reports a MAC that does not verify.
	ErrMismatch = errors.New("chain: mac mismatch")
)

// MismatchError is a MAC that does not verify: the record at Seq carries
// Found, but the chain computes Expected.
type MismatchError struct {
	Seq      uint64
	Expected vellum.MAC
	Found    vellum.MAC
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("chain: mac mismatch at seq %d: expected %s, found %s", e.Seq, e.Expected, e.Found)
}

// Unwrap makes errors.Is(err, ErrMismatch) true.
func (e *MismatchError) Unwrap() error { return ErrMismatch }
