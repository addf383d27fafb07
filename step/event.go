package step

import (
	"encoding/json"
	"time"
)

// Type names a kind of step. The set is closed: decoding rejects any other.
type Type string

// The step types, as the wire's "type" field spells them. Do not change:
// agent servers send these strings.
const (
	RequestStart       Type = "request_start"
	ReasoningDelta     Type = "reasoning_delta"
	ContentDelta       Type = "content_delta"
	ToolCallDelta      Type = "tool_call_delta"
	ToolResult         Type = "tool_result"
	PermissionDecision Type = "permission_decision"
	QuestionAsked      Type = "question_asked"
	QuestionAnswered   Type = "question_answered"
	Guardrail          Type = "guardrail"
	LimitExceeded      Type = "limit_exceeded"
	LoopBreak          Type = "loop_break"
	SubagentInvoked    Type = "subagent_invoked"
	SubagentCompleted  Type = "subagent_completed"
	SubagentFailed     Type = "subagent_failed"
	StreamComplete     Type = "stream_complete"
	RequestEnd         Type = "request_end"
)

// Event is one step of the stream. Type says which fields mean something
// (the table in docs/events.md); the others stay zero. Time is the step's
// own time ("ts" on the wire), zero when the producer did not say.
type Event struct {
	Type Type
	Time time.Time

	// Input is the request's input (request_start), any JSON value. It is
	// never stored in an audit record.
	Input json.RawMessage

	// Text is a reasoning or content delta.
	Text string

	// Index identifies a tool call among the calls of one model turn
	// (tool_call_delta); CallID and Name come with its first delta only,
	// and Arguments is the next fragment of its JSON arguments.
	Index     int
	CallID    string // tool_call_delta, tool_result, permission_decision, question_asked
	Name      string // tool_call_delta, tool_result: the tool
	Arguments string

	// Content and IsError are a tool's result (tool_result).
	Content string
	IsError bool

	// Tool, Action, RuleID, Scope and Mode are a permission decision
	// (Action "allow", "deny" or "ask"; Mode "enforce" or "observe"). Tool
	// is also the tool a question is about, and Action the guardrail's
	// "blocked" or "warned".
	Tool   string
	Action string
	RuleID string
	Scope  string
	Mode   string

	// QuestionID links a question (Question, its text) to its answer
	// (Outcome "approve", "deny" or "timeout", given by Approver).
	QuestionID string
	Question   string
	Outcome    string
	Approver   string

	// ShieldID and Category describe a guardrail that fired.
	ShieldID string
	Category string

	// Limit ("tokens", "iterations" or "cost"), Threshold and Actual
	// describe a limit exceeded.
	Limit     string
	Threshold float64
	Actual    float64

	// Reason says why the loop was broken.
	Reason string

	// Subagent and SubagentSessionID name a sub-agent and its session;
	// Error says why it failed (subagent_failed), or why the stream
	// failed (request_end).
	Subagent          string
	SubagentSessionID string
	Error             string

	// FinishReason, Model and Usage complete the model's turn
	// (stream_complete).
	FinishReason string
	Model        string
	Usage        Usage
}

// Usage is a model turn's token usage.
type Usage struct {
	InputTokens  uint64
	OutputTokens uint64
}

// Context is the request context of a batch of steps: it applies to every
// step. Tenant and user are not part of it: they come from whoever sends
// the steps (the server's token, or a trusted gateway's headers).
type Context struct {
	SessionID string `json:"session_id"`
	TraceID   string `json:"trace_id,omitempty"`
	Agent     string `json:"agent,omitempty"`
	Model     string `json:"model,omitempty"`
	AuthMode  string `json:"auth_mode,omitempty"`
	// FirstStep, when not nil, is the index of the batch's first step in
	// the session's stream, counted from 0 by the sender: the server then
	// skips steps it has consumed already (a resent batch) and derives
	// each record's event_id from the session, the step and its index
	// (docs/events.md, "Exactly once").
	FirstStep *uint64 `json:"first_step,omitempty"`
}

// Batch is the body of POST /v1/audit/steps: a context and the steps, in
// stream order.
type Batch struct {
	Context Context `json:"context"`
	Steps   []Event `json:"steps"`
}
