package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/query"
)

// errorBody is the error shape of the agent ecosystem: {"detail": "..."}.
type errorBody struct {
	Detail string `json:"detail"`
}

// apiError is an error with the HTTP status and the detail a caller sees.
// cause, when set, is logged and never sent.
type apiError struct {
	status int
	detail string
	cause  error
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("server: %d %s: %v", e.status, e.detail, e.cause)
	}
	return fmt.Sprintf("server: %d %s", e.status, e.detail)
}

func (e *apiError) Unwrap() error { return e.cause }

func httpErr(status int, format string, args ...any) *apiError {
	return &apiError{status: status, detail: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *apiError {
	return httpErr(http.StatusBadRequest, format, args...)
}

func forbidden(format string, args ...any) *apiError {
	return httpErr(http.StatusForbidden, format, args...)
}

// storeFailed is the answer while the store refuses work (AU-5 fail
// closed). The store's own error is logged, not sent: it names files.
func storeFailed(cause error) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, detail: "the audit store has failed and accepts nothing until an operator restarts it", cause: cause}
}

// toAPIError maps any error a handler returns to its status and detail.
func toAPIError(err error) *apiError {
	var (
		ae  *apiError
		pe  *query.ParamError
		ee  *EventError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &pe):
		return badRequest("parameter %s: %s", pe.Param, pe.Reason)
	case errors.Is(err, query.ErrBadCursor):
		return badRequest("parameter cursor: %s", trimPrefix(err, query.ErrBadCursor))
	case errors.As(err, &ee):
		if errors.Is(err, ErrTooManyEvents) || errors.Is(err, ErrEventTooLarge) {
			return httpErr(http.StatusRequestEntityTooLarge, "%s", ee.Detail())
		}
		return badRequest("%s", ee.Detail())
	case errors.As(err, &mbe):
		return httpErr(http.StatusRequestEntityTooLarge, "the body is larger than the limit of %s (body_limit)", ByteSize(mbe.Limit))
	case errors.Is(err, ErrUnauthenticated):
		return httpErr(http.StatusUnauthorized, "%s", trimPrefix(err, ErrUnauthenticated))
	case errors.Is(err, vellum.ErrTooLarge), errors.Is(err, backends.ErrTooLarge):
		return &apiError{status: http.StatusRequestEntityTooLarge, detail: "a record is larger than the maximum record size (audit.max_record_size)", cause: err}
	case errors.Is(err, vellum.ErrInvalid):
		return &apiError{status: http.StatusBadRequest, detail: trimPrefix(err, vellum.ErrInvalid), cause: err}
	case errors.Is(err, backends.ErrUnavailable):
		return &apiError{status: http.StatusServiceUnavailable, detail: "the database is unavailable; see the server log", cause: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &apiError{status: http.StatusServiceUnavailable, detail: "the request was canceled before it finished", cause: err}
	}
	return &apiError{status: http.StatusInternalServerError, detail: "internal error; see the server log", cause: err}
}

// trimPrefix returns err's message without the sentinel's own text, so a
// detail reads "unknown token" rather than "server: unauthenticated:
// unknown token".
func trimPrefix(err, sentinel error) string {
	s, p := err.Error(), sentinel.Error()
	if len(s) > len(p)+2 && s[:len(p)] == p && s[len(p):len(p)+2] == ": " {
		return s[len(p)+2:]
	}
	return s
}

// writeJSON writes v as JSON with status. HTML is not escaped: bodies are
// application/json with nosniff, and details such as "Authorization:
// Bearer <token>" must read as written, not as \u003ctoken\u003e.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	b := []byte(`{"detail":"internal error: cannot encode the response"}` + "\n")
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
	} else {
		b = buf.Bytes() // Encode ends with a newline
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

func writeError(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, errorBody{Detail: detail})
}
