package step

import (
	"errors"
	"fmt"
)

// ErrInvalid reports a step (or batch) that breaks the wire format. The
// *Error wrapping it names the field.
var ErrInvalid = errors.New("step: invalid step")

// Error is a malformed step: Path names the field as a client would write
// it (`steps[3].action`, or `action` for a lone step) and Reason says what
// is wrong. It matches ErrInvalid with errors.Is.
type Error struct {
	Path   string
	Reason string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Reason
	}
	return e.Path + ": " + e.Reason
}

// Is reports whether target is ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

func fail(path, format string, args ...any) *Error {
	return &Error{Path: path, Reason: fmt.Sprintf(format, args...)}
}
