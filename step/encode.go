package step

import (
	"slices"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// MarshalJSON encodes ev in the wire form: "type", "ts" when set, the
// fields its type requires, and its optional fields when not zero. Fields
// that do not belong to the type are left out.
func (ev Event) MarshalJSON() ([]byte, error) {
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	sh := shapes[ev.Type]
	t := string(ev.Type)
	w := wire{Type: &t}
	if !ev.Time.IsZero() {
		ts := ev.Time.UTC().Format(time.RFC3339Nano)
		w.TS = &ts
	}
	want := func(name string, zero bool) bool {
		return slices.Contains(sh.required, name) || slices.Contains(sh.optional, name) && !zero
	}
	str := func(name, v string) *string {
		if want(name, v == "") {
			return &v
		}
		return nil
	}
	if want("input", len(ev.Input) == 0) {
		w.Input = jsontext.Value(ev.Input)
	}
	w.Text = str("text", ev.Text)
	if want("index", ev.Index == 0) {
		i := int64(ev.Index)
		w.Index = &i
	}
	w.CallID, w.Name, w.Arguments = str("call_id", ev.CallID), str("name", ev.Name), str("arguments", ev.Arguments)
	w.Content = str("content", ev.Content)
	if want("is_error", !ev.IsError) {
		w.IsError = &ev.IsError
	}
	w.Tool, w.Action, w.RuleID, w.Scope, w.Mode = str("tool", ev.Tool), str("action", ev.Action), str("rule_id", ev.RuleID), str("scope", ev.Scope), str("mode", ev.Mode)
	w.QuestionID, w.Question, w.Outcome, w.Approver = str("question_id", ev.QuestionID), str("question", ev.Question), str("outcome", ev.Outcome), str("approver", ev.Approver)
	w.ShieldID, w.Category, w.Limit = str("shield_id", ev.ShieldID), str("category", ev.Category), str("limit", ev.Limit)
	if want("threshold", ev.Threshold == 0) {
		w.Threshold = &ev.Threshold
	}
	if want("actual", ev.Actual == 0) {
		w.Actual = &ev.Actual
	}
	w.Reason, w.Subagent, w.SubagentSessionID, w.Error = str("reason", ev.Reason), str("subagent", ev.Subagent), str("subagent_session_id", ev.SubagentSessionID), str("error", ev.Error)
	w.FinishReason, w.Model = str("finish_reason", ev.FinishReason), str("model", ev.Model)
	if want("usage", ev.Usage == Usage{}) {
		w.Usage = &wireUsage{InputTokens: &ev.Usage.InputTokens, OutputTokens: &ev.Usage.OutputTokens}
	}
	return json.Marshal(&w, json.OmitZeroStructFields(true))
}

// UnmarshalJSON decodes one step strictly, as Decode does.
func (ev *Event) UnmarshalJSON(b []byte) error {
	e, err := Decode(b)
	if err != nil {
		return err
	}
	*ev = e
	return nil
}
