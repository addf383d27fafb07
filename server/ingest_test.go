package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/redact"
)

// issueEvent is the event shape the API must accept (issue 4).
const issueEvent = `{"event_id": "e-1", "time": "2026-11-27T10:00:00Z", "tenant_id": "acme", "user_id": "alice",
 "session_id": "s-1", "trace_id": "trace_0123456789abcdef", "agent": "support-bot",
 "action": "tool.call",
 "tool": {"name": "web_search", "call_id": "call_1", "arguments": {"query": "weather in Paris"}},
 "model": {"name": "granite-3.3-8b", "provider": "vllm"},
 "outcome": {"status": "success"}}`

func issueRecord() vellum.Record {
	return vellum.Record{
		EventID: "e-1", EventTime: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
		TenantID: "acme", UserID: "alice", SessionID: "s-1", TraceID: "trace_0123456789abcdef", Agent: "support-bot",
		Action:  "tool.call",
		Tool:    vellum.Tool{Name: "web_search", CallID: "call_1", Arguments: json.RawMessage(`{"query": "weather in Paris"}`)},
		Model:   vellum.Model{Name: "granite-3.3-8b", Provider: "vllm"},
		Outcome: vellum.Outcome{Status: "success"},
	}
}

// everyField sets every field an event may carry.
const everyField = `{"event_id":"e-2","time":"2026-11-27T10:00:00.123456789+01:00","tenant_id":"t","user_id":"u","service":"svc",
"auth_mode":"gateway","action":"permission.decision","agent":"a","session_id":"s","trace_id":"tr","request_id":"rq",
"tool":{"name":"shell","call_id":"c","arguments":["ls"],"is_error":true,"duration_ns":1500},
"model":{"name":"m","provider":"p","finish_reason":"tool_calls","input_tokens":10,"output_tokens":20},
"outcome":{"status":"denied","reason":"policy","rule_id":"r-1","approver":"bob","mode":"enforce"},
"attributes":{"k":"v","région":"ïle"}}`

func everyFieldRecord() vellum.Record {
	return vellum.Record{
		EventID: "e-2", EventTime: time.Date(2026, 11, 27, 9, 0, 0, 123456789, time.UTC),
		TenantID: "t", UserID: "u", Service: "svc", AuthMode: "gateway", Action: "permission.decision",
		Agent: "a", SessionID: "s", TraceID: "tr", RequestID: "rq",
		Tool:       vellum.Tool{Name: "shell", CallID: "c", Arguments: json.RawMessage(`["ls"]`), IsError: true, DurationNS: 1500},
		Model:      vellum.Model{Name: "m", Provider: "p", FinishReason: "tool_calls", InputTokens: 10, OutputTokens: 20},
		Outcome:    vellum.Outcome{Status: "denied", Reason: "policy", RuleID: "r-1", Approver: "bob", Mode: "enforce"},
		Attributes: map[string]string{"k": "v", "région": "ïle"},
	}
}

const minEvent = `{"action":"request.start","outcome":{"status":"success"}}`

func TestDecodeEvents(t *testing.T) {
	min := vellum.Record{Action: "request.start", Outcome: vellum.Outcome{Status: "success"}}
	tests := []struct {
		name   string
		body   string
		ndjson bool
		want   []vellum.Record
	}{
		{"issue example in an array", "[" + issueEvent + "]", false, []vellum.Record{issueRecord()}},
		{"issue example alone", issueEvent, false, []vellum.Record{issueRecord()}},
		{"every field", "[" + everyField + "]", false, []vellum.Record{everyFieldRecord()}},
		{"array of two", "[" + minEvent + " , " + minEvent + "]", false, []vellum.Record{min, min}},
		{"empty array", " [ ] ", false, nil},
		{"ndjson", minEvent + "\n" + minEvent + "\n", false, []vellum.Record{min, min}},
		{"ndjson CRLF and blank lines", "\r\n" + minEvent + "\r\n\r\n" + minEvent, false, []vellum.Record{min, min}},
		{"ndjson by content type", minEvent + "\n", true, []vellum.Record{min}},
		{"pretty-printed objects", "{\n  \"action\": \"request.start\",\n  \"outcome\": {\"status\": \"success\"}\n}\n", false, []vellum.Record{min}},
		{"nulls are absent", `{"action":"request.start","outcome":{"status":"success"},"user_id":null,"time":null,"tool":null,"model":{"name":null},"attributes":null}`,
			false, []vellum.Record{min}},
		{"null arguments", `{"action":"tool.call","outcome":{"status":"success"},"tool":{"name":"x","arguments":null}}`, false,
			[]vellum.Record{{Action: "tool.call", Outcome: vellum.Outcome{Status: "success"}, Tool: vellum.Tool{Name: "x"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeEvents([]byte(tt.body), DecodeOptions{NDJSON: tt.ndjson})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("records:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeEventsErrors(t *testing.T) {
	ok := minEvent
	tests := []struct {
		name   string
		body   string
		opts   DecodeOptions
		index  int
		line   int
		field  string
		reason string
		is     error
	}{
		{name: "empty body", body: "  \n", index: -1, reason: "the body is empty"},
		{name: "malformed JSON in array", body: "[" + ok + ",\n{\"action\": }]", index: 1, line: 2, reason: "malformed JSON"},
		{name: "truncated", body: "[" + ok + ",\n{\"action\": \"a\"", index: 1, line: 2, reason: "ends in the middle"},
		{name: "malformed NDJSON line", body: ok + "\n" + ok + "\n{oops}\n", index: 2, line: 3, reason: "malformed JSON"},
		{name: "array in NDJSON mode", body: "[" + ok + "]", opts: DecodeOptions{NDJSON: true}, index: 0, line: 1, reason: "want a JSON object, got an array"},
		{name: "not an object", body: `["x"]`, index: 0, reason: "want a JSON object, got a string"},
		{name: "null event", body: `[null]`, index: 0, reason: "got null"},
		{name: "number at top", body: `42`, index: 0, reason: "want a JSON object"},
		{name: "a body that only starts like true", body: `t`, index: 0, reason: "malformed JSON"},
		{name: "a body that only starts like null", body: `nul`, index: 0, reason: "malformed JSON"},
		{name: "a tool that only starts like a number", body: `{"action":"a","tool":-x}`, index: 0, reason: "malformed JSON"},
		{name: "an attribute value that only starts like false", body: `{"action":"a","attributes":{"k":fals}}`, index: 0, reason: "malformed JSON"},
		{name: "attributes that only start like true", body: `{"action":"a","attributes":tru}`, index: 0, reason: "malformed JSON"},
		{name: "data after the array", body: "[" + ok + "] {}", index: -1, reason: "data after the closing ]"},
		{name: "unknown field", body: `{"action":"a","outcome":{"status":"success"},"colour":"red"}`, index: 0, field: "colour", reason: "unknown field"},
		{name: "case matters", body: `{"Action":"a","outcome":{"status":"success"}}`, index: 0, field: "Action", reason: "unknown field"},
		{name: "duplicate field", body: `{"action":"a","action":"b","outcome":{"status":"success"}}`, index: 0, field: "action", reason: "appears twice"},
		{name: "duplicate nested field", body: `{"action":"a","outcome":{"status":"success","status":"denied"}}`, index: 0, field: "outcome.status", reason: "appears twice"},
		{name: "duplicate attribute", body: `{"action":"a","outcome":{"status":"success"},"attributes":{"k":"1","k":"2"}}`, index: 0, field: "attributes.k", reason: "appears twice"},
		{name: "seq", body: `{"seq":1,"action":"a","outcome":{"status":"success"}}`, index: 0, field: "seq", reason: "assigned by the store"},
		{name: "mac", body: `{"action":"a","mac":"00","outcome":{"status":"success"}}`, index: 0, field: "mac", reason: "assigned by the store"},
		{name: "prev_mac", body: `{"action":"a","prev_mac":"00","outcome":{"status":"success"}}`, index: 0, field: "prev_mac", reason: "assigned by the store"},
		{name: "key_id", body: `{"action":"a","key_id":"00","outcome":{"status":"success"}}`, index: 0, field: "key_id", reason: "assigned by the store"},
		{name: "redactions", body: `{"action":"a","redactions":[],"outcome":{"status":"success"}}`, index: 0, field: "redactions", reason: "assigned by the store"},
		{name: "event_time", body: `{"action":"a","event_time":"2026-01-01T00:00:00Z","outcome":{"status":"success"}}`, index: 0, field: "event_time", reason: "as \"time\""},
		{name: "unknown tool field", body: `{"action":"a","outcome":{"status":"success"},"tool":{"nam":"x"}}`, index: 0, field: "tool.nam", reason: "unknown field"},
		{name: "unknown model field", body: `{"action":"a","outcome":{"status":"success"},"model":{"temperature":1}}`, index: 0, field: "model.temperature", reason: "unknown field"},
		{name: "unknown outcome field", body: `{"action":"a","outcome":{"status":"success","why":"x"}}`, index: 0, field: "outcome.why", reason: "unknown field"},
		{name: "reserved attribute", body: `{"action":"a","outcome":{"status":"success"},"attributes":{"vellum.principal":"root"}}`, index: 0, field: "attributes.vellum.principal", reason: "set by the server"},
		{name: "string field as number", body: `{"action":"a","outcome":{"status":"success"},"user_id":7}`, index: 0, field: "user_id", reason: "want a string, got number"},
		{name: "attribute value as object", body: `{"action":"a","outcome":{"status":"success"},"attributes":{"k":{}}}`, index: 0, field: "attributes.k", reason: "want a string"},
		{name: "tool as string", body: `{"action":"a","outcome":{"status":"success"},"tool":"x"}`, index: 0, field: "tool", reason: "want a JSON object"},
		{name: "is_error as string", body: `{"action":"a","outcome":{"status":"success"},"tool":{"is_error":"yes"}}`, index: 0, field: "tool.is_error", reason: "want true or false"},
		{name: "duration as float", body: `{"action":"a","outcome":{"status":"success"},"tool":{"duration_ns":1.5}}`, index: 0, field: "tool.duration_ns", reason: "whole number"},
		{name: "negative tokens", body: `{"action":"a","outcome":{"status":"success"},"model":{"input_tokens":-1}}`, index: 0, field: "model.input_tokens", reason: "whole number"},
		{name: "bad time", body: `{"action":"a","outcome":{"status":"success"},"time":"yesterday"}`, index: 0, field: "time", reason: "RFC 3339"},
		{name: "time as number", body: `{"action":"a","outcome":{"status":"success"},"time":1700000000}`, index: 0, field: "time", reason: "want an RFC 3339 time string"},
		{name: "too many events", body: ok + "\n" + ok + "\n" + ok + "\n", opts: DecodeOptions{MaxEvents: 2}, index: 2, line: 3, reason: "more than 2 events", is: ErrTooManyEvents},
		{name: "record too large", body: `{"action":"a","outcome":{"status":"success"},"outcome":{}}`, index: 0, field: "outcome", reason: "appears twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := DecodeEvents([]byte(tt.body), tt.opts)
			var ee *EventError
			if !errors.As(err, &ee) {
				t.Fatalf("err = %v (records %d), want an EventError", err, len(recs))
			}
			if recs != nil {
				t.Fatal("records returned with an error")
			}
			is := tt.is
			if is == nil {
				is = ErrBadEvent
			}
			if !errors.Is(err, is) {
				t.Fatalf("err = %v, want it to wrap %v", err, is)
			}
			if ee.Index != tt.index || ee.Field != tt.field || !strings.Contains(ee.Reason, tt.reason) {
				t.Fatalf("got index %d field %q reason %q\nwant index %d field %q reason containing %q", ee.Index, ee.Field, ee.Reason, tt.index, tt.field, tt.reason)
			}
			if tt.line != 0 && ee.Line != tt.line {
				t.Fatalf("line = %d, want %d (%s)", ee.Line, tt.line, ee.Detail())
			}
			if d := ee.Detail(); tt.field != "" && !strings.Contains(d, tt.field) {
				t.Fatalf("detail %q does not name the field", d)
			}
		})
	}
}

// TestIngestRecordErrors: what the store refuses when it prepares a
// decoded body (an invalid record, a record too large once encoded with the
// server's attribute) comes back as the EventError of the event, with its
// line.
func TestIngestRecordErrors(t *testing.T) {
	ok := minEvent
	store := newTestStoreOpts(t, func(o *engine.Options) { o.MaxRecordSize = 200 })
	tests := []struct {
		name   string
		body   string
		index  int
		line   int
		reason string
		is     error
	}{
		{name: "missing action", body: "[" + ok + ",\n" + `{"outcome":{"status":"success"}}]`, index: 1, line: 2, reason: "action is required"},
		{name: "bad action", body: `{"action":"Tool Call","outcome":{"status":"success"}}`, index: 0, reason: "action \"Tool Call\""},
		{name: "missing status", body: `{"action":"a"}`, index: 0, reason: "outcome.status is required"},
		{name: "unknown status", body: `{"action":"a","outcome":{"status":"ok"}}`, index: 0, reason: "outcome.status \"ok\" is not one of"},
		{name: "bad mode", body: `{"action":"a","outcome":{"status":"success","mode":"maybe"}}`, index: 0, reason: "outcome.mode"},
		{name: "negative duration", body: `{"action":"a","outcome":{"status":"success"},"tool":{"duration_ns":-1}}`, index: 0, reason: "tool.duration_ns is negative"},
		{name: "id too long", body: `{"action":"a","outcome":{"status":"success"},"user_id":"` + strings.Repeat("u", 513) + `"}`, index: 0, reason: "user_id is longer than 512"},
		{name: "event too large", body: ok + "\n" + `{"action":"a","outcome":{"status":"success"},"attributes":{"k":"` + strings.Repeat("x", 250) + `"}}`,
			index: 1, line: 2, reason: "over the maximum of 200", is: ErrEventTooLarge},
		// 184 bytes encoded as sent; with the server's principal attribute
		// the record stored is 218, and that is what counts.
		{name: "too large with the server's attribute", body: `{"action":"a","outcome":{"status":"success"},"attributes":{"k":"` + strings.Repeat("x", 120) + `"}}`,
			index: 0, reason: "over the maximum of 200", is: ErrEventTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var starts []int
			recs, err := decodeEvents([]byte(tt.body), DecodeOptions{}, &starts, false)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			for i := range recs {
				if recs[i].Attributes == nil {
					recs[i].Attributes = map[string]string{}
				}
				recs[i].Attributes[ReservedAttrPrefix+"principal"] = "a-principal-name"
			}
			p, err := store.(preparer).Prepare(recs...)
			if err == nil {
				t.Fatalf("prepared %d records, want a refusal", p.Len())
			}
			err = recordError([]byte(tt.body), starts, err)
			var ee *EventError
			if !errors.As(err, &ee) {
				t.Fatalf("err = %v, want an EventError", err)
			}
			is := tt.is
			if is == nil {
				is = ErrBadEvent
			}
			if !errors.Is(err, is) {
				t.Fatalf("err = %v, want it to wrap %v", err, is)
			}
			if ee.Index != tt.index || !strings.Contains(ee.Reason, tt.reason) {
				t.Fatalf("got index %d reason %q, want index %d reason containing %q", ee.Index, ee.Reason, tt.index, tt.reason)
			}
			if tt.line != 0 && ee.Line != tt.line {
				t.Fatalf("line = %d, want %d (%s)", ee.Line, tt.line, ee.Detail())
			}
		})
	}
}

func TestDecodeEventsLimit(t *testing.T) {
	body := strings.Repeat(minEvent+"\n", 3)
	recs, err := DecodeEvents([]byte(body), DecodeOptions{MaxEvents: 3})
	if err != nil || len(recs) != 3 {
		t.Fatalf("exactly the limit: %d records, %v", len(recs), err)
	}
}

// TestDecodeEventsDepth pins the nesting bound: 10,000 levels counted from
// the top of the body, so tool arguments inside an array body may nest
// 9,997 levels (array, event and tool take three).
func TestDecodeEventsDepth(t *testing.T) {
	args := func(depth int) string {
		return `[{"action":"a","outcome":{"status":"success"},"tool":{"arguments":` +
			strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}}]`
	}
	if _, err := DecodeEvents([]byte(args(9997)), DecodeOptions{}); err != nil {
		t.Fatalf("9,997 levels of arguments: %v", err)
	}
	_, err := DecodeEvents([]byte(args(9998)), DecodeOptions{})
	var ee *EventError
	if !errors.As(err, &ee) || ee.Index != 0 || !strings.Contains(ee.Reason, "depth") {
		t.Fatalf("9,998 levels: %v, want a depth error for events[0]", err)
	}
}

func TestWriteSeqsMatchesJSON(t *testing.T) {
	for _, seqs := range [][]uint64{{}, {1}, {1, 2, 18446744073709551615}} {
		a, b := httptest.NewRecorder(), httptest.NewRecorder()
		writeSeqs(a, seqs)
		writeJSON(b, http.StatusOK, ingestResponse{Seqs: seqs})
		if a.Body.String() != b.Body.String() || a.Code != b.Code || a.Header().Get("Content-Type") != b.Header().Get("Content-Type") {
			t.Fatalf("writeSeqs %d %q, writeJSON %d %q", a.Code, a.Body, b.Code, b.Body)
		}
	}
}

// TestIngestRedacted: ingest hands the records it decoded to the engine's
// redactor to rewrite in place (Engine.PrepareOwned); each event of a
// request is redacted on its own, with its own counts, and the answer and
// the stored records are as with a copying redactor.
func TestIngestRedacted(t *testing.T) {
	rd, err := redact.New(redact.Config{}, redact.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store := newTestStoreOpts(t, func(o *engine.Options) { o.Redactor = rd })
	e := newTestServer(t, store, nil)
	ev := `{"tenant_id":"acme","action":"tool.call","attributes":{"contact":"jane.doe@example.com","n":"%d"},` +
		`"outcome":{"status":"failure","reason":"mailed bob@example.org and carol@example.net"}}`
	seqs := e.ingest(ingestToken, fmt.Sprintf(ev, 1), fmt.Sprintf(ev, 2))
	for i, seq := range seqs {
		status, body, _ := e.do("GET", fmt.Sprintf("/v1/audit/%d", seq), auditToken, nil)
		if status != http.StatusOK {
			t.Fatalf("GET %d: %d %s", seq, status, body)
		}
		if bytes.Contains(body, []byte("@example.")) {
			t.Fatalf("record %d kept an e-mail address: %s", i, body)
		}
		var r vellum.Record
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		if r.Attributes["n"] != fmt.Sprint(i+1) || r.Attributes[ReservedAttrPrefix+"principal"] != "agent" {
			t.Fatalf("record %d attributes %v", i, r.Attributes)
		}
		counts := map[string]uint32{}
		for _, x := range r.Redactions {
			counts[x.Field] += x.Count
		}
		if counts["attributes.contact"] != 1 || counts["outcome.reason"] != 2 || len(counts) != 2 {
			t.Fatalf("record %d redactions %+v", i, r.Redactions)
		}
	}
}

// TestIngestBodyReuse: the buffer of a successful request's body is
// reused by later requests (releaseBody); every record, and the postings
// its user_id was indexed under, must still read back as it was sent.
func TestIngestBodyReuse(t *testing.T) {
	e := newTestServer(t, nil, nil)
	const n = 40
	user := func(i int) string { return fmt.Sprintf("u%d-%s", i, strings.Repeat("x", (n-i)*7)) }
	for i := range n {
		e.ingest(ingestToken, event("tenant_id", "acme", "user_id", user(i), "event_id", fmt.Sprintf("ev-%d", i),
			"tool", fmt.Sprintf("tool-%d-%s", i, strings.Repeat("t", i*5))))
	}
	res := e.list(adminToken, fmt.Sprintf("tenant_id=acme&limit=%d", n))
	if len(res.Records) != n {
		t.Fatalf("%d records, want %d", len(res.Records), n)
	}
	for i, r := range res.Records {
		if r.UserID != user(i) || r.EventID != fmt.Sprintf("ev-%d", i) || r.Tool.Name != fmt.Sprintf("tool-%d-%s", i, strings.Repeat("t", i*5)) {
			t.Fatalf("record %d: user %q event %q tool %q", i, r.UserID, r.EventID, r.Tool.Name)
		}
	}
	for _, i := range []int{0, n / 2, n - 1} {
		if got := e.list(adminToken, "user_id="+user(i)); len(got.Records) != 1 || got.Records[0].UserID != user(i) {
			t.Fatalf("user_id=%s: %d records", user(i), len(got.Records))
		}
	}
}

// TestIngestScratchReuse: a successful request's records, their arena and
// attribute maps are reused by later requests (scratch.go). Batches of
// several sizes, with and without attributes, from two principals, with a
// redactor rewriting the records in place and refused requests between
// them, must each read back exactly as sent, with their own principal.
func TestIngestScratchReuse(t *testing.T) {
	rd, err := redact.New(redact.Config{}, redact.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store := newTestStoreOpts(t, func(o *engine.Options) { o.Redactor = rd })
	e := newTestServer(t, store, nil)
	type sent struct {
		user, tool, principal string
		attrs                 map[string]string
	}
	var want []sent
	n := 0
	// Each batch's later half has attributes: the next request's first
	// events, without any, take the maps its last events left (LIFO).
	for round, size := range []int{3, 40, 1, 17, 40, 2, 40, 3, 30, 1, 25, 4} {
		token, principal := ingestToken, "agent"
		if round%2 == 1 {
			token, principal = acmeIngest, "acme-agent"
		}
		evs := make([]string, size)
		for i := range evs {
			s := sent{user: fmt.Sprintf("u%d-%s", n, strings.Repeat("x", (n*7)%50)), tool: fmt.Sprintf("tool-%d", n), principal: principal}
			ev := map[string]any{"tenant_id": "acme", "user_id": s.user, "event_id": fmt.Sprintf("ev-%d", n),
				"action": "tool.call", "tool": map[string]any{"name": s.tool}, "outcome": map[string]any{"status": "success"}}
			if i >= size/2 {
				s.attrs = map[string]string{"n": fmt.Sprint(n)}
				for k := range n % 5 {
					s.attrs[fmt.Sprintf("k%d", k)] = strings.Repeat("v", k+n%4)
				}
				ev["attributes"] = s.attrs
			}
			b, _ := json.Marshal(ev)
			evs[i] = string(b)
			want = append(want, s)
			n++
		}
		e.ingest(token, evs...)
		// A refused request between: its scratch is not reused.
		bad := "[" + evs[0] + `,{"action":"a","outcome":{"status":"success"},"attributes":{"vellum.principal":"x"}}]`
		if status, body, _ := e.do("POST", "/v1/audit/events", token, []byte(bad)); status != http.StatusBadRequest {
			t.Fatalf("refused request: %d %s", status, body)
		}
	}
	res := e.list(adminToken, fmt.Sprintf("tenant_id=acme&limit=%d", n+1))
	if len(res.Records) != n {
		t.Fatalf("%d records, want %d", len(res.Records), n)
	}
	for i, r := range res.Records {
		s := want[i]
		wantAttrs := map[string]string{ReservedAttrPrefix + "principal": s.principal}
		for k, v := range s.attrs {
			wantAttrs[k] = v
		}
		if r.UserID != s.user || r.Tool.Name != s.tool || r.EventID != fmt.Sprintf("ev-%d", i) || !reflect.DeepEqual(r.Attributes, wantAttrs) {
			t.Fatalf("record %d: user %q tool %q event %q attributes %v; want %+v", i, r.UserID, r.Tool.Name, r.EventID, r.Attributes, s)
		}
	}
}

// TestScratchReset: what a scratch gives the next request after reset is
// empty — attribute maps without the last request's entries, zero records
// — and decoding into it gives the records a fresh decode gives.
func TestScratchReset(t *testing.T) {
	body := []byte(`[{"action":"a","outcome":{"status":"success"},"attributes":{"k":"v","z":"w"}},{"action":"b","outcome":{"status":"success"}}]`)
	opts := DecodeOptions{MaxEvents: 10, MaxRecordSize: 4096}
	want, err := decodeEvents(body, opts, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	sc := new(ingestScratch)
	for round := range 3 {
		var starts []int
		recs, err := decodeEventsInto(sc, body, opts, &starts, false)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(recs, want) || !reflect.DeepEqual(starts, []int{1, 78}) {
			t.Fatalf("round %d: %+v %v", round, recs, starts)
		}
		for i := range recs {
			if recs[i].Attributes == nil {
				recs[i].Attributes = sc.attrs()
			}
			recs[i].Attributes[ReservedAttrPrefix+"principal"] = "p"
		}
		sc.reset(recs, starts)
		if len(sc.maps) != 2 || cap(sc.recs) < 2 || len(sc.starts) != 0 {
			t.Fatalf("round %d: scratch kept %d maps, records cap %d, starts %v", round, len(sc.maps), cap(sc.recs), sc.starts)
		}
		for _, m := range sc.maps {
			if len(m) != 0 {
				t.Fatalf("round %d: a kept map has %v", round, m)
			}
		}
		for _, r := range sc.recs[:cap(sc.recs)] {
			if !reflect.DeepEqual(r, vellum.Record{}) {
				t.Fatalf("round %d: a kept record is %+v", round, r)
			}
		}
	}
}

// TestIngestScratchConcurrent: requests posted at once share the pool of
// scratches (run with -race); every record reads back as its client sent
// it, with its own attributes.
func TestIngestScratchConcurrent(t *testing.T) {
	e := newTestServer(t, nil, nil)
	const clients, requests, size = 6, 15, 7
	errs := make(chan error, clients)
	for c := range clients {
		go func() {
			errs <- func() error {
				for r := range requests {
					evs := make([]string, size)
					for i := range evs {
						ev := map[string]any{"tenant_id": "acme", "user_id": fmt.Sprintf("c%d-r%d-i%d", c, r, i),
							"action": "tool.call", "outcome": map[string]any{"status": "success"}}
						if i%2 == 1 {
							ev["attributes"] = map[string]string{"who": fmt.Sprintf("c%d-r%d-i%d", c, r, i), fmt.Sprintf("k%d", i): "v"}
						}
						b, _ := json.Marshal(ev)
						evs[i] = string(b)
					}
					req, err := http.NewRequest("POST", e.base+"/v1/audit/events", strings.NewReader("["+strings.Join(evs, ",")+"]"))
					if err != nil {
						return err
					}
					req.Header.Set("Authorization", "Bearer "+ingestToken)
					res, err := http.DefaultClient.Do(req)
					if err != nil {
						return err
					}
					body, _ := io.ReadAll(res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						return fmt.Errorf("client %d request %d: %d %s", c, r, res.StatusCode, body)
					}
				}
				return nil
			}()
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	const n = clients * requests * size
	res := e.list(adminToken, fmt.Sprintf("tenant_id=acme&limit=%d", n+1))
	if len(res.Records) != n {
		t.Fatalf("%d records, want %d", len(res.Records), n)
	}
	seen := map[string]bool{}
	for _, r := range res.Records {
		var c, q, i int
		if _, err := fmt.Sscanf(r.UserID, "c%d-r%d-i%d", &c, &q, &i); err != nil || seen[r.UserID] {
			t.Fatalf("user_id %q (seen before: %v, %v)", r.UserID, seen[r.UserID], err)
		}
		seen[r.UserID] = true
		want := map[string]string{ReservedAttrPrefix + "principal": "agent"}
		if i%2 == 1 {
			want["who"], want[fmt.Sprintf("k%d", i)] = r.UserID, "v"
		}
		if !reflect.DeepEqual(r.Attributes, want) {
			t.Fatalf("record %d (%s): attributes %v, want %v", r.Seq, r.UserID, r.Attributes, want)
		}
	}
}
