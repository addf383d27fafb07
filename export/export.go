package export

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/vellumlog/vellum"
)

// Format is an export format.
type Format string

// Formats.
const (
	// JSONL is one record per line in its JSON form.
	JSONL Format = "jsonl"
	// CSV is RFC 4180 CSV with a header row of Columns.
	CSV Format = "csv"
)

// ErrFormat reports an unknown export format.
var ErrFormat = errors.New("export: unknown format")

// ParseFormat returns the format named s: jsonl (also "ndjson" and
// "json") or csv.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "jsonl", "ndjson", "json":
		return JSONL, nil
	case "csv":
		return CSV, nil
	}
	return "", fmt.Errorf("%w %q (jsonl or csv)", ErrFormat, s)
}

// ContentType returns the media type of f.
func (f Format) ContentType() string {
	if f == CSV {
		return "text/csv; charset=utf-8"
	}
	return "application/x-ndjson"
}

// Columns are the CSV columns, in order. Times are RFC 3339 with
// nanoseconds in UTC; tool.arguments, attributes and redactions are
// JSON; empty fields are empty cells. Do not reorder: tools read columns
// by position.
var Columns = []string{
	"seq", "time", "event_time", "event_id", "tenant_id", "user_id", "service", "auth_mode",
	"action", "agent", "session_id", "trace_id", "request_id",
	"tool.name", "tool.call_id", "tool.arguments", "tool.is_error", "tool.duration_ns",
	"model.name", "model.provider", "model.finish_reason", "model.input_tokens", "model.output_tokens",
	"outcome.status", "outcome.reason", "outcome.rule_id", "outcome.approver", "outcome.mode",
	"attributes", "redactions", "key_id", "prev_mac", "mac",
}

// Writer writes records in one format. Call Flush at the end.
type Writer struct {
	f      Format
	bw     *bufio.Writer
	enc    *json.Encoder
	cw     *csv.Writer
	header bool
	n      int
}

// NewWriter returns a Writer of format f to w.
func NewWriter(w io.Writer, f Format) (*Writer, error) {
	if f != JSONL && f != CSV {
		return nil, fmt.Errorf("%w %q", ErrFormat, f)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	x := &Writer{f: f, bw: bw}
	if f == CSV {
		x.cw = csv.NewWriter(bw)
	} else {
		x.enc = json.NewEncoder(bw)
		x.enc.SetEscapeHTML(false)
	}
	return x, nil
}

// Count returns how many records were written.
func (w *Writer) Count() int { return w.n }

// Write writes one record.
func (w *Writer) Write(r *vellum.Record) error {
	w.n++
	if w.f == JSONL {
		return w.enc.Encode(r)
	}
	if err := w.writeHeader(); err != nil {
		return err
	}
	return w.cw.Write(row(r))
}

func (w *Writer) writeHeader() error {
	if w.header || w.f != CSV {
		return nil
	}
	w.header = true
	return w.cw.Write(Columns)
}

// Flush writes what is buffered (and a CSV header when no record was
// written) to the underlying writer.
func (w *Writer) Flush() error {
	if err := w.writeHeader(); err != nil {
		return err
	}
	if w.cw != nil {
		w.cw.Flush()
		if err := w.cw.Error(); err != nil {
			return err
		}
	}
	return w.bw.Flush()
}

func row(r *vellum.Record) []string {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	js := func(v any, empty bool) string {
		if empty {
			return ""
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	num := func(n uint64) string {
		if n == 0 {
			return ""
		}
		return strconv.FormatUint(n, 10)
	}
	isErr := ""
	if r.Tool.IsError {
		isErr = "true"
	}
	mac := func(m vellum.MAC) string {
		if m.IsZero() {
			return ""
		}
		return m.String()
	}
	return []string{
		strconv.FormatUint(r.Seq, 10), ts(r.Time), ts(r.EventTime), r.EventID, r.TenantID, r.UserID, r.Service, r.AuthMode,
		r.Action, r.Agent, r.SessionID, r.TraceID, r.RequestID,
		r.Tool.Name, r.Tool.CallID, string(r.Tool.Arguments), isErr, num(uint64(max(r.Tool.DurationNS, 0))),
		r.Model.Name, r.Model.Provider, r.Model.FinishReason, num(r.Model.InputTokens), num(r.Model.OutputTokens),
		r.Outcome.Status, r.Outcome.Reason, r.Outcome.RuleID, r.Outcome.Approver, r.Outcome.Mode,
		js(r.Attributes, len(r.Attributes) == 0), js(r.Redactions, len(r.Redactions) == 0), r.KeyID, mac(r.PrevMAC), mac(r.MAC),
	}
}
