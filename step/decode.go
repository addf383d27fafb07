package step

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Limits of the wire format, checked by decoding. Do not lower them: agent
// servers depend on what was accepted.
const (
	// MaxIndex is the largest tool_call_delta index: a model turn calls at
	// most MaxIndex+1 tools at once.
	MaxIndex = 1023
	// MaxIDLen bounds identifiers (call ids, names, rule ids, the
	// context's ids): vellum.MaxIDLen, the audit record's bound.
	MaxIDLen = 512
	// MaxSteps is the most steps one batch may carry.
	MaxSteps = 10_000
	// MaxFirstStep bounds context.first_step: 2^53 - 1, the largest
	// integer every JSON implementation reads exactly.
	MaxFirstStep = 1<<53 - 1
)

// wire is a step as JSON: every field of every type, pointers so that
// presence is known. null counts as absent.
type wire struct {
	Type              *string        `json:"type"`
	TS                *string        `json:"ts"`
	Input             jsontext.Value `json:"input"`
	Text              *string        `json:"text"`
	Index             *int64         `json:"index"`
	CallID            *string        `json:"call_id"`
	Name              *string        `json:"name"`
	Arguments         *string        `json:"arguments"`
	Content           *string        `json:"content"`
	IsError           *bool          `json:"is_error"`
	Tool              *string        `json:"tool"`
	Action            *string        `json:"action"`
	RuleID            *string        `json:"rule_id"`
	Scope             *string        `json:"scope"`
	Mode              *string        `json:"mode"`
	QuestionID        *string        `json:"question_id"`
	Question          *string        `json:"question"`
	Outcome           *string        `json:"outcome"`
	Approver          *string        `json:"approver"`
	ShieldID          *string        `json:"shield_id"`
	Category          *string        `json:"category"`
	Limit             *string        `json:"limit"`
	Threshold         *float64       `json:"threshold"`
	Actual            *float64       `json:"actual"`
	Reason            *string        `json:"reason"`
	Subagent          *string        `json:"subagent"`
	SubagentSessionID *string        `json:"subagent_session_id"`
	Error             *string        `json:"error"`
	FinishReason      *string        `json:"finish_reason"`
	Model             *string        `json:"model"`
	Usage             *wireUsage     `json:"usage"`
}

type wireUsage struct {
	InputTokens  *uint64 `json:"input_tokens"`
	OutputTokens *uint64 `json:"output_tokens"`
}

type wireBatch struct {
	Context *wireContext `json:"context"`
	Steps   []wire       `json:"steps"`
}

type wireContext struct {
	SessionID *string `json:"session_id"`
	TraceID   *string `json:"trace_id"`
	Agent     *string `json:"agent"`
	Model     *string `json:"model"`
	AuthMode  *string `json:"auth_mode"`
	FirstStep *uint64 `json:"first_step"`
}

// shape lists, per type, the fields it requires and those it may carry
// besides "type" and "ts".
type shape struct{ required, optional []string }

var shapes = map[Type]shape{
	RequestStart:       {nil, []string{"input"}},
	ReasoningDelta:     {[]string{"text"}, nil},
	ContentDelta:       {[]string{"text"}, nil},
	ToolCallDelta:      {[]string{"index"}, []string{"call_id", "name", "arguments"}},
	ToolResult:         {[]string{"call_id"}, []string{"name", "content", "is_error"}},
	PermissionDecision: {[]string{"tool", "action"}, []string{"call_id", "rule_id", "scope", "mode"}},
	QuestionAsked:      {[]string{"question_id"}, []string{"call_id", "tool", "question"}},
	QuestionAnswered:   {[]string{"question_id", "outcome"}, []string{"approver"}},
	Guardrail:          {[]string{"shield_id", "action"}, []string{"category"}},
	LimitExceeded:      {[]string{"limit"}, []string{"threshold", "actual"}},
	LoopBreak:          {nil, []string{"reason"}},
	SubagentInvoked:    {[]string{"subagent"}, []string{"subagent_session_id"}},
	SubagentCompleted:  {[]string{"subagent"}, []string{"subagent_session_id"}},
	SubagentFailed:     {[]string{"subagent"}, []string{"subagent_session_id", "error"}},
	StreamComplete:     {nil, []string{"finish_reason", "model", "usage"}},
	RequestEnd:         {nil, []string{"error"}},
}

// Types lists every step type in the order of the wire table.
var Types = []Type{RequestStart, ReasoningDelta, ContentDelta, ToolCallDelta, ToolResult, PermissionDecision,
	QuestionAsked, QuestionAnswered, Guardrail, LimitExceeded, LoopBreak, SubagentInvoked, SubagentCompleted,
	SubagentFailed, StreamComplete, RequestEnd}

// Closed sets of values.
var (
	permissionActions = []string{"allow", "deny", "ask"}
	guardrailActions  = []string{"blocked", "warned"}
	modes             = []string{"enforce", "observe"}
	outcomes          = []string{"approve", "deny", "timeout"}
	limits            = []string{"tokens", "iterations", "cost"}
)

// present returns the names of the fields w carries, in wire order.
func (w *wire) present() []string {
	var p []string
	add := func(ok bool, name string) {
		if ok {
			p = append(p, name)
		}
	}
	add(w.Input != nil && !bytes.Equal(w.Input, []byte("null")), "input")
	add(w.Text != nil, "text")
	add(w.Index != nil, "index")
	add(w.CallID != nil, "call_id")
	add(w.Name != nil, "name")
	add(w.Arguments != nil, "arguments")
	add(w.Content != nil, "content")
	add(w.IsError != nil, "is_error")
	add(w.Tool != nil, "tool")
	add(w.Action != nil, "action")
	add(w.RuleID != nil, "rule_id")
	add(w.Scope != nil, "scope")
	add(w.Mode != nil, "mode")
	add(w.QuestionID != nil, "question_id")
	add(w.Question != nil, "question")
	add(w.Outcome != nil, "outcome")
	add(w.Approver != nil, "approver")
	add(w.ShieldID != nil, "shield_id")
	add(w.Category != nil, "category")
	add(w.Limit != nil, "limit")
	add(w.Threshold != nil, "threshold")
	add(w.Actual != nil, "actual")
	add(w.Reason != nil, "reason")
	add(w.Subagent != nil, "subagent")
	add(w.SubagentSessionID != nil, "subagent_session_id")
	add(w.Error != nil, "error")
	add(w.FinishReason != nil, "finish_reason")
	add(w.Model != nil, "model")
	add(w.Usage != nil, "usage")
	return p
}

var opts = json.JoinOptions(json.RejectUnknownMembers(true))

// Decode decodes one step object. An error is an *Error naming the field.
func Decode(b []byte) (Event, error) {
	var w wire
	if err := json.Unmarshal(b, &w, opts); err != nil {
		return Event{}, jsonError("", err)
	}
	return w.event("")
}

// DecodeBatch decodes the body of POST /v1/audit/steps: {"context": {...},
// "steps": [...]} with context.session_id and 1 to MaxSteps steps. An
// error is an *Error naming the field (`steps[3].type`); a batch with an
// error yields nothing.
func DecodeBatch(b []byte) (Batch, error) {
	var w wireBatch
	if err := json.Unmarshal(b, &w, opts); err != nil {
		return Batch{}, jsonError("", err)
	}
	if w.Context == nil {
		return Batch{}, fail("context", "is required")
	}
	c := w.Context
	if c.SessionID == nil || *c.SessionID == "" {
		return Batch{}, fail("context.session_id", "is required")
	}
	if len(w.Steps) == 0 {
		return Batch{}, fail("steps", "is required: at least one step")
	}
	if len(w.Steps) > MaxSteps {
		return Batch{}, fail("steps", "has %d steps, more than the %d allowed", len(w.Steps), MaxSteps)
	}
	for _, id := range [...]struct {
		name string
		v    *string
	}{{"session_id", c.SessionID}, {"trace_id", c.TraceID}, {"agent", c.Agent}, {"model", c.Model}, {"auth_mode", c.AuthMode}} {
		if id.v != nil && len(*id.v) > MaxIDLen {
			return Batch{}, fail("context."+id.name, "is longer than %d bytes", MaxIDLen)
		}
	}
	out := Batch{Context: Context{SessionID: *c.SessionID, TraceID: deref(c.TraceID), Agent: deref(c.Agent),
		Model: deref(c.Model), AuthMode: deref(c.AuthMode)}, Steps: make([]Event, len(w.Steps))}
	if c.FirstStep != nil {
		if *c.FirstStep > MaxFirstStep {
			return Batch{}, fail("context.first_step", "%d is more than %d", *c.FirstStep, uint64(MaxFirstStep))
		}
		fs := *c.FirstStep
		out.Context.FirstStep = &fs
	}
	for i := range w.Steps {
		ev, err := w.Steps[i].event("steps[" + strconv.Itoa(i) + "]")
		if err != nil {
			return Batch{}, err
		}
		out.Steps[i] = ev
	}
	return out, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// event checks w against its type's shape and returns it as an Event.
func (w *wire) event(path string) (Event, error) {
	if w.Type == nil {
		return Event{}, fail(join(path, "type"), "is required")
	}
	t := Type(*w.Type)
	sh, ok := shapes[t]
	if !ok {
		return Event{}, fail(join(path, "type"), "unknown step type %q", *w.Type)
	}
	for _, f := range w.present() {
		if !slices.Contains(sh.required, f) && !slices.Contains(sh.optional, f) {
			return Event{}, fail(join(path, f), "is not a field of a %s step", t)
		}
	}
	for _, f := range sh.required {
		if !slices.Contains(w.present(), f) {
			return Event{}, fail(join(path, f), "is required in a %s step", t)
		}
	}
	ev := Event{Type: t}
	if w.TS != nil {
		ts, err := time.Parse(time.RFC3339Nano, *w.TS)
		if err != nil {
			return Event{}, fail(join(path, "ts"), "%q is not an RFC 3339 time", *w.TS)
		}
		if y := ts.UTC().Year(); y < 1678 || y > 2261 {
			return Event{}, fail(join(path, "ts"), "%q is outside the years 1678 to 2261", *w.TS)
		}
		ev.Time = ts.UTC()
	}
	if w.Input != nil && !bytes.Equal(w.Input, []byte("null")) {
		ev.Input = append([]byte(nil), w.Input...)
	}
	ev.Text = deref(w.Text)
	if w.Index != nil {
		if *w.Index < 0 || *w.Index > MaxIndex {
			return Event{}, fail(join(path, "index"), "%d is not between 0 and %d", *w.Index, MaxIndex)
		}
		ev.Index = int(*w.Index)
	}
	ev.CallID, ev.Name, ev.Arguments = deref(w.CallID), deref(w.Name), deref(w.Arguments)
	ev.Content = deref(w.Content)
	if w.IsError != nil {
		ev.IsError = *w.IsError
	}
	ev.Tool, ev.Action, ev.RuleID, ev.Scope, ev.Mode = deref(w.Tool), deref(w.Action), deref(w.RuleID), deref(w.Scope), deref(w.Mode)
	ev.QuestionID, ev.Question, ev.Outcome, ev.Approver = deref(w.QuestionID), deref(w.Question), deref(w.Outcome), deref(w.Approver)
	ev.ShieldID, ev.Category, ev.Limit = deref(w.ShieldID), deref(w.Category), deref(w.Limit)
	if w.Threshold != nil {
		ev.Threshold = *w.Threshold
	}
	if w.Actual != nil {
		ev.Actual = *w.Actual
	}
	ev.Reason, ev.Subagent, ev.SubagentSessionID, ev.Error = deref(w.Reason), deref(w.Subagent), deref(w.SubagentSessionID), deref(w.Error)
	ev.FinishReason, ev.Model = deref(w.FinishReason), deref(w.Model)
	if w.Usage != nil {
		if w.Usage.InputTokens != nil {
			ev.Usage.InputTokens = *w.Usage.InputTokens
		}
		if w.Usage.OutputTokens != nil {
			ev.Usage.OutputTokens = *w.Usage.OutputTokens
		}
	}
	if err := ev.check(path); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// check validates the closed sets and numbers of ev.
func (ev *Event) check(path string) error {
	oneOf := func(field, v string, set []string) error {
		if !slices.Contains(set, v) {
			return fail(join(path, field), "%q is not one of %s", v, strings.Join(set, ", "))
		}
		return nil
	}
	for _, id := range [...]struct{ name, v string }{{"call_id", ev.CallID}, {"name", ev.Name}, {"tool", ev.Tool},
		{"rule_id", ev.RuleID}, {"question_id", ev.QuestionID}, {"approver", ev.Approver}, {"shield_id", ev.ShieldID},
		{"subagent", ev.Subagent}, {"subagent_session_id", ev.SubagentSessionID}, {"model", ev.Model}} {
		if len(id.v) > MaxIDLen {
			return fail(join(path, id.name), "is longer than %d bytes", MaxIDLen)
		}
	}
	switch ev.Type {
	case PermissionDecision:
		if err := oneOf("action", ev.Action, permissionActions); err != nil {
			return err
		}
		if ev.Mode != "" {
			return oneOf("mode", ev.Mode, modes)
		}
	case Guardrail:
		return oneOf("action", ev.Action, guardrailActions)
	case QuestionAnswered:
		return oneOf("outcome", ev.Outcome, outcomes)
	case LimitExceeded:
		if err := oneOf("limit", ev.Limit, limits); err != nil {
			return err
		}
		for _, v := range []struct {
			name string
			v    float64
		}{{"threshold", ev.Threshold}, {"actual", ev.Actual}} {
			if math.IsNaN(v.v) || math.IsInf(v.v, 0) {
				return fail(join(path, v.name), "is not a finite number")
			}
		}
	case ToolCallDelta:
		if ev.Index < 0 || ev.Index > MaxIndex {
			return fail(join(path, "index"), "%d is not between 0 and %d", ev.Index, MaxIndex)
		}
	}
	return nil
}

// Validate checks an Event built in Go as decoding checks one from JSON:
// a known type and the closed sets of values. (Fields that do not belong
// to the type are ignored, as encoding drops them.)
func (ev *Event) Validate() error {
	if _, ok := shapes[ev.Type]; !ok {
		return fail("type", "unknown step type %q", ev.Type)
	}
	return ev.check("")
}

// jsonError turns a JSON decoding error into an *Error naming the field.
func jsonError(path string, err error) *Error {
	var serr *json.SemanticError
	var xerr *jsontext.SyntacticError
	switch {
	case errors.As(err, &serr):
		p := join(path, pointerPath(string(serr.JSONPointer)))
		switch {
		case errors.Is(serr.Err, json.ErrUnknownName):
			return fail(p, "is not a field here")
		case serr.JSONKind != 0 && serr.GoType != nil:
			return fail(p, "want %s, got %s", kindName(serr.GoType.String()), serr.JSONKind.String())
		case serr.Err != nil:
			return fail(p, "%v", serr.Err)
		}
		return fail(p, "malformed value")
	case errors.As(err, &xerr):
		p := join(path, pointerPath(string(xerr.JSONPointer)))
		if errors.Is(xerr.Err, jsontext.ErrDuplicateName) {
			return fail(p, "appears twice")
		}
		return fail(p, "malformed JSON at byte %d: %v", xerr.ByteOffset, xerr.Err)
	}
	return fail(path, "malformed JSON: %v", err)
}

// kindName names the JSON kind a Go type of wire wants.
func kindName(goType string) string {
	goType = strings.TrimLeft(goType, "*")
	switch {
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "a boolean"
	case goType == "int64", goType == "uint64":
		return "a whole number"
	case goType == "float64":
		return "a number"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	}
	return "an object"
}

// pointerPath turns a JSON pointer (/steps/3/usage/input_tokens) into the
// path a client writes (steps[3].usage.input_tokens).
func pointerPath(p string) string {
	if p == "" {
		return ""
	}
	var b strings.Builder
	for _, tok := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		if _, err := strconv.Atoi(tok); err == nil && b.Len() > 0 {
			fmt.Fprintf(&b, "[%s]", tok)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}
