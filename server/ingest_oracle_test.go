package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vellumlog/vellum"
)

// DecodeEvents decodes an ingest body into records ready to append: either
// a JSON array of events or newline-delimited JSON objects. Each event is
// checked strictly: field names match exactly (case-sensitive), no field
// appears twice, unknown fields and fields the store assigns (seq, mac,
// prev_mac, key_id, redactions, event_time) are rejected, and the record
// must pass vellum.Record.Validate. The sender's "time" becomes EventTime;
// Time stays zero for the store to stamp. A JSON null counts as absent.
//
// Any error is an *EventError naming the event's index, its line and the
// field; a body with an error yields no records at all.
func oracleDecodeEvents(body []byte, opts DecodeOptions) ([]vellum.Record, error) {
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = DefaultMaxEvents
	}
	if opts.MaxRecordSize <= 0 {
		opts.MaxRecordSize = DefaultMaxRecordSize
	}
	d := &oracleDecoder{body: body, dec: json.NewDecoder(bytes.NewReader(body)), index: -1, lines: oracleLineCounter{b: body}}
	start := oracleSkipSpace(body, 0)
	if start == len(body) {
		return nil, d.fail("", "the body is empty (send a JSON array of events or one JSON object per line)")
	}
	array := body[start] == '[' && !opts.NDJSON
	var recs []vellum.Record
	if array {
		if _, err := d.dec.Token(); err != nil {
			return nil, d.syntax(err)
		}
	}
	var buf []byte
	for {
		off := oracleSkipSpace(body, int(d.dec.InputOffset()))
		if array {
			if !d.dec.More() {
				break
			}
			off = oracleSkipSpace(body, off)
			if off < len(body) && body[off] == ',' {
				off = oracleSkipSpace(body, off+1)
			}
		} else if off == len(body) {
			break
		}
		d.index = len(recs)
		d.start = off
		if len(recs) == opts.MaxEvents {
			return nil, &EventError{Index: d.index, Line: d.lines.at(off), Err: ErrTooManyEvents,
				Reason: fmt.Sprintf("more than %d events in one request; send them in several", opts.MaxEvents)}
		}
		rec, err := d.event()
		if err != nil {
			return nil, err
		}
		if err := rec.Validate(); err != nil {
			return nil, d.fail("", "%s", strings.TrimPrefix(err.Error(), vellum.ErrInvalid.Error()+": "))
		}
		buf, err = rec.AppendBinary(buf[:0])
		if err != nil {
			return nil, d.fail("", "%s", err.Error())
		}
		if len(buf) > opts.MaxRecordSize {
			return nil, &EventError{Index: d.index, Line: d.lines.at(d.start), Err: ErrEventTooLarge,
				Reason: fmt.Sprintf("the record is %d bytes encoded, over the maximum of %d", len(buf), opts.MaxRecordSize)}
		}
		recs = append(recs, rec)
	}
	if array {
		d.index = -1
		if _, err := d.dec.Token(); err != nil { // the closing ]
			return nil, d.syntax(err)
		}
		if off := oracleSkipSpace(body, int(d.dec.InputOffset())); off != len(body) {
			d.start = off
			return nil, d.fail("", "data after the closing ] of the event array")
		}
	}
	return recs, nil
}

// oracleDecoder walks the JSON tokens of an ingest body, remembering which
// event it is in for error messages.
type oracleDecoder struct {
	body  []byte
	dec   *json.Decoder
	index int // event index, -1 outside an event
	start int // byte offset where the current event starts
	lines oracleLineCounter
}

func (d *oracleDecoder) fail(field, format string, args ...any) *EventError {
	return &EventError{Index: d.index, Line: d.lines.at(d.start), Field: field, Reason: fmt.Sprintf(format, args...), Err: ErrBadEvent}
}

// syntax turns a decoder error into an EventError at the offending line.
func (d *oracleDecoder) syntax(err error) *EventError {
	// The decoder stops at the start of the value it could not read
	// (json.SyntaxError.Offset counts from elsewhere for values read with
	// Decode), so the line is where that value starts.
	var se *json.SyntaxError
	e := &EventError{Index: d.index, Line: d.lines.at(oracleSkipSpace(d.body, int(d.dec.InputOffset()))), Err: ErrBadEvent}
	switch {
	case errors.As(err, &se):
		e.Reason = "malformed JSON: " + strings.TrimPrefix(se.Error(), "json: ")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		e.Line = d.lines.at(len(d.body))
		e.Reason = "malformed JSON: the body ends in the middle of a value"
	default:
		e.Reason = "malformed JSON: " + strings.TrimPrefix(err.Error(), "json: ")
	}
	return e
}

// event decodes one event object.
func (d *oracleDecoder) event() (vellum.Record, error) {
	var r vellum.Record
	err := d.object("", func(key string) error {
		switch key {
		case "event_id":
			return d.str(key, &r.EventID)
		case "time":
			return d.time(key, &r.EventTime)
		case "tenant_id":
			return d.str(key, &r.TenantID)
		case "user_id":
			return d.str(key, &r.UserID)
		case "service":
			return d.str(key, &r.Service)
		case "auth_mode":
			return d.str(key, &r.AuthMode)
		case "action":
			return d.str(key, &r.Action)
		case "agent":
			return d.str(key, &r.Agent)
		case "session_id":
			return d.str(key, &r.SessionID)
		case "trace_id":
			return d.str(key, &r.TraceID)
		case "request_id":
			return d.str(key, &r.RequestID)
		case "tool":
			return d.tool(&r.Tool)
		case "model":
			return d.model(&r.Model)
		case "outcome":
			return d.outcome(&r.Outcome)
		case "attributes":
			return d.attributes(&r.Attributes)
		case "event_time":
			return d.fail(key, "is assigned by the store; send the event's own time as \"time\"")
		case "seq", "mac", "prev_mac", "key_id", "redactions":
			return d.fail(key, "is assigned by the store; leave it out")
		}
		return d.fail(key, "unknown field (see docs/events.md)")
	})
	return r, err
}

func (d *oracleDecoder) tool(t *vellum.Tool) error {
	return d.object("tool", func(key string) error {
		f := "tool." + key
		switch key {
		case "name":
			return d.str(f, &t.Name)
		case "call_id":
			return d.str(f, &t.CallID)
		case "arguments":
			var raw json.RawMessage
			if err := d.dec.Decode(&raw); err != nil {
				return d.syntax(err)
			}
			if !bytes.Equal(raw, []byte("null")) {
				t.Arguments = raw
			}
			return nil
		case "is_error":
			return d.value(f, &t.IsError, "true or false")
		case "duration_ns":
			return d.value(f, &t.DurationNS, "a whole number of nanoseconds")
		}
		return d.fail(f, "unknown field (tool has name, call_id, arguments, is_error, duration_ns)")
	})
}

func (d *oracleDecoder) model(m *vellum.Model) error {
	return d.object("model", func(key string) error {
		f := "model." + key
		switch key {
		case "name":
			return d.str(f, &m.Name)
		case "provider":
			return d.str(f, &m.Provider)
		case "finish_reason":
			return d.str(f, &m.FinishReason)
		case "input_tokens":
			return d.value(f, &m.InputTokens, "a whole number of at least 0")
		case "output_tokens":
			return d.value(f, &m.OutputTokens, "a whole number of at least 0")
		}
		return d.fail(f, "unknown field (model has name, provider, finish_reason, input_tokens, output_tokens)")
	})
}

func (d *oracleDecoder) outcome(o *vellum.Outcome) error {
	return d.object("outcome", func(key string) error {
		f := "outcome." + key
		switch key {
		case "status":
			return d.str(f, &o.Status)
		case "reason":
			return d.str(f, &o.Reason)
		case "rule_id":
			return d.str(f, &o.RuleID)
		case "approver":
			return d.str(f, &o.Approver)
		case "mode":
			return d.str(f, &o.Mode)
		}
		return d.fail(f, "unknown field (outcome has status, reason, rule_id, approver, mode)")
	})
}

func (d *oracleDecoder) attributes(m *map[string]string) error {
	return d.object("attributes", func(key string) error {
		f := "attributes." + key
		if strings.HasPrefix(key, ReservedAttrPrefix) {
			return d.fail(f, "keys starting with %q are set by the server", ReservedAttrPrefix)
		}
		var v string
		if err := d.str(f, &v); err != nil {
			return err
		}
		if *m == nil {
			*m = map[string]string{}
		}
		(*m)[key] = v
		return nil
	})
}

// object reads a JSON object (or null, leaving everything unset), calling
// field for each key with the decoder positioned at its value. Duplicate
// keys are rejected.
func (d *oracleDecoder) object(path string, field func(key string) error) error {
	tok, err := d.dec.Token()
	if err != nil {
		return d.syntax(err)
	}
	if tok == nil && path != "" {
		return nil
	}
	if delim, ok := tok.(json.Delim); !ok || delim != '{' {
		if path == "" {
			return d.fail("", "want a JSON object, got %s", oracleDescribe(tok))
		}
		return d.fail(path, "want a JSON object, got %s", oracleDescribe(tok))
	}
	seen := map[string]bool{}
	for d.dec.More() {
		tok, err := d.dec.Token()
		if err != nil {
			return d.syntax(err)
		}
		key := tok.(string) // object keys are always strings
		if seen[key] {
			name := key
			if path != "" {
				name = path + "." + key
			}
			return d.fail(name, "appears twice")
		}
		seen[key] = true
		if err := field(key); err != nil {
			return err
		}
	}
	if _, err := d.dec.Token(); err != nil { // the closing }
		return d.syntax(err)
	}
	return nil
}

func (d *oracleDecoder) str(field string, p *string) error {
	return d.value(field, p, "a string")
}

func (d *oracleDecoder) time(field string, p *time.Time) error {
	var s *string
	if err := d.value(field, &s, "an RFC 3339 time string"); err != nil || s == nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		return d.fail(field, "%q is not an RFC 3339 time like 2026-11-27T10:00:00Z", *s)
	}
	*p = t.UTC()
	return nil
}

// value decodes the next JSON value into p, naming field and what it wants
// when the JSON type does not fit.
func (d *oracleDecoder) value(field string, p any, want string) error {
	if err := d.dec.Decode(p); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return d.fail(field, "want %s, got %s", want, te.Value)
		}
		return d.syntax(err)
	}
	return nil
}

func oracleDescribe(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return "an array"
		}
		return string(v)
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case float64, json.Number:
		return "a number"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", tok)
}

func oracleSkipSpace(b []byte, off int) int {
	for off < len(b) && (b[off] == ' ' || b[off] == '\t' || b[off] == '\n' || b[off] == '\r') {
		off++
	}
	return off
}

// oracleLineCounter turns byte offsets into 1-based line numbers, counting
// forward from the last offset asked about (offsets mostly increase).
type oracleLineCounter struct {
	b    []byte
	off  int
	line int
}

func (l *oracleLineCounter) at(off int) int {
	off = min(max(off, 0), len(l.b))
	if off < l.off {
		l.off, l.line = 0, 0
	}
	l.line += bytes.Count(l.b[l.off:off], []byte{'\n'})
	l.off = off
	return l.line + 1
}
