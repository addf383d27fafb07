package backends

import (
	"errors"
	"fmt"

	"github.com/vellumlog/vellum"
)

// Sentinel errors every store returns (wrapped, with the detail), tested
// with errors.Is. The engine's own sentinels (engine.ErrNotFound, ...) wrap
// these, so a caller written against this package needs no other.
var (
	// ErrNotFound reports a seq the store does not hold (never written, or
	// expired by retention).
	ErrNotFound = errors.New("backends: record not found")
	// ErrTooLarge reports a record whose encoding exceeds the store's size
	// limit; nothing of the call was stored.
	ErrTooLarge = errors.New("backends: record too large")
	// ErrClosed reports a call on a closed store.
	ErrClosed = errors.New("backends: store closed")
	// ErrFailed reports a store that stopped acknowledging after a write
	// failed; the wrapped error says why.
	ErrFailed = errors.New("backends: store failed, accepting no more records")
	// ErrInvalid reports a record that breaks a rule of the schema. It is
	// vellum.ErrInvalid itself, which Record.Validate wraps.
	ErrInvalid = vellum.ErrInvalid
	// ErrSchema reports a database whose schema this build cannot use: newer
	// than it knows, or not a Vellum schema at all.
	ErrSchema = errors.New("backends: unusable database schema")
	// ErrUnavailable reports a database that cannot be reached or refuses
	// the connection (address, password, privileges); the wrapped error
	// names the backend and what to do.
	ErrUnavailable = errors.New("backends: database unavailable")
)

// ErrTampered reports a row of a SQL store that does not verify: a MAC
// that does not match, a broken link, a gap. Every such error is a
// *BadRowError.
var ErrTampered = errors.New("backends: row does not verify")

// BadRowError names the first row of a chain that does not verify: the
// writer (empty for SQLite's single writer), its seq, and why.
type BadRowError struct {
	Backend string `json:"backend"`
	Writer  string `json:"writer"`
	Seq     uint64 `json:"seq"`
	Reason  string `json:"reason"`
}

func (e *BadRowError) Error() string {
	w := ""
	if e.Writer != "" {
		w = fmt.Sprintf(" writer %q", e.Writer)
	}
	return fmt.Sprintf("%s: audit_records%s seq %d: %s", e.Backend, w, e.Seq, e.Reason)
}

// Unwrap makes errors.Is(err, ErrTampered) true.
func (e *BadRowError) Unwrap() error { return ErrTampered }
