package query

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrBadParam reports a query parameter or Query field that breaks a
	// rule. Every such error is a *ParamError naming the parameter.
	ErrBadParam = errors.New("query: bad parameter")
	// ErrBadCursor reports a cursor that is malformed, was forged or
	// altered, or was made for a query with other filters or order.
	ErrBadCursor = errors.New("query: bad cursor")
)

// ParamError is a bad query parameter: Param is its URL name (such as
// "limit" or "since"), Reason says what is wrong with it in words a caller
// of the HTTP API can act on.
type ParamError struct {
	Param  string
	Reason string
}

func (e *ParamError) Error() string {
	return fmt.Sprintf("query: parameter %s: %s", e.Param, e.Reason)
}

// Unwrap makes errors.Is(err, ErrBadParam) true.
func (e *ParamError) Unwrap() error { return ErrBadParam }

func paramErr(param, format string, args ...any) error {
	return &ParamError{Param: param, Reason: fmt.Sprintf(format, args...)}
}
