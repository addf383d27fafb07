package vellum

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Outcome statuses. The set is closed: Validate rejects any other value.
const (
	StatusSuccess  = "success"
	StatusFailure  = "failure"
	StatusDenied   = "denied"
	StatusApproved = "approved"
	StatusPending  = "pending"
	StatusBlocked  = "blocked"
)

// Statuses lists every valid outcome status in a stable order; its index is
// the status's bit in per-block summaries.
var Statuses = []string{StatusSuccess, StatusFailure, StatusDenied, StatusApproved, StatusPending, StatusBlocked}

// MACSize is the size in bytes of a chain MAC (HMAC-SHA256).
const MACSize = 32

// MAC is an HMAC-SHA256 value of the record chain. Its JSON and text form is
// lower-case hex.
type MAC [MACSize]byte

// IsZero reports whether m is all zero bytes (no MAC assigned).
func (m MAC) IsZero() bool { return m == MAC{} }

// String returns m in lower-case hex.
func (m MAC) String() string { return hex.EncodeToString(m[:]) }

// MarshalText encodes m as lower-case hex.
func (m MAC) MarshalText() ([]byte, error) {
	b := make([]byte, hex.EncodedLen(MACSize))
	hex.Encode(b, m[:])
	return b, nil
}

// UnmarshalText decodes a 64-character hex string into m.
func (m *MAC) UnmarshalText(b []byte) error {
	if len(b) != hex.EncodedLen(MACSize) {
		return fmt.Errorf("%w: mac must be %d hex characters, got %d", ErrInvalid, hex.EncodedLen(MACSize), len(b))
	}
	if _, err := hex.Decode(m[:], b); err != nil {
		return fmt.Errorf("%w: mac: %v", ErrInvalid, err)
	}
	return nil
}

// Record is one audit event. Fields a producer sets describe the event; the
// store assigns Seq, Time, KeyID, PrevMAC and MAC, and the redactor records
// which rules fired in Redactions. Zero-valued optional fields are omitted
// from the JSON form.
type Record struct {
	// Seq is the record's position in the log, starting at 1, assigned by
	// the store and strictly increasing.
	Seq uint64 `json:"seq"`
	// Time is the store's receipt time in UTC with nanoseconds. It never
	// decreases with Seq and is what time-range queries use.
	Time time.Time `json:"time"`
	// EventID is the producer's idempotency key, unique per tenant.
	EventID string `json:"event_id,omitempty"`
	// EventTime is the producer's own time for the event, kept as sent.
	EventTime time.Time `json:"event_time,omitzero"`

	// Who.
	TenantID string `json:"tenant_id,omitempty"`
	UserID   string `json:"user_id,omitempty"`
	Service  string `json:"service,omitempty"`   // a non-human caller
	AuthMode string `json:"auth_mode,omitempty"` // how the caller authenticated, e.g. "gateway", "bearer", "mtls"

	// What.
	Action string `json:"action"` // dotted taxonomy, e.g. "tool.call"
	Tool   Tool   `json:"tool,omitzero"`
	Model  Model  `json:"model,omitzero"`

	// Where.
	Agent     string `json:"agent,omitempty"`
	SessionID string `json:"session_id,omitempty"`
	TraceID   string `json:"trace_id,omitempty"`
	RequestID string `json:"request_id,omitempty"`

	// Outcome.
	Outcome Outcome `json:"outcome"`

	// Attributes holds further string facts about the event. Keys are
	// sorted in the binary encoding.
	Attributes map[string]string `json:"attributes,omitempty"`

	// Redactions says which redaction rules fired, where and how often;
	// never the redacted value.
	Redactions []Redaction `json:"redactions,omitempty"`

	// KeyID names the HMAC key that chains this record (hex); set on read.
	KeyID string `json:"key_id,omitempty"`
	// PrevMAC is the chain value before this record; set on read.
	PrevMAC MAC `json:"prev_mac,omitzero"`
	// MAC is HMAC-SHA256(key, PrevMAC || canonical encoding); set on read.
	MAC MAC `json:"mac,omitzero"`
}

// Tool describes a tool call or its result.
type Tool struct {
	Name   string `json:"name,omitempty"`
	CallID string `json:"call_id,omitempty"`
	// Arguments is the tool's argument object as JSON, accumulated from
	// streamed deltas. Stored byte for byte after redaction.
	Arguments json.RawMessage `json:"arguments,omitempty"`
	// IsError reports that a tool result was an error.
	IsError bool `json:"is_error,omitempty"`
	// DurationNS is how long the tool ran, for results.
	DurationNS int64 `json:"duration_ns,omitempty"`
}

// IsZero reports whether t carries nothing.
func (t Tool) IsZero() bool {
	return t.Name == "" && t.CallID == "" && len(t.Arguments) == 0 && !t.IsError && t.DurationNS == 0
}

// Model describes the model behind a decision and what it used.
type Model struct {
	Name         string `json:"name,omitempty"`
	Provider     string `json:"provider,omitempty"`
	FinishReason string `json:"finish_reason,omitempty"`
	InputTokens  uint64 `json:"input_tokens,omitempty"`
	OutputTokens uint64 `json:"output_tokens,omitempty"`
}

// IsZero reports whether m carries nothing.
func (m Model) IsZero() bool { return m == Model{} }

// Outcome says how the action ended and, for decisions, why and by whom.
type Outcome struct {
	Status   string `json:"status"`             // one of Statuses
	Reason   string `json:"reason,omitempty"`   // error message or decision reason
	RuleID   string `json:"rule_id,omitempty"`  // the permission or guardrail rule that decided
	Approver string `json:"approver,omitempty"` // who approved or denied
	Mode     string `json:"mode,omitempty"`     // "enforce" or "observe" for permission decisions
}

// Redaction records that a rule fired Count times in Field (a dotted path
// such as "tool.arguments.query").
type Redaction struct {
	Rule  string `json:"rule"`
	Field string `json:"field"`
	Count uint32 `json:"count"`
}

// Limits on producer-supplied fields, checked by Validate.
const (
	MaxActionLen = 128
	MaxIDLen     = 512
)

// ValidStatus reports whether s is one of Statuses.
func ValidStatus(s string) bool { return StatusBit(s) != 0 }

// StatusBit returns the bit of status s in a summary mask, or 0 for an
// unknown status. Bit i is Statuses[i]'s (summaries on disk hold these
// bits: the order must not change); a switch on the constants finds it
// without comparing s with each in turn.
func StatusBit(s string) uint8 {
	switch s {
	case StatusSuccess:
		return 1 << 0
	case StatusFailure:
		return 1 << 1
	case StatusDenied:
		return 1 << 2
	case StatusApproved:
		return 1 << 3
	case StatusPending:
		return 1 << 4
	case StatusBlocked:
		return 1 << 5
	}
	return 0
}

// Validate checks the producer-supplied part of r: an action in the dotted
// taxonomy form, a known outcome status, valid UTF-8 everywhere, well-formed
// JSON arguments and bounded identifiers. Errors wrap ErrInvalid and name the
// field.
func (r *Record) Validate() error {
	if err := validAction(r.Action); err != nil {
		return err
	}
	if !ValidStatus(r.Outcome.Status) {
		if r.Outcome.Status == "" {
			return fmt.Errorf("%w: outcome.status is required (one of %s)", ErrInvalid, strings.Join(Statuses, ", "))
		}
		return fmt.Errorf("%w: outcome.status %q is not one of %s", ErrInvalid, r.Outcome.Status, strings.Join(Statuses, ", "))
	}
	if r.Outcome.Mode != "" && r.Outcome.Mode != "enforce" && r.Outcome.Mode != "observe" {
		return fmt.Errorf("%w: outcome.mode %q is not enforce or observe", ErrInvalid, r.Outcome.Mode)
	}
	if r.Tool.DurationNS < 0 {
		return fmt.Errorf("%w: tool.duration_ns is negative", ErrInvalid)
	}
	if !r.EventTime.IsZero() && !time.Unix(0, r.EventTime.UnixNano()).Equal(r.EventTime) {
		return fmt.Errorf("%w: event_time %s is outside the years 1678 to 2262", ErrInvalid, r.EventTime.Format(time.RFC3339))
	}
	if len(r.Tool.Arguments) > 0 && !validJSON(r.Tool.Arguments) {
		return fmt.Errorf("%w: tool.arguments is not valid JSON", ErrInvalid)
	}
	// Identifiers are bounded; every string must be UTF-8 (JSON cannot
	// carry anything else).
	// The identifiers, then the two unbounded strings.
	all := [...]string{r.EventID, r.TenantID, r.UserID, r.Service, r.AuthMode, r.Agent, r.SessionID, r.TraceID,
		r.RequestID, r.Tool.Name, r.Tool.CallID, r.Model.Name, r.Model.Provider, r.Outcome.RuleID, r.Outcome.Approver,
		r.Model.FinishReason, r.Outcome.Reason}
	ids := all[:len(idFieldNames)]
	// Most records are ASCII only and within bounds: one pass over every
	// field says so, cheaper than a UTF-8 check per field. Otherwise the
	// fields are checked one by one, to name the first that is wrong.
	long := false
	for _, v := range ids {
		long = long || len(v) > MaxIDLen
	}
	if long || highBits(all[:]) != 0 {
		for i, v := range ids {
			if len(v) > MaxIDLen {
				return fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalid, idFieldNames[i], MaxIDLen)
			}
			if !utf8.ValidString(v) {
				return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, idFieldNames[i])
			}
		}
		if !utf8.ValidString(r.Model.FinishReason) {
			return fmt.Errorf("%w: model.finish_reason is not valid UTF-8", ErrInvalid)
		}
		if !utf8.ValidString(r.Outcome.Reason) {
			return fmt.Errorf("%w: outcome.reason is not valid UTF-8", ErrInvalid)
		}
	}
	if len(r.Attributes) == 0 {
		return nil // most records: spares starting an iteration
	}
	emptyKey := false
	for k, v := range r.Attributes {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("%w: attributes.%s is not valid UTF-8", ErrInvalid, strings.ToValidUTF8(k, "\uFFFD"))
		}
		emptyKey = emptyKey || k == ""
	}
	if emptyKey {
		return fmt.Errorf("%w: attributes has an empty key", ErrInvalid)
	}
	return nil
}

// highBits returns the high bit of every byte of ss, ORed into one word:
// zero when all are ASCII. It reads whole words, the last of a string
// overlapping the one before, rather than a tail byte by byte: the
// identifiers it checks are mostly 8 to 24 bytes.
func highBits(ss []string) uint64 {
	var acc uint64
	for _, s := range ss {
		b := unsafe.Slice(unsafe.StringData(s), len(s))
		switch n := len(b); {
		case n >= 8:
			for ; n > 8; n -= 8 {
				acc |= binary.LittleEndian.Uint64(b[len(b)-n:])
			}
			acc |= binary.LittleEndian.Uint64(b[len(b)-8:])
		case n >= 4:
			acc |= uint64(binary.LittleEndian.Uint32(b)) | uint64(binary.LittleEndian.Uint32(b[n-4:]))
		case n > 0:
			acc |= uint64(b[0]) | uint64(b[n/2]) | uint64(b[n-1])
		}
	}
	return acc & 0x8080808080808080
}

// idFieldNames names the identifier fields Validate bounds, in its order.
var idFieldNames = [...]string{"event_id", "tenant_id", "user_id", "service", "auth_mode", "agent", "session_id", "trace_id",
	"request_id", "tool.name", "tool.call_id", "model.name", "model.provider", "outcome.rule_id", "outcome.approver"}

func validAction(a string) error {
	if a == "" {
		return fmt.Errorf("%w: action is required", ErrInvalid)
	}
	if len(a) > MaxActionLen {
		return fmt.Errorf("%w: action is longer than %d bytes", ErrInvalid, MaxActionLen)
	}
	prevDot := true
	for i := 0; i < len(a); i++ {
		c := a[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '-':
			prevDot = false
		case c == '.':
			if prevDot {
				return fmt.Errorf("%w: action %q has an empty segment (want dotted lower-case words like tool.call)", ErrInvalid, a)
			}
			prevDot = true
		default:
			return fmt.Errorf("%w: action %q has character %q (want dotted lower-case words like tool.call)", ErrInvalid, a, c)
		}
	}
	if prevDot {
		return fmt.Errorf("%w: action %q ends with a dot", ErrInvalid, a)
	}
	return nil
}
