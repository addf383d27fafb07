package server

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/engine"
)

// ReservedAttrPrefix starts the attribute keys the server sets itself (such
// as "vellum.principal", the name of the token that ingested the event); a
// sender may not use it.
const ReservedAttrPrefix = "vellum."

// DecodeOptions configure DecodeEvents. The zero value works.
type DecodeOptions struct {
	// NDJSON decodes the body as a sequence of JSON objects (one per line
	// by convention) even when it starts with "[". Otherwise a body whose
	// first non-blank byte is "[" is one JSON array of events and any
	// other body a sequence of objects.
	NDJSON bool
	// MaxEvents bounds the events in the body (DefaultMaxEvents when 0).
	MaxEvents int
	// MaxRecordSize bounds each event's encoded record
	// (DefaultMaxRecordSize when 0).
	MaxRecordSize int
}

// DecodeEvents decodes an ingest body into records ready to append: either
// a JSON array of events or newline-delimited JSON objects. Each event is
// checked strictly: field names match exactly (case-sensitive), no field
// appears twice, unknown fields and fields the store assigns (seq, mac,
// prev_mac, key_id, redactions, event_time) are rejected, and the record
// must pass vellum.Record.Validate. The sender's "time" becomes EventTime;
// Time stays zero for the store to stamp. A JSON null counts as absent.
// As with encoding/json, invalid UTF-8 in a string becomes U+FFFD and tool
// arguments are kept byte for byte; nesting is bounded at 10,000 levels
// counted from the top of the body (so tool arguments in an array body may
// nest 9,997 levels).
//
// Any error is an *EventError naming the event's index, its line and the
// field; a body with an error yields no records at all.
//
// The records do not alias body; the strings and tool arguments of all of
// them share one buffer of about body's size.
func DecodeEvents(body []byte, opts DecodeOptions) ([]vellum.Record, error) {
	return decodeEvents(body, opts, nil, true)
}

// decodeEvents is DecodeEvents. With check false it leaves validation and
// the size limit to the store, which prepares each record once after the
// server added its attributes (ingestRecords); starts, when not nil,
// receives each event's byte offset, for the errors found then
// (recordError).
func decodeEvents(body []byte, opts DecodeOptions, starts *[]int, check bool) ([]vellum.Record, error) {
	return decodeEventsInto(nil, body, opts, starts, check)
}

// decodeEventsInto is decodeEvents decoding plain bodies into sc when sc
// is not nil (scratch.go).
func decodeEventsInto(sc *ingestScratch, body []byte, opts DecodeOptions, starts *[]int, check bool) ([]vellum.Record, error) {
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = DefaultMaxEvents
	}
	if opts.MaxRecordSize <= 0 {
		opts.MaxRecordSize = DefaultMaxRecordSize
	}
	// Plain bodies take the hand-written fast path (fastdecode.go); any
	// other body, and every error, is jsontext's.
	if recs, ok := fastDecodeInto(sc, body, opts, starts, check); ok {
		return recs, nil
	}
	if starts != nil {
		*starts = (*starts)[:0]
	}
	return slowDecodeEvents(body, opts, starts, check)
}

// slowDecodeEvents is decodeEvents with jsontext, for every body.
func slowDecodeEvents(body []byte, opts DecodeOptions, starts *[]int, check bool) ([]vellum.Record, error) {
	d := decoders.Get().(*eventDecoder)
	defer d.release()
	d.body, d.index, d.start, d.lines = body, -1, 0, lineCounter{b: body}
	start := skipSpace(body, 0)
	if start == len(body) {
		return nil, d.fail("", "the body is empty (send a JSON array of events or one JSON object per line)")
	}
	// The decoder reads body in place (a bytes.Buffer is not copied).
	// Duplicate names are checked here, per object, with the field's
	// path; inside tool arguments they are allowed, as encoding/json
	// allows them.
	d.in = *bytes.NewBuffer(body)
	d.dec.Reset(&d.in,
		jsontext.AllowDuplicateNames(true),
		jsontext.AllowInvalidUTF8(true))
	d.arena = make([]byte, 0, len(body))
	array := body[start] == '[' && !opts.NDJSON
	if array {
		if _, err := d.dec.ReadToken(); err != nil {
			return nil, d.syntax(err)
		}
	}
	// Every valid event names its action once: a cheap count sizes the
	// slice, sparing the copies (with write barriers) of growing it.
	recs := make([]vellum.Record, 0, max(min(bytes.Count(body, []byte(`"action"`)), opts.MaxEvents), 1))
	for {
		off := skipSpace(body, int(d.dec.InputOffset()))
		if array {
			// At the end, or at what cannot start an event, reading the
			// closing ] says what is wrong (index -1: the body).
			if off == len(body) || body[off] == ']' || body[off] == '}' {
				break
			}
			if off < len(body) && body[off] == ',' {
				off = skipSpace(body, off+1)
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
		recs = append(recs, vellum.Record{})
		rec := &recs[len(recs)-1]
		if err := d.event(rec); err != nil {
			return nil, err
		}
		if starts != nil {
			*starts = append(*starts, off)
		}
		if !check {
			continue
		}
		// The decoder has just checked the arguments' syntax with the
		// scanner Validate uses (and nesting within its bound), so
		// Validate checks everything else without scanning them again.
		args := rec.Tool.Arguments
		rec.Tool.Arguments = nil
		err := rec.Validate()
		rec.Tool.Arguments = args
		if err != nil {
			return nil, d.fail("", "%s", strings.TrimPrefix(err.Error(), vellum.ErrInvalid.Error()+": "))
		}
		if n := rec.EncodedSize(); n > opts.MaxRecordSize {
			return nil, &EventError{Index: d.index, Line: d.lines.at(d.start), Err: ErrEventTooLarge,
				Reason: fmt.Sprintf("the record is %d bytes encoded, over the maximum of %d", n, opts.MaxRecordSize)}
		}
	}
	if array {
		d.index = -1
		if _, err := d.dec.ReadToken(); err != nil { // the closing ]
			return nil, d.syntax(err)
		}
		if off := skipSpace(body, int(d.dec.InputOffset())); off != len(body) {
			d.start = off
			return nil, d.fail("", "data after the closing ] of the event array")
		}
	}
	if len(recs) == 0 {
		return nil, nil
	}
	return recs, nil
}

// decoders keeps eventDecoders (a jsontext.Decoder holds a few hundred
// bytes of state) for reuse: one-event requests are the common case.
var decoders = sync.Pool{New: func() any { return new(eventDecoder) }}

// noInput is what a pooled decoder reads from: it keeps no body alive.
var noInput = new(bytes.Reader)

// release drops every reference to the body and the records and returns
// d to the pool.
func (d *eventDecoder) release() {
	d.dec.Reset(noInput)
	d.in = bytes.Buffer{}
	d.body, d.lines, d.arena = nil, lineCounter{}, nil
	if cap(d.name) > 1<<10 {
		d.name = nil
	}
	decoders.Put(d)
}

// eventDecoder reads the events of one body with a jsontext.Decoder,
// remembering which event it is in for error messages.
type eventDecoder struct {
	body  []byte
	in    bytes.Buffer // body, read in place
	dec   jsontext.Decoder
	index int // event index, -1 outside an event
	start int // byte offset where the current event starts
	lines lineCounter
	// arena backs every string and tool argument of the decoded records.
	// It is only ever appended to, so what a record points at is never
	// written again (a grown arena leaves the old array to those strings).
	arena []byte
	// name holds an unescaped object name while it is matched.
	name []byte
}

func (d *eventDecoder) fail(field, format string, args ...any) *EventError {
	return &EventError{Index: d.index, Line: d.lines.at(d.start), Field: field, Reason: fmt.Sprintf(format, args...), Err: ErrBadEvent}
}

// syntax turns a decoder error into an EventError at the offending line.
func (d *eventDecoder) syntax(err error) *EventError {
	e := &EventError{Index: d.index, Err: ErrBadEvent}
	var se *jsontext.SyntacticError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		e.Line = d.lines.at(len(d.body))
		e.Reason = "malformed JSON: the body ends in the middle of a value"
	case errors.As(err, &se):
		e.Line = d.lines.at(int(se.ByteOffset))
		msg := "syntax error"
		if se.Err != nil {
			msg = se.Err.Error()
		}
		e.Reason = fmt.Sprintf("malformed JSON: %s at byte %d", msg, se.ByteOffset)
	default:
		e.Line = d.lines.at(int(d.dec.InputOffset()))
		e.Reason = "malformed JSON: " + strings.TrimPrefix(err.Error(), "jsontext: ")
	}
	return e
}

// keep copies b into the arena and returns it as a string.
func (d *eventDecoder) keep(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	start := len(d.arena)
	d.arena = append(d.arena, b...)
	return unsafe.String(&d.arena[start], len(b))
}

// unquote appends the contents of the JSON string raw to the arena and
// returns them. Invalid UTF-8 becomes U+FFFD, as in encoding/json.
func (d *eventDecoder) unquote(raw jsontext.Value) string {
	if s := raw[1 : len(raw)-1]; simpleString(s) {
		return d.keep(s)
	}
	start := len(d.arena)
	// The decoder has checked the syntax; an error here only says that
	// invalid UTF-8 was replaced, which is what we want.
	d.arena, _ = jsontext.AppendUnquote(d.arena, raw)
	if len(d.arena) == start {
		return ""
	}
	return unsafe.String(&d.arena[start], len(d.arena)-start)
}

// simpleString reports whether s, the inside of a JSON string, is its own
// value: ASCII without escapes. It looks at eight bytes at a time.
func simpleString(s []byte) bool {
	const (
		lo = 0x0101010101010101
		hi = 0x8080808080808080
		bs = 0x5c5c5c5c5c5c5c5c // backslashes
	)
	for len(s) >= 8 {
		w := binary.LittleEndian.Uint64(s)
		x := w ^ bs // zero bytes where s has a backslash
		if (w|((x-lo)&^x))&hi != 0 {
			return false
		}
		s = s[8:]
	}
	for _, c := range s {
		if c == '\\' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// readName reads the next object name, unescaped into d.name, valid until
// the next read.
func (d *eventDecoder) readName() ([]byte, error) {
	raw, err := d.dec.ReadValue()
	if err != nil {
		return nil, d.syntax(err)
	}
	if s := raw[1 : len(raw)-1]; simpleString(s) {
		return s, nil
	}
	d.name, _ = jsontext.AppendUnquote(d.name[:0], raw)
	return d.name, nil
}

// Fields of an event, its tool, model and outcome: ids index fieldPaths
// and are bits of an object's seen-mask.
const (
	fEventID = iota
	fTime
	fTenantID
	fUserID
	fService
	fAuthMode
	fAction
	fAgent
	fSessionID
	fTraceID
	fRequestID
	fTool
	fModel
	fOutcome
	fAttributes
	fToolName
	fToolCallID
	fToolArguments
	fToolIsError
	fToolDuration
	fModelName
	fModelProvider
	fModelFinish
	fModelIn
	fModelOut
	fStatus
	fReason
	fRuleID
	fApprover
	fMode
	nFields
)

// fieldPaths names each field as errors show it.
var fieldPaths = [nFields]string{
	"event_id", "time", "tenant_id", "user_id", "service", "auth_mode", "action", "agent", "session_id", "trace_id",
	"request_id", "tool", "model", "outcome", "attributes",
	"tool.name", "tool.call_id", "tool.arguments", "tool.is_error", "tool.duration_ns",
	"model.name", "model.provider", "model.finish_reason", "model.input_tokens", "model.output_tokens",
	"outcome.status", "outcome.reason", "outcome.rule_id", "outcome.approver", "outcome.mode",
}

// lookupFunc maps an object's member name to its field id, or returns -1
// and why the name is refused.
type lookupFunc func(name []byte) (int, string)

func eventField(name []byte) (int, string) {
	switch string(name) {
	case "event_id":
		return fEventID, ""
	case "time":
		return fTime, ""
	case "tenant_id":
		return fTenantID, ""
	case "user_id":
		return fUserID, ""
	case "service":
		return fService, ""
	case "auth_mode":
		return fAuthMode, ""
	case "action":
		return fAction, ""
	case "agent":
		return fAgent, ""
	case "session_id":
		return fSessionID, ""
	case "trace_id":
		return fTraceID, ""
	case "request_id":
		return fRequestID, ""
	case "tool":
		return fTool, ""
	case "model":
		return fModel, ""
	case "outcome":
		return fOutcome, ""
	case "attributes":
		return fAttributes, ""
	case "event_time":
		return -1, "is assigned by the store; send the event's own time as \"time\""
	case "seq", "mac", "prev_mac", "key_id", "redactions":
		return -1, "is assigned by the store; leave it out"
	}
	return -1, "unknown field (see docs/events.md)"
}

func toolField(name []byte) (int, string) {
	switch string(name) {
	case "name":
		return fToolName, ""
	case "call_id":
		return fToolCallID, ""
	case "arguments":
		return fToolArguments, ""
	case "is_error":
		return fToolIsError, ""
	case "duration_ns":
		return fToolDuration, ""
	}
	return -1, "unknown field (tool has name, call_id, arguments, is_error, duration_ns)"
}

func modelField(name []byte) (int, string) {
	switch string(name) {
	case "name":
		return fModelName, ""
	case "provider":
		return fModelProvider, ""
	case "finish_reason":
		return fModelFinish, ""
	case "input_tokens":
		return fModelIn, ""
	case "output_tokens":
		return fModelOut, ""
	}
	return -1, "unknown field (model has name, provider, finish_reason, input_tokens, output_tokens)"
}

func outcomeField(name []byte) (int, string) {
	switch string(name) {
	case "status":
		return fStatus, ""
	case "reason":
		return fReason, ""
	case "rule_id":
		return fRuleID, ""
	case "approver":
		return fApprover, ""
	case "mode":
		return fMode, ""
	}
	return -1, "unknown field (outcome has status, reason, rule_id, approver, mode)"
}

// event decodes one event object into r.
func (d *eventDecoder) event(r *vellum.Record) error {
	return d.object(r, "", eventField)
}

// object reads a JSON object (or, below the event, null: everything stays
// unset), storing each member into r. Duplicate names are rejected.
func (d *eventDecoder) object(r *vellum.Record, path string, lookup lookupFunc) error {
	switch k := d.dec.PeekKind(); k {
	case '{':
	case 0, '}', ']': // a syntax error or the end of the input: reading says which
		_, err := d.dec.ReadValue()
		return d.syntax(err)
	case 'n':
		if path != "" {
			_, err := d.dec.ReadValue()
			if err != nil {
				return d.syntax(err)
			}
			return nil
		}
		return d.wrongKind("", "a JSON object", "null")
	default:
		return d.wrongKind(path, "a JSON object", kindArticle(k))
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return d.syntax(err)
	}
	var seen uint64
	for d.dec.PeekKind() != '}' {
		name, err := d.readName()
		if err != nil {
			return err
		}
		id, why := lookup(name)
		if id < 0 {
			return d.fail(joinPath(path, string(name)), "%s", why)
		}
		if seen&(1<<id) != 0 {
			return d.fail(fieldPaths[id], "appears twice")
		}
		seen |= 1 << id
		if err := d.member(r, id); err != nil {
			return err
		}
	}
	if _, err := d.dec.ReadToken(); err != nil { // the closing }
		return d.syntax(err)
	}
	return nil
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// member decodes the value of field id into r.
func (d *eventDecoder) member(r *vellum.Record, id int) error {
	switch id {
	case fEventID:
		return d.str(id, &r.EventID)
	case fTime:
		return d.time(id, &r.EventTime)
	case fTenantID:
		return d.str(id, &r.TenantID)
	case fUserID:
		return d.str(id, &r.UserID)
	case fService:
		return d.str(id, &r.Service)
	case fAuthMode:
		return d.str(id, &r.AuthMode)
	case fAction:
		return d.str(id, &r.Action)
	case fAgent:
		return d.str(id, &r.Agent)
	case fSessionID:
		return d.str(id, &r.SessionID)
	case fTraceID:
		return d.str(id, &r.TraceID)
	case fRequestID:
		return d.str(id, &r.RequestID)
	case fTool:
		return d.object(r, "tool", toolField)
	case fModel:
		return d.object(r, "model", modelField)
	case fOutcome:
		return d.object(r, "outcome", outcomeField)
	case fAttributes:
		return d.attributes(&r.Attributes)
	case fToolName:
		return d.str(id, &r.Tool.Name)
	case fToolCallID:
		return d.str(id, &r.Tool.CallID)
	case fToolArguments:
		return d.arguments(&r.Tool.Arguments)
	case fToolIsError:
		return d.bool(id, &r.Tool.IsError)
	case fToolDuration:
		return d.int64(id, &r.Tool.DurationNS)
	case fModelName:
		return d.str(id, &r.Model.Name)
	case fModelProvider:
		return d.str(id, &r.Model.Provider)
	case fModelFinish:
		return d.str(id, &r.Model.FinishReason)
	case fModelIn:
		return d.uint64(id, &r.Model.InputTokens)
	case fModelOut:
		return d.uint64(id, &r.Model.OutputTokens)
	case fStatus:
		return d.str(id, &r.Outcome.Status)
	case fReason:
		return d.str(id, &r.Outcome.Reason)
	case fRuleID:
		return d.str(id, &r.Outcome.RuleID)
	case fApprover:
		return d.str(id, &r.Outcome.Approver)
	case fMode:
		return d.str(id, &r.Outcome.Mode)
	}
	panic("server: unhandled event field")
}

// attributes reads the attributes object: string values under names that
// do not start with ReservedAttrPrefix. A null value is an empty string.
func (d *eventDecoder) attributes(m *map[string]string) error {
	switch k := d.dec.PeekKind(); k {
	case '{':
	case 'n':
		if _, err := d.dec.ReadValue(); err != nil {
			return d.syntax(err)
		}
		return nil
	case 0, '}', ']':
		_, err := d.dec.ReadValue()
		return d.syntax(err)
	default:
		return d.wrongKind("attributes", "a JSON object", kindArticle(k))
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return d.syntax(err)
	}
	for d.dec.PeekKind() != '}' {
		raw, err := d.dec.ReadValue()
		if err != nil {
			return d.syntax(err)
		}
		key := d.unquote(raw)
		if strings.HasPrefix(key, ReservedAttrPrefix) {
			return d.fail("attributes."+key, "keys starting with %q are set by the server", ReservedAttrPrefix)
		}
		if _, dup := (*m)[key]; dup {
			return d.fail("attributes."+key, "appears twice")
		}
		var v string
		switch k := d.dec.PeekKind(); k {
		case '"', 'n':
			raw, err := d.dec.ReadValue()
			if err != nil {
				return d.syntax(err)
			}
			if k == '"' {
				v = d.unquote(raw)
			}
		case 0, '}', ']':
			_, err := d.dec.ReadValue()
			return d.syntax(err)
		default:
			return d.wrongKind("attributes."+key, "a string", kindName(k))
		}
		if *m == nil {
			*m = map[string]string{}
		}
		(*m)[key] = v
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return d.syntax(err)
	}
	return nil
}

// wrongKind reads the value whose first byte says it is not what the
// field wants, so that malformed JSON that merely starts like a value of
// another kind (a body of "t" or "nul") is reported as malformed, and
// then reports the wrong kind.
func (d *eventDecoder) wrongKind(path, want, got string) error {
	if _, err := d.dec.ReadValue(); err != nil {
		return d.syntax(err)
	}
	return d.fail(path, "want %s, got %s", want, got)
}

// scalar reads the next value and returns it when it is of kind want (or,
// for want 't', a boolean), and nil for null. The bytes are valid until the
// next read. A value of another kind is an error naming the field and what
// it wants.
func (d *eventDecoder) scalar(id int, want jsontext.Kind, what string) (jsontext.Value, error) {
	v, err := d.dec.ReadValue()
	if err != nil {
		return nil, d.syntax(err)
	}
	switch k := v.Kind(); {
	case k == want, want == 't' && k == 'f':
		return v, nil
	case k == 'n':
		return nil, nil
	default:
		return nil, d.fail(fieldPaths[id], "want %s, got %s", what, kindName(k))
	}
}

func (d *eventDecoder) str(id int, p *string) error {
	v, err := d.scalar(id, '"', "a string")
	if v != nil {
		*p = d.unquote(v)
	}
	return err
}

func (d *eventDecoder) time(id int, p *time.Time) error {
	v, err := d.scalar(id, '"', "an RFC 3339 time string")
	if v == nil {
		return err
	}
	s := d.unquote(v)
	t, perr := time.Parse(time.RFC3339Nano, s)
	if perr != nil {
		return d.fail(fieldPaths[id], "%q is not an RFC 3339 time like 2026-11-27T10:00:00Z", s)
	}
	*p = t.UTC()
	return nil
}

func (d *eventDecoder) bool(id int, p *bool) error {
	v, err := d.scalar(id, 't', "true or false")
	if v != nil {
		*p = v[0] == 't'
	}
	return err
}

func (d *eventDecoder) int64(id int, p *int64) error {
	v, err := d.scalar(id, '0', "a whole number of nanoseconds")
	if v == nil {
		return err
	}
	n, ok := parseInt(v)
	if !ok {
		return d.fail(fieldPaths[id], "want a whole number of nanoseconds, got number %s", v)
	}
	*p = n
	return nil
}

func (d *eventDecoder) uint64(id int, p *uint64) error {
	v, err := d.scalar(id, '0', "a whole number of at least 0")
	if v == nil {
		return err
	}
	n, ok := parseUint(v)
	if !ok {
		return d.fail(fieldPaths[id], "want a whole number of at least 0, got number %s", v)
	}
	*p = n
	return nil
}

// arguments keeps tool.arguments byte for byte (null: absent). Its syntax
// has been checked by the decoder; Validate bounds its depth.
func (d *eventDecoder) arguments(p *json.RawMessage) error {
	v, err := d.dec.ReadValue()
	if err != nil {
		return d.syntax(err)
	}
	if v.Kind() == 'n' {
		return nil
	}
	start := len(d.arena)
	d.arena = append(d.arena, v...)
	*p = d.arena[start:len(d.arena):len(d.arena)]
	return nil
}

// parseUint parses a JSON number that is a whole number in uint64's
// range, as encoding/json does for unsigned fields: no fraction, no
// exponent, no sign.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// parseInt parses a JSON number that is a whole number in int64's range.
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	u, ok := parseUint(b)
	switch {
	case !ok:
		return 0, false
	case neg && u <= 1<<63:
		return -int64(u-1) - 1, true
	case !neg && u < 1<<63:
		return int64(u), true
	}
	return 0, false
}

// kindName names a JSON kind as encoding/json's type errors did.
func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "bool"
	case '{':
		return "object"
	case '[':
		return "array"
	case 'n':
		return "null"
	}
	return k.String()
}

// kindArticle names a JSON kind with its article, for "want a JSON object".
func kindArticle(k jsontext.Kind) string {
	switch k {
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case '[':
		return "an array"
	case 'n':
		return "null"
	}
	return k.String()
}

func skipSpace(b []byte, off int) int {
	for off < len(b) && (b[off] == ' ' || b[off] == '\t' || b[off] == '\n' || b[off] == '\r') {
		off++
	}
	return off
}

// lineCounter turns byte offsets into 1-based line numbers, counting
// forward from the last offset asked about (offsets mostly increase).
type lineCounter struct {
	b    []byte
	off  int
	line int
}

func (l *lineCounter) at(off int) int {
	off = min(max(off, 0), len(l.b))
	if off < l.off {
		l.off, l.line = 0, 0
	}
	l.line += bytes.Count(l.b[l.off:off], []byte{'\n'})
	l.off = off
	return l.line + 1
}

// recordError turns the store's refusal of one record of a body (an
// *engine.RecordError: invalid, or too large once encoded) into the
// *EventError that names the event and its line. starts are the events'
// offsets from decodeEvents. Other errors are returned as they are.
func recordError(body []byte, starts []int, err error) error {
	var re *engine.RecordError
	if !errors.As(err, &re) || re.Index < 0 || re.Index >= len(starts) {
		return err
	}
	lines := lineCounter{b: body}
	ee := &EventError{Index: re.Index, Line: lines.at(starts[re.Index]), Err: ErrBadEvent}
	switch {
	case errors.Is(re.Err, engine.ErrTooLarge):
		ee.Err, ee.Reason = ErrEventTooLarge, trimPrefix(re.Err, engine.ErrTooLarge)
	case errors.Is(re.Err, vellum.ErrInvalid):
		ee.Reason = trimPrefix(re.Err, vellum.ErrInvalid)
	default:
		ee.Reason = re.Err.Error()
	}
	return ee
}
