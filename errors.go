package vellum

import "errors"

// Sentinel errors returned by Record validation and decoding. Callers test
// them with errors.Is; the wrapped message names the field or offset.
var (
	// ErrInvalid reports a record that breaks a rule of the schema, such as
	// a missing action or an unknown outcome status.
	ErrInvalid = errors.New("vellum: invalid record")
	// ErrCorrupt reports bytes that are not a canonical record encoding.
	ErrCorrupt = errors.New("vellum: corrupt record encoding")
	// ErrTooLarge reports a record whose encoding exceeds the size limit.
	ErrTooLarge = errors.New("vellum: record too large")
	// ErrVersion reports an encoding with a format version this build
	// does not understand.
	ErrVersion = errors.New("vellum: unknown record format version")
)
