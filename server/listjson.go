package server

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vellumlog/vellum"
)

// The body of GET /v1/audit is written by hand, without reflection: for a
// page of 100 records encoding/json spent most of the handler's own CPU on
// reflection, map-key sorting and one allocation per field (PERFORMANCE.md,
// "GET /v1/audit over HTTP"). The bytes are exactly those writeJSON makes of
// a listResponse; TestListJSONMatchesEncodingJSON and FuzzListJSON hold the
// two together. Anything the hand encoder does not reproduce exactly (a
// time encoding/json refuses, tool arguments that are not valid JSON)
// makes it give up, and the caller falls back to writeJSON, so even the
// error answers stay the same.

// errListJSON makes the caller fall back to encoding/json.
var errListJSON = errors.New("server: record not encodable by the hand encoder")

// listEncoder holds the buffers of one answer; listEncoders recycles
// them, dropping one that grew beyond maxPooledList rather than keeping a
// huge page's memory alive.
type listEncoder struct {
	b   []byte
	tmp bytes.Buffer // json.Compact's output and the checkpoints
}

var listEncoders = sync.Pool{New: func() any { return &listEncoder{b: make([]byte, 0, 64<<10)} }}

const maxPooledList = 4 << 20

func getListEncoder() *listEncoder { return listEncoders.Get().(*listEncoder) }

// release returns e to the pool unless a huge page made it grow.
func (e *listEncoder) release() {
	if cap(e.b) <= maxPooledList && e.tmp.Cap() <= maxPooledList {
		listEncoders.Put(e)
	}
}

// writeList writes resp as writeJSON(w, 200, resp) would, with a
// Content-Length.
func writeList(w http.ResponseWriter, resp *listResponse) {
	e := getListEncoder()
	defer e.release()
	if err := e.encode(resp); err != nil {
		writeJSON(w, http.StatusOK, resp)
		return
	}
	e.write(w)
}

// write sends e.b as a 200 application/json answer.
func (e *listEncoder) write(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(e.b)))
	w.WriteHeader(http.StatusOK)
	w.Write(e.b)
}

// encode makes e.b the JSON of resp, ending in a newline.
func (e *listEncoder) encode(resp *listResponse) error {
	if err := e.encodeRecords(resp.Records); err != nil {
		return err
	}
	return e.finish(resp)
}

// encodeRecords makes e.b the start of a listResponse: its records.
// finish writes the rest, so the page can be encoded before the cursor
// is known.
func (e *listEncoder) encodeRecords(recs []vellum.Record) error {
	b := append(e.b[:0], `{"records":[`...)
	var err error
	for i := range recs {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = e.appendRecord(b, &recs[i]); err != nil {
			return err
		}
	}
	e.b = append(b, ']')
	return nil
}

// finish appends to e.b what follows the records of resp.
func (e *listEncoder) finish(resp *listResponse) error {
	b := e.b
	if resp.NextCursor != "" {
		b = append(b, `,"next_cursor":`...)
		b = appendJSONString(b, resp.NextCursor)
	}
	for _, c := range [...]struct {
		name string
		cp   *checkpointJSON
	}{{"checkpoint", resp.Checkpoint}, {"cosigned_checkpoint", resp.CosignedCheckpoint}} {
		if c.cp == nil {
			continue
		}
		b = append(b, `,"`...)
		b = append(b, c.name...)
		b = append(b, `":`...)
		e.tmp.Reset()
		enc := json.NewEncoder(&e.tmp)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(c.cp); err != nil {
			return err
		}
		b = append(b, bytes.TrimSuffix(e.tmp.Bytes(), []byte("\n"))...)
	}
	e.b = append(b, "}\n"...)
	return nil
}

// appendRecord writes r as encoding/json does: fields in declaration
// order, omitempty and omitzero as tagged, attribute keys sorted.
func (e *listEncoder) appendRecord(b []byte, r *vellum.Record) ([]byte, error) {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"time":`...)
	var err error
	if b, err = appendJSONTime(b, r.Time); err != nil {
		return nil, err
	}
	b = appendStringField(b, "event_id", r.EventID)
	if !r.EventTime.IsZero() {
		b = append(b, `,"event_time":`...)
		if b, err = appendJSONTime(b, r.EventTime); err != nil {
			return nil, err
		}
	}
	b = appendStringField(b, "tenant_id", r.TenantID)
	b = appendStringField(b, "user_id", r.UserID)
	b = appendStringField(b, "service", r.Service)
	b = appendStringField(b, "auth_mode", r.AuthMode)
	b = append(b, `,"action":`...)
	b = appendJSONString(b, r.Action)
	if !r.Tool.IsZero() {
		if b, err = e.appendTool(b, &r.Tool); err != nil {
			return nil, err
		}
	}
	if !r.Model.IsZero() {
		b = appendModelJSON(b, &r.Model)
	}
	b = appendStringField(b, "agent", r.Agent)
	b = appendStringField(b, "session_id", r.SessionID)
	b = appendStringField(b, "trace_id", r.TraceID)
	b = appendStringField(b, "request_id", r.RequestID)
	b = append(b, `,"outcome":{"status":`...)
	b = appendJSONString(b, r.Outcome.Status)
	b = appendStringField(b, "reason", r.Outcome.Reason)
	b = appendStringField(b, "rule_id", r.Outcome.RuleID)
	b = appendStringField(b, "approver", r.Outcome.Approver)
	b = appendStringField(b, "mode", r.Outcome.Mode)
	b = append(b, '}')
	b = appendAttributesJSON(b, r.Attributes)
	b = appendRedactionsJSON(b, r.Redactions)
	b = appendStringField(b, "key_id", r.KeyID)
	b = appendMACField(b, "prev_mac", &r.PrevMAC)
	b = appendMACField(b, "mac", &r.MAC)
	return append(b, '}'), nil
}

func (e *listEncoder) appendTool(b []byte, t *vellum.Tool) ([]byte, error) {
	b = append(b, `,"tool":{`...)
	mark := len(b)
	b = appendStringField(b, "name", t.Name)
	b = appendStringField(b, "call_id", t.CallID)
	if len(t.Arguments) > 0 {
		b = append(b, `,"arguments":`...)
		// encoding/json compacts a json.RawMessage, without escaping
		// HTML when the encoder does not; json.Compact is that code.
		// It also validates, in the same pass.
		e.tmp.Reset()
		if err := json.Compact(&e.tmp, t.Arguments); err != nil {
			return nil, errListJSON
		}
		b = append(b, e.tmp.Bytes()...)
	}
	if t.IsError {
		b = append(b, `,"is_error":true`...)
	}
	if t.DurationNS != 0 {
		b = append(b, `,"duration_ns":`...)
		b = strconv.AppendInt(b, t.DurationNS, 10)
	}
	b = append(b[:mark], b[mark+1:]...) // the first field's comma
	return append(b, '}'), nil
}

func appendModelJSON(b []byte, m *vellum.Model) []byte {
	b = append(b, `,"model":{`...)
	mark := len(b)
	b = appendStringField(b, "name", m.Name)
	b = appendStringField(b, "provider", m.Provider)
	b = appendStringField(b, "finish_reason", m.FinishReason)
	if m.InputTokens != 0 {
		b = append(b, `,"input_tokens":`...)
		b = strconv.AppendUint(b, m.InputTokens, 10)
	}
	if m.OutputTokens != 0 {
		b = append(b, `,"output_tokens":`...)
		b = strconv.AppendUint(b, m.OutputTokens, 10)
	}
	b = append(b[:mark], b[mark+1:]...) // the first field's comma
	return append(b, '}')
}

// appendAttributesJSON writes the attributes in sorted key order, as
// encoding/json sorts map keys.
func appendAttributesJSON(b []byte, attrs map[string]string) []byte {
	if len(attrs) == 0 {
		return b
	}
	var small [16]string
	keys := small[:0]
	for k := range attrs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, `,"attributes":{`...)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, attrs[k])
	}
	return append(b, '}')
}

func appendRedactionsJSON(b []byte, rs []vellum.Redaction) []byte {
	if len(rs) == 0 {
		return b
	}
	b = append(b, `,"redactions":[`...)
	for i := range rs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"rule":`...)
		b = appendJSONString(b, rs[i].Rule)
		b = append(b, `,"field":`...)
		b = appendJSONString(b, rs[i].Field)
		b = append(b, `,"count":`...)
		b = strconv.AppendUint(b, uint64(rs[i].Count), 10)
		b = append(b, '}')
	}
	return append(b, ']')
}

func appendMACField(b []byte, name string, m *vellum.MAC) []byte {
	if m.IsZero() {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':', '"')
	b = hex.AppendEncode(b, m[:])
	return append(b, '"')
}

// appendStringField writes ,"name":"value" unless value is empty
// (omitempty).
func appendStringField(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendJSONString(b, v)
}

// appendJSONTime writes t as time.Time.MarshalJSON does, and refuses what
// it refuses (a year outside 0–9999, a zone offset of 24 hours or more).
func appendJSONTime(b []byte, t time.Time) ([]byte, error) {
	b = append(b, '"')
	n0 := len(b)
	b = t.AppendFormat(b, time.RFC3339Nano)
	if len(b)-n0 < len("2006-01-02T15:04:05Z") || b[n0+4] != '-' {
		return nil, errListJSON
	}
	if b[len(b)-1] != 'Z' {
		c := b[len(b)-len("Z07:00")]
		h := 10*(b[len(b)-5]-'0') + (b[len(b)-4] - '0')
		if ('0' <= c && c <= '9') || h >= 24 {
			return nil, errListJSON
		}
	}
	return append(b, '"'), nil
}

// appendJSONString writes s as a JSON string exactly as encoding/json does
// with HTML escaping off: ", \ and control characters escaped (\b \f \n
// \r \t short), invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"
