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
	if string(r1[0].Tool.Arguments) != `"[1"` || string(r2[0].Tool.Arguments) != `[1,2]` || r1[0].EventID != r2[0].EventID {
		t.Fatalf("original %s %s, clone %s %s", r1[0].Tool.Arguments, r1[0].EventID, r2[0].Tool.Arguments, r2[0].EventID)
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
