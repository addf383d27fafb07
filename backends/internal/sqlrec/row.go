package sqlrec

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vellumlog/vellum"
)

// MaxAttrValue is the longest attribute value a summary row keeps; longer
// values are replaced by their SHA-256 and size (attributes_hashed).
const MaxAttrValue = 256

// Attribute keys under which a record read back from a summary row shows
// what the row holds instead of the full record.
const (
	AttrWriter     = "vellum.writer"
	AttrSegment    = "vellum.segment"
	AttrArgsSHA256 = "vellum.tool_arguments_sha256"
	AttrArgsSize   = "vellum.tool_arguments_size"
	// AttrHashedPrefix + key holds "sha256:<hex> size:<n>" for an attribute
	// whose value was too large to keep.
	AttrHashedPrefix = "vellum.hashed."
)

// Row is one row of audit_records, apart from the columns a backend keeps
// for itself (writer_id and time in PostgreSQL, the row id).
type Row struct {
	Seq                 uint64
	TimeNS              int64
	EventID             string
	EventTimeNS         int64 // 0: none (NULL)
	TenantID            string
	UserID              string
	Service             string
	AuthMode            string
	Action              string
	ToolName            string
	ToolCallID          string
	ToolArguments       []byte // nil: not kept (NULL)
	ToolArgumentsSHA256 []byte // nil when the record has no arguments
	ToolArgumentsSize   int64
	ToolIsError         bool
	ToolDurationNS      int64
	ModelName           string
	ModelProvider       string
	ModelFinishReason   string
	ModelInputTokens    int64 // the uint64 bits
	ModelOutputTokens   int64
	Agent               string
	SessionID           string
	TraceID             string
	RequestID           string
	Outcome             string
	OutcomeReason       string
	OutcomeRuleID       string
	OutcomeApprover     string
	OutcomeMode         string
	Attributes          string // JSON object, "" when none
	AttributesHashed    string // JSON object of {"sha256","size"}, "" when none
	Redactions          string // JSON array, "" when none
	KeyID               string
	PrevMAC             []byte
	MAC                 []byte
	Segment             int64 // 0: not from a segment (NULL)
	Summary             bool  // arguments or attribute values were left out
}

// Columns are the shared columns of audit_records after seq and the time
// columns, in the order of Row.Values and Row.ScanDest.
var Columns = []string{
	"event_id", "event_time_ns", "tenant_id", "user_id", "service", "auth_mode", "action",
	"tool_name", "tool_call_id", "tool_arguments", "tool_arguments_sha256", "tool_arguments_size",
	"tool_is_error", "tool_duration_ns",
	"model_name", "model_provider", "model_finish_reason", "model_input_tokens", "model_output_tokens",
	"agent", "session_id", "trace_id", "request_id",
	"outcome", "outcome_reason", "outcome_rule_id", "outcome_approver", "outcome_mode",
	"attributes", "attributes_hashed", "redactions",
	"key_id", "prev_mac", "mac", "segment", "summary",
}

// ColumnList is Columns joined with ", ".
var ColumnList = strings.Join(Columns, ", ")

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullInt(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// Values returns the values of Columns, in order: NULL (nil) for absent
// optional values.
func (r *Row) Values() []any {
	var args any
	if r.ToolArguments != nil {
		args = string(r.ToolArguments)
	}
	var argsSize any
	if r.ToolArgumentsSHA256 != nil {
		argsSize = r.ToolArgumentsSize
	}
	return []any{
		r.EventID, nullInt(r.EventTimeNS), r.TenantID, r.UserID, r.Service, r.AuthMode, r.Action,
		r.ToolName, r.ToolCallID, args, nullBytes(r.ToolArgumentsSHA256), argsSize,
		r.ToolIsError, r.ToolDurationNS,
		r.ModelName, r.ModelProvider, r.ModelFinishReason, r.ModelInputTokens, r.ModelOutputTokens,
		r.Agent, r.SessionID, r.TraceID, r.RequestID,
		r.Outcome, r.OutcomeReason, r.OutcomeRuleID, r.OutcomeApprover, r.OutcomeMode,
		nullStr(r.Attributes), nullStr(r.AttributesHashed), nullStr(r.Redactions),
		r.KeyID, r.PrevMAC, r.MAC, nullInt(r.Segment), r.Summary,
	}
}

// Scanner receives one row's Columns; call Row to finish.
type Scanner struct {
	row                                  Row
	eventTime, argsSize, segment         sql.NullInt64
	args, attrs, attrsHashed, redactions sql.NullString
}

// Dest returns the scan destinations of Columns, in order, for s.
func (s *Scanner) Dest() []any {
	r := &s.row
	return []any{
		&r.EventID, &s.eventTime, &r.TenantID, &r.UserID, &r.Service, &r.AuthMode, &r.Action,
		&r.ToolName, &r.ToolCallID, &s.args, &r.ToolArgumentsSHA256, &s.argsSize,
		&r.ToolIsError, &r.ToolDurationNS,
		&r.ModelName, &r.ModelProvider, &r.ModelFinishReason, &r.ModelInputTokens, &r.ModelOutputTokens,
		&r.Agent, &r.SessionID, &r.TraceID, &r.RequestID,
		&r.Outcome, &r.OutcomeReason, &r.OutcomeRuleID, &r.OutcomeApprover, &r.OutcomeMode,
		&s.attrs, &s.attrsHashed, &s.redactions,
		&r.KeyID, &r.PrevMAC, &r.MAC, &s.segment, &r.Summary,
	}
}

// Row returns the scanned row with seq and time (the columns a backend
// reads before Columns), and resets s.
func (s *Scanner) Row(seq uint64, timeNS int64) Row {
	r := s.row
	r.Seq, r.TimeNS = seq, timeNS
	r.EventTimeNS = s.eventTime.Int64
	if s.args.Valid {
		r.ToolArguments = []byte(s.args.String)
	}
	r.ToolArgumentsSize = s.argsSize.Int64
	r.Segment = s.segment.Int64
	r.Attributes, r.AttributesHashed, r.Redactions = s.attrs.String, s.attrsHashed.String, s.redactions.String
	*s = Scanner{}
	return r
}

// Options say how a record becomes a row.
type Options struct {
	// Summarize leaves tool arguments out (keeping their SHA-256 and size)
	// unless KeepArguments, and replaces attribute values longer than
	// MaxAttrValue by their SHA-256 and size. Without it the row holds the
	// whole record.
	Summarize     bool
	KeepArguments bool
	// NoNUL replaces NUL characters in text columns by U+FFFD, for
	// databases whose text cannot hold them (PostgreSQL). Only summaries
	// may be lossy; a primary store refuses such records instead (HasNUL).
	NoNUL bool
}

// FromRecord returns the row of r (Seq, Time, KeyID, PrevMAC and MAC
// already assigned) and the segment it came from (0 for none).
func FromRecord(r *vellum.Record, segment uint64, o Options) (Row, error) {
	s := func(v string) string {
		if o.NoNUL && strings.IndexByte(v, 0) >= 0 {
			return strings.ReplaceAll(v, "\x00", "\uFFFD")
		}
		return v
	}
	row := Row{
		Seq: r.Seq, TimeNS: r.Time.UnixNano(),
		EventID: s(r.EventID), TenantID: s(r.TenantID), UserID: s(r.UserID), Service: s(r.Service),
		AuthMode: s(r.AuthMode), Action: r.Action,
		ToolName: s(r.Tool.Name), ToolCallID: s(r.Tool.CallID), ToolIsError: r.Tool.IsError, ToolDurationNS: r.Tool.DurationNS,
		ModelName: s(r.Model.Name), ModelProvider: s(r.Model.Provider), ModelFinishReason: s(r.Model.FinishReason),
		ModelInputTokens: int64(r.Model.InputTokens), ModelOutputTokens: int64(r.Model.OutputTokens),
		Agent: s(r.Agent), SessionID: s(r.SessionID), TraceID: s(r.TraceID), RequestID: s(r.RequestID),
		Outcome: r.Outcome.Status, OutcomeReason: s(r.Outcome.Reason), OutcomeRuleID: s(r.Outcome.RuleID),
		OutcomeApprover: s(r.Outcome.Approver), OutcomeMode: s(r.Outcome.Mode),
		KeyID: r.KeyID, PrevMAC: r.PrevMAC[:], MAC: r.MAC[:], Segment: int64(segment),
	}
	if !r.EventTime.IsZero() {
		row.EventTimeNS = r.EventTime.UnixNano()
	}
	if len(r.Tool.Arguments) > 0 {
		sum := sha256.Sum256(r.Tool.Arguments)
		row.ToolArgumentsSHA256 = sum[:]
		row.ToolArgumentsSize = int64(len(r.Tool.Arguments))
		if !o.Summarize || o.KeepArguments {
			row.ToolArguments = r.Tool.Arguments
		} else {
			row.Summary = true
		}
	}
	if len(r.Attributes) > 0 {
		kept := r.Attributes
		var hashed map[string]hashedValue
		if o.Summarize || o.NoNUL {
			kept = make(map[string]string, len(r.Attributes))
			for k, v := range r.Attributes {
				if o.Summarize && len(v) > MaxAttrValue {
					if hashed == nil {
						hashed = map[string]hashedValue{}
					}
					sum := sha256.Sum256([]byte(v))
					hashed[s(k)] = hashedValue{SHA256: hex.EncodeToString(sum[:]), Size: len(v)}
					row.Summary = true
					continue
				}
				kept[s(k)] = s(v)
			}
		}
		if len(kept) > 0 {
			b, err := json.Marshal(kept)
			if err != nil {
				return Row{}, fmt.Errorf("%w: attributes: %v", vellum.ErrInvalid, err)
			}
			row.Attributes = string(b)
		}
		if hashed != nil {
			b, _ := json.Marshal(hashed)
			row.AttributesHashed = string(b)
		}
	}
	if len(r.Redactions) > 0 {
		red := r.Redactions
		if o.NoNUL {
			red = slices.Clone(red)
			for i := range red {
				red[i].Rule, red[i].Field = s(red[i].Rule), s(red[i].Field)
			}
		}
		b, err := json.Marshal(red)
		if err != nil {
			return Row{}, fmt.Errorf("%w: redactions: %v", vellum.ErrInvalid, err)
		}
		row.Redactions = string(b)
	}
	return row, nil
}

type hashedValue struct {
	SHA256 string `json:"sha256"`
	Size   int    `json:"size"`
}

// HasNUL reports whether any text field of r holds a NUL character, which
// PostgreSQL text cannot store.
func HasNUL(r *vellum.Record) (string, bool) {
	fields := [...]struct{ name, v string }{
		{"event_id", r.EventID}, {"tenant_id", r.TenantID}, {"user_id", r.UserID}, {"service", r.Service},
		{"auth_mode", r.AuthMode}, {"agent", r.Agent}, {"session_id", r.SessionID}, {"trace_id", r.TraceID},
		{"request_id", r.RequestID}, {"tool.name", r.Tool.Name}, {"tool.call_id", r.Tool.CallID},
		{"model.name", r.Model.Name}, {"model.provider", r.Model.Provider}, {"model.finish_reason", r.Model.FinishReason},
		{"outcome.reason", r.Outcome.Reason}, {"outcome.rule_id", r.Outcome.RuleID},
		{"outcome.approver", r.Outcome.Approver}, {"outcome.mode", r.Outcome.Mode},
	}
	for _, f := range fields {
		if strings.IndexByte(f.v, 0) >= 0 {
			return f.name, true
		}
	}
	// Attributes and redactions travel as JSON, where NUL is escaped.
	return "", false
}

// Record returns the record a row holds. For a summary row the record lacks
// what was left out, and says so in attributes (AttrArgsSHA256,
// AttrArgsSize, AttrHashedPrefix+key); writer, when not empty, and the
// segment are added as AttrWriter and AttrSegment. A full row without a
// writer gives back exactly the record that was stored.
func (row *Row) Record(writer string) (vellum.Record, error) {
	r, err := row.Stored()
	if err != nil {
		return r, err
	}
	extra := map[string]string{}
	if row.Summary {
		if row.ToolArgumentsSHA256 != nil {
			extra[AttrArgsSHA256] = hex.EncodeToString(row.ToolArgumentsSHA256)
			extra[AttrArgsSize] = strconv.FormatInt(row.ToolArgumentsSize, 10)
		}
		if row.AttributesHashed != "" {
			var h map[string]hashedValue
			if err := json.Unmarshal([]byte(row.AttributesHashed), &h); err != nil {
				return r, fmt.Errorf("sqlrec: seq %d: attributes_hashed: %v", row.Seq, err)
			}
			for k, v := range h {
				extra[AttrHashedPrefix+k] = fmt.Sprintf("sha256:%s size:%d", v.SHA256, v.Size)
			}
		}
	}
	if writer != "" {
		extra[AttrWriter] = writer
	}
	if row.Segment != 0 {
		extra[AttrSegment] = strconv.FormatInt(row.Segment, 10)
	}
	if len(extra) > 0 {
		if r.Attributes == nil {
			r.Attributes = extra
		} else {
			maps.Copy(r.Attributes, extra)
		}
	}
	return r, nil
}

// Stored returns the record as the row holds it, without the attributes
// Record adds: for a row that is not a summary, exactly the record stored.
func (row *Row) Stored() (vellum.Record, error) {
	r := vellum.Record{
		Seq: row.Seq, Time: time.Unix(0, row.TimeNS).UTC(),
		EventID: row.EventID, TenantID: row.TenantID, UserID: row.UserID, Service: row.Service, AuthMode: row.AuthMode,
		Action: row.Action,
		Tool:   vellum.Tool{Name: row.ToolName, CallID: row.ToolCallID, IsError: row.ToolIsError, DurationNS: row.ToolDurationNS},
		Model: vellum.Model{Name: row.ModelName, Provider: row.ModelProvider, FinishReason: row.ModelFinishReason,
			InputTokens: uint64(row.ModelInputTokens), OutputTokens: uint64(row.ModelOutputTokens)},
		Agent: row.Agent, SessionID: row.SessionID, TraceID: row.TraceID, RequestID: row.RequestID,
		Outcome: vellum.Outcome{Status: row.Outcome, Reason: row.OutcomeReason, RuleID: row.OutcomeRuleID,
			Approver: row.OutcomeApprover, Mode: row.OutcomeMode},
		KeyID: row.KeyID,
	}
	if row.EventTimeNS != 0 {
		r.EventTime = time.Unix(0, row.EventTimeNS).UTC()
	}
	if row.ToolArguments != nil {
		r.Tool.Arguments = json.RawMessage(row.ToolArguments)
	}
	if len(row.PrevMAC) != vellum.MACSize || len(row.MAC) != vellum.MACSize {
		return r, fmt.Errorf("sqlrec: seq %d: prev_mac or mac is not %d bytes", row.Seq, vellum.MACSize)
	}
	copy(r.PrevMAC[:], row.PrevMAC)
	copy(r.MAC[:], row.MAC)
	if row.Attributes != "" {
		if err := json.Unmarshal([]byte(row.Attributes), &r.Attributes); err != nil {
			return r, fmt.Errorf("sqlrec: seq %d: attributes: %v", row.Seq, err)
		}
	}
	if row.Redactions != "" {
		if err := json.Unmarshal([]byte(row.Redactions), &r.Redactions); err != nil {
			return r, fmt.Errorf("sqlrec: seq %d: redactions: %v", row.Seq, err)
		}
	}
	return r, nil
}

// Equal reports whether two rows hold the same values, and names the first
// column that differs.
func Equal(a, b *Row) (string, bool) {
	if a.Seq != b.Seq {
		return "seq", false
	}
	if a.TimeNS != b.TimeNS {
		return "time", false
	}
	av, bv := a.Values(), b.Values()
	for i := range av {
		if fmt.Sprint(av[i]) != fmt.Sprint(bv[i]) {
			return Columns[i], false
		}
	}
	return "", true
}

var timeZero time.Time

func unixTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// Cursor is how far a replica holds a writer's chain: its last seq and
// MAC (zero before the first row), and the seq through which the
// engine's purges were applied to it (its rows up to Purged are gone).
type Cursor struct {
	Seq    uint64
	MAC    vellum.MAC
	Time   int64
	Purged uint64
}
