package collector

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/step"
)

// Bounds of a Mapper's state: whatever the stream, its memory is bounded.
const (
	// MaxArguments bounds the bytes of tool-call arguments a Mapper holds
	// at once. A call whose arguments would go beyond it is recorded
	// without them, as a failure saying so.
	MaxArguments = 512 << 10
	// maxKnownCalls bounds the calls (and questions) remembered for
	// linking results and answers; the oldest are forgotten first.
	maxKnownCalls = 1024
	// maxReason bounds free text copied into outcome.reason: a failed
	// tool's output, a question, an error, a reason.
	maxReason = 4096
)

// Mapper turns the steps of one stream into audit records: the mapping of
// the table in docs/events.md. It holds what spans steps — tool calls
// being assembled from deltas, the start of each call for its duration,
// open questions — within fixed bounds. The collector runs one per
// stream; the server one per (tenant, session). A Mapper is not safe for
// concurrent use.
type Mapper struct {
	req   Request
	key   string // random, hex: the stream's part of event ids
	steps uint64 // steps mapped so far: the index of the next
	base  string // the event id of the step being mapped, less its ordinal

	bySession bool     // event ids from the session and the step (SetSessionIDs)
	digest    [32]byte // bySession: of the last step mapped
	hasDigest bool

	pending []*pendingCall // calls being assembled, in order of their first delta
	argSize int            // bytes in pending arguments
	turn    int            // tool calls completed since the last stream_complete

	calls     map[string]*callInfo // by call id
	callOrder []string
	questions map[string]question // by question id
	qOrder    []string
}

type pendingCall struct {
	index    int
	callID   string
	name     string
	args     []byte
	overflow bool
}

type callInfo struct {
	name    string
	ruleID  string    // the permission rule that asked for approval
	started time.Time // when the tool may have started: completion, allow or approval
}

type question struct {
	callID, tool, ruleID string
}

// NewMapper returns a Mapper for a stream of req. Each record's event id
// names the stream, the step that made it and the record's ordinal within
// that step (docs/events.md, "Event ids"): the stream part is random, so
// a replayed spill or a retried append of the same records is stored
// once and no two streams share an id.
func NewMapper(req Request) *Mapper {
	var b [16]byte
	rand.Read(b[:])
	return &Mapper{req: req, key: hex.EncodeToString(b[:]),
		calls: map[string]*callInfo{}, questions: map[string]question{}}
}

// SetSessionIDs chooses how the event ids of the steps mapped from now on
// are made. on: from the request's session id, the step's index and the
// step itself (its wire encoding), so that the same step at the same
// place of the same session yields the same ids whichever Mapper maps it
// (a batch resent after the server lost its state is stored once, by the
// store's (tenant, event_id) dedup). off (the default): from the
// Mapper's random key.
func (m *Mapper) SetSessionIDs(on bool) { m.bySession = on }

// Steps returns how many steps the Mapper has mapped (since SetNext): the
// index, in its stream, of the next step.
func (m *Mapper) Steps() uint64 { return m.steps }

// SetNext sets the index of the next step (a session resumed by a Mapper
// that did not see its start).
func (m *Mapper) SetNext(i uint64) { m.steps, m.hasDigest = i, false }

// LastDigest returns the digest of the last step mapped with
// SetSessionIDs on (SHA-256 of its wire encoding), and whether there is
// one.
func (m *Mapper) LastDigest() ([32]byte, bool) { return m.digest, m.hasDigest }

// StepDigest returns the SHA-256 of ev's wire encoding: what SetSessionIDs
// derives event ids from, and what LastDigest returns.
func StepDigest(ev *step.Event) [32]byte {
	b, err := ev.MarshalJSON()
	if err != nil { // not a valid step: its Go form stands in
		b = fmt.Appendf(nil, "%#v", *ev)
	}
	return sha256.Sum256(b)
}

// begin sets the event id base of the step about to be mapped (ev), or of
// records made at the end of the stream (ev nil).
func (m *Mapper) begin(ev *step.Event) {
	idx := strconv.FormatUint(m.steps, 10)
	switch {
	case ev == nil:
		m.base = "st-" + m.key + "-" + idx + "-end"
	case m.bySession:
		d := StepDigest(ev)
		h := sha256.New()
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(m.req.SessionID)))
		h.Write(n[:])
		h.Write([]byte(m.req.SessionID))
		h.Write(d[:])
		m.base = "st-" + hex.EncodeToString(h.Sum(nil)[:16]) + "-" + idx
		m.digest, m.hasDigest = d, true
	default:
		m.base = "st-" + m.key + "-" + idx
		m.hasDigest = false
	}
}

// Request returns the request context the Mapper stamps on records.
func (m *Mapper) Request() Request { return m.req }

// SetRequest changes the request context of the records to come (a later
// batch of the same session may name another trace or model).
func (m *Mapper) SetRequest(r Request) { m.req = r }

// Clone returns an independent copy of m, so that a caller can map a batch
// and go back to the copy if the batch's records cannot be stored.
func (m *Mapper) Clone() *Mapper {
	c := *m
	c.pending = make([]*pendingCall, len(m.pending))
	for i, p := range m.pending {
		cp := *p
		cp.args = slices.Clone(p.args)
		c.pending[i] = &cp
	}
	c.calls = make(map[string]*callInfo, len(m.calls))
	for k, v := range m.calls {
		cv := *v
		c.calls[k] = &cv
	}
	c.callOrder = slices.Clone(m.callOrder)
	c.questions = maps.Clone(m.questions)
	c.qOrder = slices.Clone(m.qOrder)
	return &c
}

// Pending reports whether tool calls are being assembled (Flush would make
// records).
func (m *Mapper) Pending() bool { return len(m.pending) > 0 }

// Map appends to out the records of ev and returns it. now is the time of
// ev when it carries none. The records are valid vellum.Records.
func (m *Mapper) Map(ev *step.Event, now time.Time, out []vellum.Record) []vellum.Record {
	t := ev.Time
	if t.IsZero() {
		t = now
	}
	m.begin(ev)
	m.steps++
	if ev.Type == step.ToolCallDelta {
		return m.delta(ev, t, out)
	}
	// Any other step completes the calls being assembled.
	out = m.flush(t, out)
	switch ev.Type {
	case step.RequestStart:
		out = append(out, m.record("request.start", t, vellum.StatusSuccess))
	case step.RequestEnd:
		// With an error: the stream failed (as the collector records an
		// error yielded by a Go stream).
		r := m.record("request.end", t, vellum.StatusSuccess)
		if ev.Error != "" {
			r.Outcome.Status = vellum.StatusFailure
			r.Outcome.Reason = truncate(ev.Error, maxReason)
		}
		out = append(out, r)
	case step.ReasoningDelta, step.ContentDelta:
		// Not audited one by one: the model's decision is recorded at
		// stream_complete.
	case step.StreamComplete:
		r := m.record("model.decision", t, vellum.StatusSuccess)
		if ev.Model != "" {
			r.Model.Name = ev.Model
		}
		r.Model.FinishReason = ev.FinishReason
		r.Model.InputTokens, r.Model.OutputTokens = ev.Usage.InputTokens, ev.Usage.OutputTokens
		if m.turn > 0 {
			r.Attributes = map[string]string{"tool_calls": strconv.Itoa(m.turn)}
		}
		m.turn = 0
		out = append(out, r)
	case step.ToolResult:
		status := vellum.StatusSuccess
		if ev.IsError {
			status = vellum.StatusFailure
		}
		r := m.record("tool.result", t, status)
		r.Tool = vellum.Tool{Name: ev.Name, CallID: ev.CallID, IsError: ev.IsError}
		if c := m.calls[ev.CallID]; c != nil {
			if r.Tool.Name == "" {
				r.Tool.Name = c.name
			}
			if d := t.Sub(c.started); d > 0 {
				r.Tool.DurationNS = int64(d)
			}
			m.forgetCall(ev.CallID)
		}
		if ev.IsError {
			r.Outcome.Reason = truncate(ev.Content, maxReason)
		}
		out = append(out, r)
	case step.PermissionDecision:
		r := m.record("permission.decision", t, permissionStatus[ev.Action])
		r.Tool = vellum.Tool{Name: ev.Tool, CallID: ev.CallID}
		r.Outcome.RuleID, r.Outcome.Mode = ev.RuleID, ev.Mode
		r.Attributes = map[string]string{"decision": ev.Action}
		if ev.Scope != "" {
			r.Attributes["scope"] = ev.Scope
		}
		if ev.CallID != "" {
			c := m.call(ev.CallID, ev.Tool)
			switch ev.Action {
			case "allow":
				c.started = t
			case "ask":
				c.ruleID = ev.RuleID
			}
		}
		out = append(out, r)
	case step.QuestionAsked:
		r := m.record("approval.requested", t, vellum.StatusPending)
		q := question{callID: ev.CallID, tool: ev.Tool}
		if c := m.calls[ev.CallID]; ev.CallID != "" && c != nil {
			q.ruleID = c.ruleID
			if q.tool == "" {
				q.tool = c.name
			}
		}
		r.Tool = vellum.Tool{Name: q.tool, CallID: q.callID}
		r.Outcome.RuleID = q.ruleID
		r.Outcome.Reason = truncate(ev.Question, maxReason)
		r.Attributes = map[string]string{"question_id": ev.QuestionID}
		m.remember(ev.QuestionID, q)
		out = append(out, r)
	case step.QuestionAnswered:
		q := m.questions[ev.QuestionID]
		var r vellum.Record
		switch ev.Outcome {
		case "approve":
			r = m.record("approval.granted", t, vellum.StatusApproved)
			if q.callID != "" {
				m.call(q.callID, q.tool).started = t
			}
		case "deny":
			r = m.record("approval.denied", t, vellum.StatusDenied)
		default:
			r = m.record("approval.timeout", t, vellum.StatusDenied)
			r.Outcome.Reason = "no answer in time"
		}
		r.Tool = vellum.Tool{Name: q.tool, CallID: q.callID}
		r.Outcome.RuleID, r.Outcome.Approver = q.ruleID, ev.Approver
		r.Attributes = map[string]string{"question_id": ev.QuestionID}
		m.forgetQuestion(ev.QuestionID)
		out = append(out, r)
	case step.Guardrail:
		status := vellum.StatusBlocked
		if ev.Action == "warned" {
			status = vellum.StatusSuccess
		}
		r := m.record("guardrail.fired", t, status)
		r.Outcome.RuleID = ev.ShieldID
		r.Attributes = map[string]string{"guardrail_action": ev.Action}
		if ev.Category != "" {
			r.Attributes["category"] = ev.Category
		}
		out = append(out, r)
	case step.LimitExceeded:
		r := m.record("limit.exceeded", t, vellum.StatusBlocked)
		th, ac := strconv.FormatFloat(ev.Threshold, 'g', -1, 64), strconv.FormatFloat(ev.Actual, 'g', -1, 64)
		r.Outcome.Reason = fmt.Sprintf("%s: %s over the limit of %s", ev.Limit, ac, th)
		r.Attributes = map[string]string{"limit": ev.Limit, "threshold": th, "actual": ac}
		out = append(out, r)
	case step.LoopBreak:
		r := m.record("loop.break", t, vellum.StatusBlocked)
		r.Outcome.Reason = truncate(ev.Reason, maxReason)
		out = append(out, r)
	case step.SubagentInvoked, step.SubagentCompleted, step.SubagentFailed:
		action, status := "subagent.invoked", vellum.StatusPending
		switch ev.Type {
		case step.SubagentCompleted:
			action, status = "subagent.completed", vellum.StatusSuccess
		case step.SubagentFailed:
			action, status = "subagent.failed", vellum.StatusFailure
		}
		r := m.record(action, t, status)
		r.Outcome.Reason = truncate(ev.Error, maxReason)
		r.Attributes = map[string]string{"subagent": ev.Subagent}
		if ev.SubagentSessionID != "" {
			r.Attributes["subagent_session_id"] = ev.SubagentSessionID
		}
		out = append(out, r)
	}
	return out
}

var permissionStatus = map[string]string{"allow": vellum.StatusApproved, "deny": vellum.StatusDenied, "ask": vellum.StatusPending}

// delta adds a tool-call delta to the call at its index. A delta that
// names a call id other than the pending one at that index starts a new
// call, completing the old one.
func (m *Mapper) delta(ev *step.Event, t time.Time, out []vellum.Record) []vellum.Record {
	var p *pendingCall
	for i, c := range m.pending {
		if c.index != ev.Index {
			continue
		}
		if ev.CallID != "" && c.callID != "" && ev.CallID != c.callID {
			out = append(out, m.complete(c, t))
			m.pending = slices.Delete(m.pending, i, i+1)
			break
		}
		p = c
		break
	}
	if p == nil {
		p = &pendingCall{index: ev.Index}
		m.pending = append(m.pending, p)
	}
	if p.callID == "" {
		p.callID = ev.CallID
	}
	if p.name == "" {
		p.name = ev.Name
	}
	if p.overflow || m.argSize+len(ev.Arguments) > MaxArguments {
		p.overflow = true
		return out
	}
	p.args = append(p.args, ev.Arguments...)
	m.argSize += len(ev.Arguments)
	return out
}

// Flush appends the records of the tool calls being assembled (each is
// complete now: the stream ended) and returns out.
func (m *Mapper) Flush(now time.Time, out []vellum.Record) []vellum.Record {
	if len(m.pending) == 0 {
		return out
	}
	m.begin(nil)
	return m.flush(now, out)
}

func (m *Mapper) flush(now time.Time, out []vellum.Record) []vellum.Record {
	for _, p := range m.pending {
		out = append(out, m.complete(p, now))
	}
	m.pending = m.pending[:0]
	m.argSize = 0
	return out
}

// complete makes the tool.call record of p.
func (m *Mapper) complete(p *pendingCall, t time.Time) vellum.Record {
	m.argSize -= len(p.args)
	m.turn++
	r := m.record("tool.call", t, vellum.StatusSuccess)
	// Ordinal 1+index: the same call keeps its id whatever else the step
	// completes (the step's own record is ordinal 0).
	r.EventID = m.base + "." + strconv.Itoa(1+p.index)
	r.Tool = vellum.Tool{Name: p.name, CallID: p.callID}
	switch {
	case p.overflow:
		r.Outcome.Status = vellum.StatusFailure
		r.Outcome.Reason = fmt.Sprintf("tool arguments are larger than %d bytes; not stored", MaxArguments)
	case len(p.args) == 0:
	default:
		r.Tool.Arguments = json.RawMessage(p.args)
		// One JSON value, within the record schema's limits; otherwise
		// the text is kept as a JSON string and the call marked failed.
		if !json.Valid(p.args) || r.Validate() != nil {
			s, _ := json.Marshal(string(p.args))
			r.Tool.Arguments = s
			r.Outcome.Status = vellum.StatusFailure
			r.Outcome.Reason = "tool arguments are not one JSON value; stored as a string"
		}
	}
	if p.callID == "" {
		r.Outcome.Status = vellum.StatusFailure
		r.Outcome.Reason = fmt.Sprintf("tool call at index %d came without a call_id", p.index)
	}
	if p.callID != "" {
		m.call(p.callID, p.name).started = t
	}
	return r
}

// record starts a record of action with the request context.
func (m *Mapper) record(action string, t time.Time, status string) vellum.Record {
	q := &m.req
	return vellum.Record{
		EventID: m.base + ".0", EventTime: t,
		TenantID: q.TenantID, UserID: q.UserID, AuthMode: q.AuthMode,
		Action: action, Model: vellum.Model{Name: q.Model},
		Agent: q.Agent, SessionID: q.SessionID, TraceID: q.TraceID, RequestID: q.RequestID,
		Outcome: vellum.Outcome{Status: status},
	}
}

// call returns what is known of call id, remembering it (and forgetting
// the oldest beyond the bound).
func (m *Mapper) call(id, name string) *callInfo {
	if c := m.calls[id]; c != nil {
		if c.name == "" {
			c.name = name
		}
		return c
	}
	if len(m.callOrder) >= maxKnownCalls {
		delete(m.calls, m.callOrder[0])
		m.callOrder = slices.Delete(m.callOrder, 0, 1)
	}
	c := &callInfo{name: name}
	m.calls[id] = c
	m.callOrder = append(m.callOrder, id)
	return c
}

func (m *Mapper) forgetCall(id string) {
	delete(m.calls, id)
	if i := slices.Index(m.callOrder, id); i >= 0 {
		m.callOrder = slices.Delete(m.callOrder, i, i+1)
	}
}

func (m *Mapper) forgetQuestion(id string) {
	delete(m.questions, id)
	if i := slices.Index(m.qOrder, id); i >= 0 {
		m.qOrder = slices.Delete(m.qOrder, i, i+1)
	}
}

func (m *Mapper) remember(id string, q question) {
	if _, ok := m.questions[id]; !ok {
		if len(m.qOrder) >= maxKnownCalls {
			delete(m.questions, m.qOrder[0])
			m.qOrder = slices.Delete(m.qOrder, 0, 1)
		}
		m.qOrder = append(m.qOrder, id)
	}
	m.questions[id] = q
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
