package server

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers test them with errors.Is; the wrapped message
// says what and where.
var (
	// ErrConfig reports a configuration file or value that cannot be used:
	// bad YAML, an unknown key, an unset environment variable or a value
	// that breaks a rule. The message names the key and, when it comes
	// from a file, the line.
	ErrConfig = errors.New("server: bad config")
	// ErrUnauthenticated reports a request without a bearer token, with a
	// malformed Authorization header, or with a token no principal has.
	ErrUnauthenticated = errors.New("server: unauthenticated")
	// ErrBadEvent reports an ingest body or event that cannot be stored
	// as sent. Every such error from DecodeEvents is an *EventError.
	ErrBadEvent = errors.New("server: bad event")
	// ErrTooManyEvents reports an ingest body with more events than the
	// per-request limit.
	ErrTooManyEvents = errors.New("server: too many events")
	// ErrEventTooLarge reports an event whose encoded record exceeds the
	// maximum record size.
	ErrEventTooLarge = errors.New("server: event too large")
)

// EventError is an ingest body that DecodeEvents rejects: which event (its
// 0-based Index in the body, -1 for the body as a whole), on which Line
// (1-based, 0 when unknown), which Field (dotted, such as "tool.name"; empty
// when about the event as a whole) and why.
type EventError struct {
	Index  int
	Line   int
	Field  string
	Reason string
	Err    error // ErrBadEvent, ErrTooManyEvents or ErrEventTooLarge
}

// Detail is the message without the package prefix, as the HTTP API shows
// it.
func (e *EventError) Detail() string {
	where := "body"
	if e.Index >= 0 {
		where = fmt.Sprintf("events[%d]", e.Index)
	}
	if e.Line > 0 {
		where += fmt.Sprintf(" (line %d)", e.Line)
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", where, e.Field, e.Reason)
	}
	return fmt.Sprintf("%s: %s", where, e.Reason)
}

func (e *EventError) Error() string { return "server: " + e.Detail() }

// Unwrap returns the sentinel the error is an instance of.
func (e *EventError) Unwrap() error { return e.Err }
