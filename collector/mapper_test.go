package collector

import (
	"errors"
	"iter"
	"strings"
	"testing"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/step"
)

func mapAll(evs []step.Event) []vellum.Record {
	m := NewMapper(Request{SessionID: "s"})
	var out []vellum.Record
	for i := range evs {
		out = m.Map(&evs[i], fixedNow(), out)
	}
	return m.Flush(fixedNow(), out)
}

func TestMapperToolCalls(t *testing.T) {
	d := func(i int, id, name, args string) step.Event {
		return step.Event{Type: step.ToolCallDelta, Index: i, CallID: id, Name: name, Arguments: args}
	}
	tests := []struct {
		name string
		evs  []step.Event
		want []string // action|call_id|status|arguments
	}{
		{"parallel calls interleaved", []step.Event{d(0, "a", "x", `{"k":`), d(1, "b", "y", `[1,`), d(0, "", "", `1}`), d(1, "", "", `2]`), {Type: step.StreamComplete}},
			[]string{`tool.call|a|success|{"k":1}`, `tool.call|b|success|[1,2]`, `model.decision||success|`}},
		{"invalid arguments", []step.Event{d(0, "a", "x", `{"k":`), {Type: step.RequestEnd}},
			[]string{`tool.call|a|failure|"{\"k\":"`, `request.end||success|`}},
		{"no arguments", []step.Event{d(0, "a", "x", ``)}, []string{`tool.call|a|success|`}},
		{"same index, new call", []step.Event{d(0, "a", "x", `1`), d(0, "b", "x", `2`)},
			[]string{`tool.call|a|success|1`, `tool.call|b|success|2`}},
		{"no call id", []step.Event{d(3, "", "", `{}`)}, []string{`tool.call||failure|{}`}},
		{"arguments too large", []step.Event{d(0, "a", "x", strings.Repeat(" ", MaxArguments)), d(0, "", "", `1`)},
			[]string{`tool.call|a|failure|`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs := mapAll(tt.evs)
			var got []string
			for _, r := range recs {
				if err := r.Validate(); err != nil {
					t.Fatalf("invalid record %+v: %v", r, err)
				}
				got = append(got, r.Action+"|"+r.Tool.CallID+"|"+r.Outcome.Status+"|"+string(r.Tool.Arguments))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestMapperCloneIsIndependent(t *testing.T) {
	m := NewMapper(Request{})
	ev := step.Event{Type: step.ToolCallDelta, CallID: "a", Arguments: "[1"}
	m.Map(&ev, fixedNow(), nil)
	c := m.Clone()
	ev2 := step.Event{Type: step.ToolCallDelta, Arguments: ",2]"}
	c.Map(&ev2, fixedNow(), nil)
	r1 := m.Flush(fixedNow(), nil)
	r2 := c.Flush(fixedNow(), nil)
	if string(r1[0].Tool.Arguments) != `"[1"` || string(r2[0].Tool.Arguments) != `[1,2]` || m.Steps() != 1 || c.Steps() != 2 {
		t.Fatalf("original %s %d, clone %s %d", r1[0].Tool.Arguments, m.Steps(), r2[0].Tool.Arguments, c.Steps())
	}
}

// TestMapperEventIDs: ids name the stream, the step's index and the
// record's ordinal in the step (0 its own, 1+index a tool call it
// completes). With SetSessionIDs they come from the session and the step
// alone: another Mapper given the same steps at the same place (a resend
// after the server lost its state) makes the same ids; a different step
// at that place, or another session, does not.
func TestMapperEventIDs(t *testing.T) {
	ts := fixedNow()
	steps := []step.Event{{Type: step.RequestStart, Time: ts}, {Type: step.ToolCallDelta, Index: 2, CallID: "c", Arguments: "{}", Time: ts},
		{Type: step.ToolResult, CallID: "c", Time: ts}, {Type: step.RequestEnd, Time: ts}}
	run := func(m *Mapper, from int) []string {
		var ids []string
		for i := from; i < len(steps); i++ {
			for _, r := range m.Map(&steps[i], ts, nil) {
				ids = append(ids, r.EventID)
			}
		}
		return ids
	}
	random := run(NewMapper(Request{SessionID: "s"}), 0)
	if len(random) != 4 || !strings.HasSuffix(random[0], "-0.0") || !strings.HasSuffix(random[1], "-2.3") || !strings.HasSuffix(random[2], "-2.0") {
		t.Fatalf("random ids %v", random)
	}
	if again := run(NewMapper(Request{SessionID: "s"}), 0); again[0] == random[0] {
		t.Fatalf("two streams share id %s", again[0])
	}
	bySession := func(sess string) *Mapper {
		m := NewMapper(Request{SessionID: sess})
		m.SetSessionIDs(true)
		return m
	}
	a := run(bySession("s"), 0)
	b := run(bySession("s"), 0)
	if strings.Join(a, " ") != strings.Join(b, " ") {
		t.Fatalf("same session, same steps: %v vs %v", a, b)
	}
	// A Mapper that resumes at step 2 without the pending call: the
	// tool.result keeps its id (the lost call's record has none to match).
	m := bySession("s")
	m.SetNext(2)
	if tail := run(m, 2); tail[0] != a[2] || tail[1] != a[3] {
		t.Fatalf("resumed at 2: %v, from the start %v", tail, a)
	}
	if other := run(bySession("s2"), 0); other[0] == a[0] {
		t.Fatal("two sessions share an id")
	}
	steps[0].Time = ts.Add(1)
	if moved := run(bySession("s"), 0); moved[0] == a[0] || moved[1] != a[1] {
		t.Fatalf("another step at 0 must change only its id: %v vs %v", moved, a)
	}
	if d, ok := m.LastDigest(); !ok || d != StepDigest(&steps[3]) {
		t.Fatal("LastDigest is not the last step's")
	}
}

// TestMapperRequestEndError: request_end with an error is the stream's
// failure: request.end, status failure, the error as the reason (the
// record Wrap makes for an error yielded by a Go stream).
func TestMapperRequestEndError(t *testing.T) {
	m := NewMapper(Request{})
	ok := m.Map(&step.Event{Type: step.RequestEnd}, fixedNow(), nil)
	bad := m.Map(&step.Event{Type: step.RequestEnd, Error: "RuntimeError: " + strings.Repeat("x", 5000)}, fixedNow(), nil)
	if ok[0].Outcome.Status != vellum.StatusSuccess || ok[0].Outcome.Reason != "" {
		t.Fatalf("without error: %+v", ok[0].Outcome)
	}
	if bad[0].Action != "request.end" || bad[0].Outcome.Status != vellum.StatusFailure || len(bad[0].Outcome.Reason) != maxReason ||
		!strings.HasPrefix(bad[0].Outcome.Reason, "RuntimeError: x") {
		t.Fatalf("with error: %s %+v", bad[0].Action, bad[0].Outcome.Status)
	}
}

// TestWrapStreamErrorAndEarlyStop: an error from the stream passes through
// and is recorded as request.end failure; a consumer that stops early
// still gets the tool call it saw recorded.
func TestWrapStreamErrorAndEarlyStop(t *testing.T) {
	e := openEngine(t, nil, t.TempDir())
	defer e.Close()
	c, _ := New(e, nil)
	boom := errors.New("model backend down")
	var failing iter.Seq2[step.Event, error] = func(yield func(step.Event, error) bool) {
		if yield(step.Event{Type: step.ToolCallDelta, CallID: "a", Name: "x", Arguments: "{}"}, nil) {
			yield(step.Event{}, boom)
		}
	}
	var errs []error
	for _, err := range c.Wrap(bg, failing) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) != 1 || errs[0] != boom {
		t.Fatalf("errors %v, want the stream's own", errs)
	}
	for range c.Wrap(bg, stream([]step.Event{{Type: step.ToolCallDelta, CallID: "b", Arguments: "{}"}, {Type: step.RequestEnd}})) {
		break
	}
	var got []string
	for r := range e.Scan(bg, 1, e.LastSeq()) {
		got = append(got, r.Action+"/"+r.Outcome.Status+"/"+r.Outcome.Reason)
	}
	want := "tool.call/success/ request.end/failure/model backend down tool.call/success/"
	if strings.Join(got, " ") != want {
		t.Fatalf("stored %v, want %s", got, want)
	}
}
