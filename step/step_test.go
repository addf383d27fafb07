package step

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDecodeEveryType(t *testing.T) {
	tests := []struct {
		in   string
		want Event
	}{
		{`{"type":"request_start","ts":"2026-11-29T10:00:00.5Z","input":{"q":"hi"}}`,
			Event{Type: RequestStart, Time: time.Date(2026, 11, 29, 10, 0, 0, 5e8, time.UTC), Input: json.RawMessage(`{"q":"hi"}`)}},
		{`{"type":"reasoning_delta","text":"think"}`, Event{Type: ReasoningDelta, Text: "think"}},
		{`{"type":"content_delta","text":"say"}`, Event{Type: ContentDelta, Text: "say"}},
		{`{"type":"tool_call_delta","index":2,"call_id":"c","name":"n","arguments":"{\"a\":"}`,
			Event{Type: ToolCallDelta, Index: 2, CallID: "c", Name: "n", Arguments: `{"a":`}},
		{`{"type":"tool_result","call_id":"c","name":"n","content":"x","is_error":true}`,
			Event{Type: ToolResult, CallID: "c", Name: "n", Content: "x", IsError: true}},
		{`{"type":"permission_decision","call_id":"c","tool":"t","action":"ask","rule_id":"r","scope":"s","mode":"observe"}`,
			Event{Type: PermissionDecision, CallID: "c", Tool: "t", Action: "ask", RuleID: "r", Scope: "s", Mode: "observe"}},
		{`{"type":"question_asked","question_id":"q","call_id":"c","tool":"t","question":"ok?"}`,
			Event{Type: QuestionAsked, QuestionID: "q", CallID: "c", Tool: "t", Question: "ok?"}},
		{`{"type":"question_answered","question_id":"q","outcome":"timeout","approver":"bob"}`,
			Event{Type: QuestionAnswered, QuestionID: "q", Outcome: "timeout", Approver: "bob"}},
		{`{"type":"guardrail","shield_id":"s","action":"blocked","category":"pii"}`,
			Event{Type: Guardrail, ShieldID: "s", Action: "blocked", Category: "pii"}},
		{`{"type":"limit_exceeded","limit":"cost","threshold":1.5,"actual":2}`,
			Event{Type: LimitExceeded, Limit: "cost", Threshold: 1.5, Actual: 2}},
		{`{"type":"loop_break","reason":"r"}`, Event{Type: LoopBreak, Reason: "r"}},
		{`{"type":"subagent_invoked","subagent":"a","subagent_session_id":"s"}`, Event{Type: SubagentInvoked, Subagent: "a", SubagentSessionID: "s"}},
		{`{"type":"subagent_completed","subagent":"a"}`, Event{Type: SubagentCompleted, Subagent: "a"}},
		{`{"type":"subagent_failed","subagent":"a","error":"e"}`, Event{Type: SubagentFailed, Subagent: "a", Error: "e"}},
		{`{"type":"stream_complete","finish_reason":"stop","model":"m","usage":{"input_tokens":3,"output_tokens":4}}`,
			Event{Type: StreamComplete, FinishReason: "stop", Model: "m", Usage: Usage{3, 4}}},
		{`{"type":"request_end","text":null}`, Event{Type: RequestEnd}},
	}
	seen := map[Type]bool{}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Decode([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
			// Encoding and decoding again gives the same event.
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Decode(b)
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("round trip of %s: %+v, %v", b, again, err)
			}
			seen[got.Type] = true
		})
	}
	for _, ty := range Types {
		if !seen[ty] {
			t.Errorf("type %s not tested", ty)
		}
	}
}

func TestDecodeBatchErrors(t *testing.T) {
	ctx := `"context":{"session_id":"s"}`
	tests := []struct{ name, in, want string }{
		{"unknown type", `{` + ctx + `,"steps":[{"type":"request_start"},{"type":"x"}]}`, `steps[1].type: unknown step type "x"`},
		{"missing type", `{` + ctx + `,"steps":[{"text":"a"}]}`, `steps[0].type: is required`},
		{"foreign field", `{` + ctx + `,"steps":[{"type":"loop_break","tool":"t"}]}`, `steps[0].tool: is not a field of a loop_break step`},
		{"unknown field", `{` + ctx + `,"steps":[{"type":"loop_break","toool":"t"}]}`, `steps[0].toool: is not a field here`},
		{"missing field", `{` + ctx + `,"steps":[{"type":"tool_result"}]}`, `steps[0].call_id: is required in a tool_result step`},
		{"bad enum", `{` + ctx + `,"steps":[{"type":"permission_decision","tool":"t","action":"maybe"}]}`, `steps[0].action: "maybe" is not one of allow, deny, ask`},
		{"bad mode", `{` + ctx + `,"steps":[{"type":"permission_decision","tool":"t","action":"allow","mode":"x"}]}`, `steps[0].mode: "x" is not one of enforce, observe`},
		{"bad outcome", `{` + ctx + `,"steps":[{"type":"question_answered","question_id":"q","outcome":"yes"}]}`, `steps[0].outcome: "yes" is not one of approve, deny, timeout`},
		{"bad kind", `{` + ctx + `,"steps":[{"type":"tool_call_delta","index":"0"}]}`, `steps[0].index: want a whole number, got string`},
		{"fractional", `{` + ctx + `,"steps":[{"type":"tool_call_delta","index":1.5}]}`, `steps[0].index:`},
		{"negative index", `{` + ctx + `,"steps":[{"type":"tool_call_delta","index":-1}]}`, `steps[0].index: -1 is not between 0 and 1023`},
		{"bad ts", `{` + ctx + `,"steps":[{"type":"request_end","ts":"yesterday"}]}`, `steps[0].ts: "yesterday" is not an RFC 3339 time`},
		{"usage field", `{` + ctx + `,"steps":[{"type":"stream_complete","usage":{"tokens":1}}]}`, `steps[0].usage.tokens: is not a field here`},
		{"duplicate", `{` + ctx + `,"steps":[{"type":"loop_break","reason":"a","reason":"b"}]}`, `steps[0].reason: appears twice`},
		{"no context", `{"steps":[{"type":"request_end"}]}`, `context: is required`},
		{"no session", `{"context":{},"steps":[{"type":"request_end"}]}`, `context.session_id: is required`},
		{"no steps", `{` + ctx + `,"steps":[]}`, `steps: is required`},
		{"context field", `{"context":{"session_id":"s","tenant":"t"},"steps":[{"type":"request_end"}]}`, `context.tenant: is not a field here`},
		{"syntax", `{` + ctx + `,"steps":[{"type":`, `malformed JSON`},
		{"limit", `{` + ctx + `,"steps":[{"type":"limit_exceeded","limit":"time"}]}`, `steps[0].limit: "time" is not one of tokens, iterations, cost`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeBatch([]byte(tt.in))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v does not match ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDecodeBatch(t *testing.T) {
	b, err := DecodeBatch([]byte(`{"context":{"session_id":"s","trace_id":"t","agent":"a","model":"m","auth_mode":"token"},
		"steps":[{"type":"request_start"},{"type":"request_end"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Batch{Context: Context{SessionID: "s", TraceID: "t", Agent: "a", Model: "m", AuthMode: "token"}, Steps: []Event{{Type: RequestStart}, {Type: RequestEnd}}}
	if !reflect.DeepEqual(b, want) {
		t.Fatalf("got %+v", b)
	}
}

// TestFirstStepAndRequestEndError: context.first_step (optional, 0 is a
// value) and request_end's optional error decode and encode.
func TestFirstStepAndRequestEndError(t *testing.T) {
	b, err := DecodeBatch([]byte(`{"context":{"session_id":"s","first_step":0},"steps":[{"type":"request_end","error":"ValueError: boom"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if b.Context.FirstStep == nil || *b.Context.FirstStep != 0 || b.Steps[0].Error != "ValueError: boom" {
		t.Fatalf("got %+v", b)
	}
	out, err := json.Marshal(b)
	if err != nil || !strings.Contains(string(out), `"first_step":0`) || !strings.Contains(string(out), `"error":"ValueError: boom"`) {
		t.Fatalf("encoded %s, %v", out, err)
	}
	if b, err = DecodeBatch([]byte(`{"context":{"session_id":"s"},"steps":[{"type":"request_end"}]}`)); err != nil || b.Context.FirstStep != nil {
		t.Fatalf("without first_step: %+v, %v", b, err)
	}
	for body, want := range map[string]string{
		`{"context":{"session_id":"s","first_step":-1},"steps":[{"type":"request_end"}]}`:               "context.first_step",
		`{"context":{"session_id":"s","first_step":1.5},"steps":[{"type":"request_end"}]}`:              "context.first_step",
		`{"context":{"session_id":"s","first_step":9007199254740992},"steps":[{"type":"request_end"}]}`: "context.first_step: 9007199254740992 is more than 9007199254740991",
		`{"context":{"session_id":"s"},"steps":[{"type":"request_end","error":1}]}`:                     "steps[0].error",
		`{"context":{"session_id":"s"},"steps":[{"type":"request_start","error":"x"}]}`:                 "steps[0].error: is not a field of a request_start step",
	} {
		if _, err := DecodeBatch([]byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}

// FuzzDecode: decoding never panics; an error is an *Error; an accepted
// step survives encoding and decoding unchanged.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"type":"tool_call_delta","index":0,"call_id":"c","name":"n","arguments":"{\"a\":"}`))
	f.Add([]byte(`{"type":"stream_complete","finish_reason":"stop","usage":{"input_tokens":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := Decode(b)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) || se.Reason == "" {
				t.Fatalf("error %#v is not an *Error", err)
			}
			return
		}
		out, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("encode %+v: %v", ev, err)
		}
		again, err := Decode(out)
		if err != nil || !reflect.DeepEqual(again, ev) {
			t.Fatalf("round trip %s -> %s: %+v, %v", b, out, again, err)
		}
	})
}

// FuzzDecodeBatch: a batch body never panics the decoder; an error names
// a field as an *Error; an accepted batch survives encoding and decoding.
func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte(`{"context":{"session_id":"s","model":"m"},"steps":[{"type":"request_start"},{"type":"tool_call_delta","index":0,"call_id":"c","arguments":"{"}]}`))
	f.Add([]byte(`{"context":{"session_id":"s"},"steps":[{"type":"x"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		batch, err := DecodeBatch(b)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) || se.Reason == "" {
				t.Fatalf("error %#v is not an *Error", err)
			}
			return
		}
		out, err := json.Marshal(batch)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		again, err := DecodeBatch(out)
		if err != nil || !reflect.DeepEqual(again, batch) {
			t.Fatalf("round trip %s -> %s: %v", b, out, err)
		}
	})
}
