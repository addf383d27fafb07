package vellum

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fullRecord sets every field to a distinct non-zero value.
func fullRecord() Record {
	return Record{
		Seq:       42,
		Time:      time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC),
		EventID:   "e-1",
		EventTime: time.Date(2026, 11, 27, 9, 59, 59, 1, time.UTC),
		TenantID:  "acme",
		UserID:    "alice",
		Service:   "billing-svc",
		AuthMode:  "gateway",
		Action:    "tool.call",
		Tool: Tool{
			Name: "web_search", CallID: "call_1",
			Arguments: json.RawMessage(`{"query":"weather in Paris"}`),
			IsError:   true, DurationNS: 1500000,
		},
		Model: Model{Name: "granite-3.3-8b", Provider: "vllm", FinishReason: "tool_calls", InputTokens: 812, OutputTokens: 33},
		Agent: "support-bot", SessionID: "s-1", TraceID: "trace_0123456789abcdef", RequestID: "req-9",
		Outcome:    Outcome{Status: StatusDenied, Reason: "policy", RuleID: "r-7", Approver: "bob", Mode: "enforce"},
		Attributes: map[string]string{"b": "2", "a": "1", "région": "ïle"},
		Redactions: []Redaction{{Rule: "EMAIL", Field: "tool.arguments.to", Count: 2}, {Rule: "PHONE", Field: "outcome.reason", Count: 1}},
	}
}

func TestBinaryRoundTripEveryField(t *testing.T) {
	tests := []struct {
		name string
		rec  Record
	}{
		{"full", fullRecord()},
		{"minimal", Record{Seq: 1, Action: "request.start", Outcome: Outcome{Status: StatusSuccess}}},
		{"zero times", Record{Seq: 7, Action: "a", Outcome: Outcome{Status: StatusPending}}},
		{"max values", Record{Seq: ^uint64(0), Action: "x", Tool: Tool{DurationNS: 1<<63 - 1}, Model: Model{InputTokens: ^uint64(0)}, Outcome: Outcome{Status: "blocked"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.rec.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var got Record
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.rec) {
				t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, tt.rec)
			}
			b2, _ := got.MarshalBinary()
			if !bytes.Equal(b, b2) {
				t.Fatal("re-encoding differs from the original bytes")
			}
		})
	}
}

func TestBinaryDeterministicAttributeOrder(t *testing.T) {
	r := fullRecord()
	first, _ := r.MarshalBinary()
	for i := 0; i < 50; i++ {
		r.Attributes = map[string]string{"région": "ïle", "a": "1", "b": "2"}
		b, _ := r.MarshalBinary()
		if !bytes.Equal(b, first) {
			t.Fatal("encoding depends on map iteration order")
		}
	}
}

// TestBinaryGolden pins the exact bytes of version 1 so that an accidental
// format change fails here. The hex is the one documented in FORMAT.md.
func TestBinaryGolden(t *testing.T) {
	r := Record{Seq: 1, Time: time.Unix(0, 1).UTC(), Action: "a.b", Outcome: Outcome{Status: "success"}}
	b, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	const want = "01" + "0100000000000000" + "0100000000000000" + "0000000000000000" + "00" + // version, seq, time, event time, flags
		"0000000000" + "03612e62" + // event_id..auth_mode empty, action "a.b"
		"000000000000" + "00" + // agent..tool.call_id empty, arguments empty
		"000000" + "0773756363657373" + "00000000" + // model empty, status "success", reason..mode empty
		"000000" + "00" + "00" // duration, tokens, no attributes, no redactions
	if got := hexs(b); got != want {
		t.Fatalf("golden bytes changed:\n got %s\nwant %s", got, want)
	}
}

func hexs(b []byte) string {
	const digits = "0123456789abcdef"
	var sb strings.Builder
	for _, c := range b {
		sb.WriteByte(digits[c>>4])
		sb.WriteByte(digits[c&15])
	}
	return sb.String()
}

func TestUnmarshalRejectsNonCanonical(t *testing.T) {
	good, _ := (&Record{Seq: 1, Action: "a", Outcome: Outcome{Status: "success"}, Attributes: map[string]string{"k": "v", "l": "w"}}).MarshalBinary()
	tests := []struct {
		name    string
		mutate  func([]byte) []byte
		wantErr error
	}{
		{"short", func(b []byte) []byte { return b[:10] }, ErrCorrupt},
		{"version", func(b []byte) []byte { b[0] = 2; return b }, ErrVersion},
		{"trailing", func(b []byte) []byte { return append(b, 0) }, ErrCorrupt},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }, ErrCorrupt},
		{"flags", func(b []byte) []byte { b[25] = 0x80; return b }, ErrCorrupt},
		{"huge length", func(b []byte) []byte { return append(b[:fixedLen:fixedLen], 0xff, 0xff, 0xff, 0xff, 0x0f) }, ErrCorrupt},
		{"non-minimal varint", func(b []byte) []byte { return append(append(b[:fixedLen:fixedLen], 0x80, 0x00), b[fixedLen+1:]...) }, ErrCorrupt},
		{"keys out of order", func(b []byte) []byte {
			i := bytes.Index(b, []byte("\x01k\x01v\x01l\x01w"))
			copy(b[i:], "\x01l\x01w\x01k\x01v")
			return b
		}, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.mutate(bytes.Clone(good))
			var r Record
			err := r.UnmarshalBinary(b)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestJSONSnakeCase(t *testing.T) {
	r := fullRecord()
	r.KeyID = "00112233aabbccdd"
	r.MAC[0] = 0xab
	b, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"seq":42`, `"time":"2026-11-27T10:00:00.123456789Z"`, `"event_id":"e-1"`, `"tenant_id":"acme"`,
		`"user_id":"alice"`, `"session_id":"s-1"`, `"trace_id":`, `"call_id":"call_1"`, `"arguments":{"query":"weather in Paris"}`,
		`"finish_reason":"tool_calls"`, `"rule_id":"r-7"`, `"key_id":"00112233aabbccdd"`, `"mac":"ab00`, `"redactions":[{"rule":"EMAIL"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s: %s", key, b)
		}
	}
	var back Record
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, r) {
		t.Fatalf("JSON round trip differs:\n got %+v\nwant %+v", back, r)
	}
	// Optional groups vanish when empty.
	min, _ := json.Marshal(&Record{Action: "a", Outcome: Outcome{Status: "success"}})
	for _, absent := range []string{"tool", "model", "prev_mac", "event_time", "attributes"} {
		if strings.Contains(string(min), `"`+absent+`"`) {
			t.Errorf("empty %s present in %s", absent, min)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Record{Action: "approval.granted", Outcome: Outcome{Status: StatusApproved}}
	tests := []struct {
		name  string
		edit  func(*Record)
		field string // substring the error must name; "" means valid
	}{
		{"valid", func(*Record) {}, ""},
		{"no action", func(r *Record) { r.Action = "" }, "action is required"},
		{"upper action", func(r *Record) { r.Action = "Tool.Call" }, "action"},
		{"empty segment", func(r *Record) { r.Action = "tool..call" }, "empty segment"},
		{"trailing dot", func(r *Record) { r.Action = "tool." }, "ends with a dot"},
		{"no status", func(r *Record) { r.Outcome.Status = "" }, "outcome.status is required"},
		{"bad status", func(r *Record) { r.Outcome.Status = "ok" }, `outcome.status "ok"`},
		{"bad mode", func(r *Record) { r.Outcome.Mode = "x" }, "outcome.mode"},
		{"bad utf8", func(r *Record) { r.UserID = "\xff" }, "user_id is not valid UTF-8"},
		{"long id", func(r *Record) { r.TenantID = strings.Repeat("t", MaxIDLen+1) }, "tenant_id is longer"},
		{"bad args", func(r *Record) { r.Tool.Arguments = json.RawMessage(`{"a":`) }, "tool.arguments"},
		{"negative duration", func(r *Record) { r.Tool.DurationNS = -1 }, "duration"},
		{"event time range", func(r *Record) { r.EventTime = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) }, "event_time"},
		{"empty attr key", func(r *Record) { r.Attributes = map[string]string{"": "v"} }, "empty key"},
		// Validate checks all fields at once while they are ASCII, and
		// one by one otherwise: both ways must name the same field.
		{"non-ascii utf8", func(r *Record) {
			r.UserID, r.Outcome.Reason, r.Model.FinishReason = "jürgen", "größer ✓", "stop ✓"
		}, ""},
		{"bad utf8 past 8 bytes", func(r *Record) { r.TraceID = "0123456789abcdef\xc3" }, "trace_id is not valid UTF-8"},
		{"bad utf8 last id", func(r *Record) { r.Outcome.Approver = "ok\xffok" }, "outcome.approver is not valid UTF-8"},
		{"first of two bad", func(r *Record) { r.UserID, r.Agent = "é\xff", strings.Repeat("a", MaxIDLen+1) }, "user_id is not valid UTF-8"},
		{"long before bad", func(r *Record) { r.TenantID, r.Agent = strings.Repeat("é", MaxIDLen), "\xff" }, "tenant_id is longer"},
		{"bad finish reason", func(r *Record) { r.Model.FinishReason = "\xfe" }, "model.finish_reason"},
		{"bad reason", func(r *Record) { r.Outcome.Reason = "abcdefgh\x80" }, "outcome.reason"},
		{"bad attr value", func(r *Record) { r.Attributes = map[string]string{"k": "\xff"} }, "attributes.k is not valid UTF-8"},
		{"bad attr before empty key", func(r *Record) { r.Attributes = map[string]string{"": "v", "k": "\xff"} }, "attributes.k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.edit(&r)
			err := r.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("err = %v, want ErrInvalid naming %q", err, tt.field)
			}
		})
	}
}

func TestPeekFields(t *testing.T) {
	r := fullRecord()
	b, _ := r.MarshalBinary()
	var f Fields
	if err := PeekFields(b, &f); err != nil {
		t.Fatal(err)
	}
	got := []string{string(f.EventID), string(f.TenantID), string(f.UserID), string(f.Action), string(f.SessionID), string(f.TraceID), string(f.Tool), string(f.Model), string(f.Status)}
	want := []string{r.EventID, r.TenantID, r.UserID, r.Action, r.SessionID, r.TraceID, r.Tool.Name, r.Model.Name, r.Outcome.Status}
	if !reflect.DeepEqual(got, want) || f.Seq != r.Seq || f.Time != r.Time.UnixNano() {
		t.Fatalf("got %q, want %q", got, want)
	}
	for cut := 0; cut < len(b)-10; cut++ {
		PeekFields(b[:cut], &f) // must not panic
	}
	if allocs := testing.AllocsPerRun(100, func() { PeekFields(b, &f) }); allocs != 0 {
		t.Fatalf("%v allocations", allocs)
	}
}

func TestEncodedSize(t *testing.T) {
	for _, r := range []Record{fullRecord(), {}, {Seq: 1, Tool: Tool{DurationNS: 1 << 40}, Attributes: map[string]string{strings.Repeat("k", 200): strings.Repeat("v", 300)}}} {
		b, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if got := r.EncodedSize(); got != len(b) {
			t.Fatalf("EncodedSize = %d, encoding is %d bytes", got, len(b))
		}
	}
	// Each string field in turn with a length at a varint size's edge
	// (one byte up to 127, two from 128 and up to 16383, three from
	// 16384), the others short: EncodedSize sums lengths without varint
	// sizes only while every length is under 128.
	for _, n := range []int{0, 1, 127, 128, 16383, 16384} {
		for i := range 21 {
			r := fullRecord()
			v := strings.Repeat("x", n)
			*[...]*string{&r.EventID, &r.TenantID, &r.UserID, &r.Service, &r.AuthMode, &r.Action, &r.Agent, &r.SessionID,
				&r.TraceID, &r.RequestID, &r.Tool.Name, &r.Tool.CallID, &r.Model.Name, &r.Model.Provider, &r.Model.FinishReason,
				&r.Outcome.Status, &r.Outcome.Reason, &r.Outcome.RuleID, &r.Outcome.Approver, &r.Outcome.Mode, new(string)}[i] = v
			if i == 20 {
				r.Tool.Arguments = json.RawMessage(`"` + strings.Repeat("x", max(n-2, 0)) + `"`)
			}
			b, err := r.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if got := r.EncodedSize(); got != len(b) {
				t.Fatalf("field %d of %d bytes: EncodedSize = %d, encoding is %d bytes", i, n, got, len(b))
			}
		}
	}
}

func TestUvarintLen(t *testing.T) {
	for _, v := range []uint64{0, 1, 0x7f, 0x80, 0x3fff, 0x4000, 1<<21 - 1, 1 << 21, 1<<63 - 1, 1 << 63, math.MaxUint64} {
		if got, want := uvarintLen(v), len(binary.AppendUvarint(nil, v)); got != want {
			t.Errorf("uvarintLen(%#x) = %d, want %d", v, got, want)
		}
	}
}

// TestHighBits: highBits finds a byte >= 0x80 at every position of strings
// of every length up to 40 (it reads words, the last overlapping), and
// none in ASCII.
func TestHighBits(t *testing.T) {
	for n := 0; n <= 40; n++ {
		b := bytes.Repeat([]byte{0x7f}, n)
		if highBits([]string{string(b)}) != 0 {
			t.Fatalf("highBits of %d ASCII bytes is not zero", n)
		}
		for i := range n {
			b[i] = 0x80
			if highBits([]string{"", string(b), "x"}) == 0 {
				t.Fatalf("highBits misses byte %d of %d", i, n)
			}
			b[i] = 0x7f
		}
	}
}

// TestStampEncoded: a record encoded before its seq and time are known and
// stamped afterwards is byte for byte the record encoded with them.
func TestStampEncoded(t *testing.T) {
	r := fullRecord()
	want, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	r.Seq, r.Time = 0, time.Time{}
	enc, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	StampEncoded(enc, 42, fullRecord().Time.UnixNano())
	if !bytes.Equal(enc, want) {
		t.Fatalf("stamped encoding differs:\n got %x\nwant %x", enc, want)
	}
	if seq, tm, err := DecodeSeqTime(enc); err != nil || seq != 42 || tm != fullRecord().Time.UnixNano() {
		t.Fatalf("DecodeSeqTime = %d, %d, %v", seq, tm, err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("stamping a too short encoding did not panic")
		}
	}()
	StampEncoded(enc[:fixedLen-1], 1, 1)
}

// BenchmarkValidate validates a typical tool-call record: ASCII
// identifiers, a small JSON argument object, no attributes.
func BenchmarkValidate(b *testing.B) {
	r := Record{
		EventID: "evt-00000000deadbeef", TenantID: "acme", UserID: "user-0042", AuthMode: "gateway",
		Action: "tool.call", Agent: "support-bot", SessionID: "sess-0badf00d", TraceID: "trace_0123456789abcdef",
		RequestID: "req-00c0ffee",
		Tool: Tool{Name: "web_search", CallID: "call_12345",
			Arguments: json.RawMessage(`{"query":"weather in Lisbon for day 42","max_results":7,"lang":"en"}`)},
		Model:   Model{Name: "llama-3.1-70b", Provider: "vllm", InputTokens: 1200, OutputTokens: 80},
		Outcome: Outcome{Status: StatusSuccess},
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStatusBit: bit i is Statuses[i]'s, as summaries on disk hold them,
// and anything else has none.
func TestStatusBit(t *testing.T) {
	for i, s := range Statuses {
		if got := StatusBit(s); got != 1<<i || !ValidStatus(s) {
			t.Errorf("StatusBit(%q) = %#x, want %#x", s, got, 1<<i)
		}
	}
	for _, s := range []string{"", "Success", "succes", "successs", "deny", "blocked "} {
		if StatusBit(s) != 0 || ValidStatus(s) {
			t.Errorf("%q is a status", s)
		}
	}
}
