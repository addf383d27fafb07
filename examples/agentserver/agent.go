package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"sync"
	"time"

	"github.com/vellumlog/vellum/step"
)

// The agent: a scripted model, three tools and a permission policy, yielding
// its step stream the way the ecosystem's agent servers do from
// astep_stream(). Nothing here knows about auditing: the collector observes
// the stream from outside (main.go).

// tool is one of the agent's tools.
type tool struct {
	name string
	run  func(ctx context.Context, args map[string]any) (string, error)
}

var tools = map[string]tool{
	// Plain: allowed without asking.
	"lookup_order": {"lookup_order", func(_ context.Context, args map[string]any) (string, error) {
		return fmt.Sprintf(`{"order_id": %q, "status": "delivered", "total": 42.5}`, args["order_id"]), nil
	}},
	// Needs approval: refunds up to refundLimit ask an operator, larger
	// ones are denied outright.
	"issue_refund": {"issue_refund", func(_ context.Context, args map[string]any) (string, error) {
		return fmt.Sprintf(`{"refund_id": "R-%v", "amount": %v}`, args["order_id"], args["amount"]), nil
	}},
	// Fails: the billing service behind it is down.
	"fetch_invoice": {"fetch_invoice", func(context.Context, map[string]any) (string, error) {
		return "", errors.New("billing service unavailable (HTTP 503)")
	}},
}

// refundLimit is the largest refund an operator may approve.
const refundLimit = 100

// decide is the permission policy: allow, deny or ask, and the rule that
// said so.
func decide(name string, args map[string]any) (action, rule string) {
	switch name {
	case "issue_refund":
		if amt, _ := args["amount"].(float64); amt > refundLimit {
			return "deny", "refund-over-limit"
		}
		return "ask", "refunds-need-approval"
	default:
		return "allow", "default-allow"
	}
}

// call is one tool call of the script: the tool and its arguments, sent to
// the client in the fragments given.
type call struct {
	name  string
	frags []string
}

// script is what the scripted model does with any message, turn by turn:
// each turn streams some reasoning and tool calls; the last answers.
var script = [][]call{
	{{"lookup_order", []string{`{"order_id": `, `"1234", "fields": `, `["status", "total"]}`}}},
	{{"issue_refund", []string{`{"order_id": "1234", "amount": 1500}`}}}, // denied: over the limit
	{{"issue_refund", []string{`{"order_id": "1234",`, ` "amount": 42.5}`}}},
	{{"fetch_invoice", []string{`{"order_id": "1234"}`}}},
}

// answer is an operator's answer to a question.
type answer struct {
	outcome  string // approve or deny
	approver string
}

// Agent runs the scripted conversation. It is safe for concurrent use:
// each Run is one request.
type Agent struct {
	// Name and Model name the agent and its model in the stream.
	Name, Model string
	// AskTimeout bounds how long a question waits for an operator.
	AskTimeout time.Duration

	mu        sync.Mutex
	questions map[string]chan answer // question id -> its waiting call
	next      int
}

// NewAgent returns an agent whose questions wait askTimeout for an answer.
func NewAgent(askTimeout time.Duration) *Agent {
	return &Agent{Name: "support-bot", Model: "scripted-1", AskTimeout: askTimeout, questions: map[string]chan answer{}}
}

// Answer delivers an operator's answer to question id; false when no call
// waits for it (unknown, answered or timed out).
func (a *Agent) Answer(id, outcome, approver string) bool {
	a.mu.Lock()
	ch, ok := a.questions[id]
	delete(a.questions, id)
	a.mu.Unlock()
	if ok {
		ch <- answer{outcome, approver}
	}
	return ok
}

// forget drops question id unanswered.
func (a *Agent) forget(id string) {
	a.mu.Lock()
	delete(a.questions, id)
	a.mu.Unlock()
}

// ask registers a question and returns its id and where the answer comes.
func (a *Agent) ask() (string, chan answer) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.next++
	id := "q-" + strconv.Itoa(a.next)
	ch := make(chan answer, 1)
	a.questions[id] = ch
	return id, ch
}

// Run streams the steps of one request: the scripted turns, each tool call
// decided by the policy (an ask waits for Answer), run and answered, then
// the model's reply. The stream ends early with an error if ctx ends.
func (a *Agent) Run(ctx context.Context, message string) iter.Seq2[step.Event, error] {
	return func(yield func(step.Event, error) bool) {
		now := func() time.Time { return time.Now().UTC() }
		emit := func(ev step.Event) bool {
			ev.Time = now()
			return yield(ev, nil)
		}
		if !emit(step.Event{Type: step.RequestStart}) {
			return
		}
		callN := 0
		for turn, calls := range script {
			if !emit(step.Event{Type: step.ReasoningDelta, Text: fmt.Sprintf("turn %d of %q", turn+1, message)}) {
				return
			}
			for i, c := range calls {
				callN++
				id := "call_" + strconv.Itoa(callN)
				for j, f := range c.frags {
					ev := step.Event{Type: step.ToolCallDelta, Index: i, Arguments: f}
					if j == 0 {
						ev.CallID, ev.Name = id, c.name
					}
					if !emit(ev) {
						return
					}
				}
				if !a.handle(ctx, id, c, emit) {
					return
				}
			}
		}
		for _, t := range []string{"Order 1234 is refunded. ", "The invoice could not be fetched."} {
			if !emit(step.Event{Type: step.ContentDelta, Text: t}) {
				return
			}
		}
		if !emit(step.Event{Type: step.StreamComplete, FinishReason: "stop", Model: a.Model,
			Usage: step.Usage{InputTokens: 812, OutputTokens: 96}}) {
			return
		}
		emit(step.Event{Type: step.RequestEnd})
	}
}

// handle decides, asks if need be, runs and reports one tool call; false
// when the consumer stopped or ctx ended.
func (a *Agent) handle(ctx context.Context, id string, c call, emit func(step.Event) bool) bool {
	var args map[string]any
	var raw string
	for _, f := range c.frags {
		raw += f
	}
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		panic("agentserver: bad script: " + err.Error())
	}
	action, rule := decide(c.name, args)
	if !emit(step.Event{Type: step.PermissionDecision, CallID: id, Tool: c.name, Action: action, RuleID: rule, Scope: "tool", Mode: "enforce"}) {
		return false
	}
	switch action {
	case "deny":
		return emit(step.Event{Type: step.ToolResult, CallID: id, Name: c.name, Content: "denied by policy " + rule, IsError: true})
	case "ask":
		qid, ch := a.ask()
		if !emit(step.Event{Type: step.QuestionAsked, QuestionID: qid, CallID: id, Tool: c.name,
			Question: fmt.Sprintf("Allow %s %s?", c.name, raw)}) {
			a.forget(qid)
			return false
		}
		var ans answer
		t := time.NewTimer(a.AskTimeout)
		select {
		case ans = <-ch:
			t.Stop()
		case <-t.C:
			a.forget(qid)
			ans = answer{outcome: "timeout"}
		case <-ctx.Done():
			t.Stop()
			a.forget(qid)
			return false
		}
		if !emit(step.Event{Type: step.QuestionAnswered, QuestionID: qid, Outcome: ans.outcome, Approver: ans.approver}) {
			return false
		}
		if ans.outcome != "approve" {
			return emit(step.Event{Type: step.ToolResult, CallID: id, Name: c.name, Content: "not approved: " + ans.outcome, IsError: true})
		}
	}
	out, err := tools[c.name].run(ctx, args)
	if err != nil {
		return emit(step.Event{Type: step.ToolResult, CallID: id, Name: c.name, Content: err.Error(), IsError: true})
	}
	return emit(step.Event{Type: step.ToolResult, CallID: id, Name: c.name, Content: out})
}
