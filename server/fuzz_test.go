package server

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/engine"
)

// FuzzDecodeIngest feeds arbitrary bodies to the ingest path: the decoder,
// then the store's Prepare (validation, encoding, the size limit), as the
// handler runs them. It must never panic; a rejection must be an
// *EventError of a known kind; every accepted record must be valid, carry
// nothing the store assigns, and survive being written back as an event
// and decoded again.
func FuzzDecodeIngest(f *testing.F) {
	f.Add([]byte("["+issueEvent+"]"), false)
	f.Add([]byte(issueEvent+"\n"+minEvent+"\n"), true)
	f.Add([]byte("["+everyField+","+minEvent+"]"), false)
	f.Add([]byte(`{"action":"a","outcome":{"status":"success"},"seq":1}`), false)
	f.Add([]byte(`[{"action":"a",`), false)
	store := newTestStoreOpts(f, func(o *engine.Options) { o.MaxRecordSize = 4096 })
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		var starts []int
		recs, err := decodeEvents(body, DecodeOptions{NDJSON: ndjson, MaxEvents: 50}, &starts, false)
		if err == nil && len(recs) > 0 {
			if _, perr := store.(preparer).Prepare(recs...); perr != nil {
				recs, err = nil, recordError(body, starts, perr)
			}
		}
		if err != nil {
			var ee *EventError
			if !errors.As(err, &ee) || ee.Index < -1 || ee.Line < 0 || ee.Reason == "" {
				t.Fatalf("error %#v is not a well-formed EventError", err)
			}
			if !errors.Is(err, ErrBadEvent) && !errors.Is(err, ErrTooManyEvents) && !errors.Is(err, ErrEventTooLarge) {
				t.Fatalf("error %v wraps no known sentinel", err)
			}
			return
		}
		if len(recs) > 50 {
			t.Fatalf("%d records over the limit", len(recs))
		}
		if len(recs) == 0 {
			return
		}
		var again bytes.Buffer
		for i := range recs {
			r := &recs[i]
			if err := r.Validate(); err != nil {
				t.Fatalf("accepted an invalid record: %v", err)
			}
			if r.Seq != 0 || !r.Time.IsZero() || r.KeyID != "" || !r.MAC.IsZero() || !r.PrevMAC.IsZero() || r.Redactions != nil {
				t.Fatalf("accepted a store-assigned field: %+v", r)
			}
			for k := range r.Attributes {
				if strings.HasPrefix(k, ReservedAttrPrefix) {
					t.Fatalf("accepted reserved attribute %q", k)
				}
			}
			again.Write(eventJSON(t, r))
			again.WriteByte('\n')
		}
		back, err := DecodeEvents(again.Bytes(), DecodeOptions{NDJSON: true, MaxEvents: 50})
		if err != nil {
			t.Fatalf("re-encoded events rejected: %v\n%s", err, again.Bytes())
		}
		for i := range recs {
			a, b := recs[i], back[i]
			a.Tool.Arguments, b.Tool.Arguments = compactJSON(a.Tool.Arguments), compactJSON(b.Tool.Arguments)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("record %d changed in a round trip:\n%+v\n%+v", i, a, b)
			}
		}
	})
}

// eventJSON writes r as an ingest event: the record's JSON form with the
// event time as "time" and without what the store assigns.
func eventJSON(t testing.TB, r *vellum.Record) []byte {
	t.Helper()
	c := *r
	c.Seq, c.Time, c.EventTime = 0, time.Time{}, time.Time{}
	b, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "seq")
	delete(m, "time")
	if !r.EventTime.IsZero() {
		m["time"], _ = json.Marshal(r.EventTime.Format(time.RFC3339Nano))
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// compactJSON normalizes JSON text for comparison: json.Marshal escapes
// HTML characters in raw messages, so both sides go through it.
func compactJSON(b []byte) json.RawMessage {
	if b == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return b
	}
	out, err := json.Marshal(v)
	if err != nil {
		return b
	}
	return out
}

// FuzzDecodeEventsDifferential holds DecodeEvents to the decoder it
// replaced (oracleDecodeEvents, built on encoding/json's Decoder.Token):
// the same bodies accepted, with the same records, and the same bodies
// rejected, for the same kind of reason. It shares FuzzDecodeIngest's seed
// corpus shapes and adds the edge cases of the JSON syntax.
func FuzzDecodeEventsDifferential(f *testing.F) {
	for _, s := range []string{
		"[" + issueEvent + "]", issueEvent + "\n" + minEvent + "\n", "[" + everyField + "," + minEvent + "]",
		`{"action":"a","outcome":{"status":"success"},"seq":1}`, `[{"action":"a",`, `[{"action":"a","outcome":{"status":"success"}}] x`,
		`{"act\u0069on":"a","outcome":{"status":"success"},"attributes":{"k\u00e9":"\ud800","k":null}}`,
		"{\"action\":\"a\",\"outcome\":{\"status\":\"success\"},\"user_id\":\"\xff\xfe\"}{\"action\":\"b\",\"outcome\":{\"status\":\"success\"}}",
		`{"action":"a","outcome":{"status":"success"},"tool":{"duration_ns":-9223372036854775808,"arguments":{"a":1,"a":[1e5,-0.5]}}}`,
		`{"action":"a","outcome":{"status":"success"},"model":{"input_tokens":18446744073709551615,"output_tokens":1e2}}`,
		`{"action":"a","outcome":{"status":"success"},"time":"2026-11-27T10:00:00.5-07:00","tool":{"is_error":false}}`,
		`[{"action":"a","outcome":{"status":"success"}},]`, `[,]`, `[]`, `{}`, `[{}]`, ` `, `null`, `["x"]`, `{"tool":}`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		opts := DecodeOptions{NDJSON: ndjson, MaxEvents: 50, MaxRecordSize: 4096}
		got, gotErr := DecodeEvents(body, opts)
		want, wantErr := oracleDecodeEvents(body, opts)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("DecodeEvents: %v\noracle: %v", gotErr, wantErr)
		}
		if gotErr != nil {
			for _, s := range []error{ErrBadEvent, ErrTooManyEvents, ErrEventTooLarge} {
				if errors.Is(gotErr, s) != errors.Is(wantErr, s) {
					t.Fatalf("DecodeEvents: %v\noracle: %v", gotErr, wantErr)
				}
			}
			var g, w *EventError
			if !errors.As(gotErr, &g) || !errors.As(wantErr, &w) || g.Index != w.Index {
				t.Fatalf("DecodeEvents: %v\noracle: %v", gotErr, wantErr)
			}
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("records differ:\n got %+v\nwant %+v", got, want)
		}
	})
}

// FuzzFastDecode holds the hand-written fast path (fastdecode.go) to the
// jsontext path: whatever body the fast path accepts, jsontext accepts
// too, with the same records and the same event offsets. (Bodies the fast
// path leaves go to jsontext, so DecodeEvents' errors are jsontext's:
// FuzzDecodeEventsDifferential holds those to the old decoder.)
func FuzzFastDecode(f *testing.F) {
	benchBodyString := func(n int) string { return string(benchBody(f, n)) }
	for _, s := range []string{
		benchBodyString(3), "[" + issueEvent + "]", issueEvent + "\n" + minEvent + "\n", "[" + everyField + "," + minEvent + "]",
		`{"action":"a","outcome":{"status":"success"},"tool":{"duration_ns":-0,"is_error":true,"arguments":[1.5e-3,{"a":"\n\"","a":[]},null,true]}}`,
		`[{"action":"a","outcome":{"status":"success"},"attributes":{"":"","k":"v"},"model":{"input_tokens":0,"output_tokens":18446744073709551615}}]`,
		`{"action":"a","time":"2026-11-27T10:00:00.5-07:00"} {"action":"b"}`, `{"action":"a"}{"action":"b"}`, `[{"action":"a"} ]  `,
		`[{"action":"a","tool":{"arguments":01}}]`, `[{"action":"a","model":{"input_tokens":1.0}}]`, "[{\"action\":\"a\x7f\"}]",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		// Half the bodies (by their length) run with DecodeEvents' checks.
		check := len(body)%2 == 0
		opts := DecodeOptions{NDJSON: ndjson, MaxEvents: 50, MaxRecordSize: 4096}
		var fastStarts, slowStarts []int
		got, ok := fastDecodeEvents(body, opts, &fastStarts, check)
		// The same through a scratch that earlier requests used and
		// released (scratch.go): one with every field and attributes,
		// then this body itself.
		sc := new(ingestScratch)
		for i, b := range [][]byte{[]byte("[" + strings.Replace(everyField, `"région":"ïle"`, `"r":"ile"`, 1) + "," + issueEvent + "]"), body, body} {
			var st []int
			o := opts
			if i == 0 {
				o = DecodeOptions{MaxEvents: 50, MaxRecordSize: 4096}
			}
			recs, ok2 := fastDecodeInto(sc, b, o, &st, check && i > 0)
			if i == 0 && !ok2 {
				t.Fatal("the fast path refused the scratch's first body")
			}
			if i > 0 && (ok2 != ok || !reflect.DeepEqual(recs, got) || ok && !reflect.DeepEqual(st, fastStarts)) {
				t.Fatalf("decoding into a used scratch: ok %v, want %v; records or offsets differ:\n got %+v %v\nwant %+v %v", ok2, ok, recs, st, got, fastStarts)
			}
			sc.reset(recs, st)
		}
		if !ok {
			return
		}
		want, err := slowDecodeEvents(body, opts, &slowStarts, check)
		if err != nil {
			t.Fatalf("the fast path accepted what jsontext refuses: %v", err)
		}
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(fastStarts, slowStarts) {
			t.Fatalf("records or offsets differ:\n got %+v %v\nwant %+v %v", got, fastStarts, want, slowStarts)
		}
	})
}

// FuzzPlainLen holds plainLen, the fast path's one-pass string scan, to
// what it replaced: the first quote (bytes.IndexByte), when every byte
// before it is plain (plainASCII, eight bytes at a time).
func FuzzPlainLen(f *testing.F) {
	for _, s := range []string{`abc"`, `abcdefgh"`, `abcdefghijklmnop"x`, `a\"`, "abcdefg\x80\"", "ab\x1fcdefghij\"", `""`, `abcdefgh`,
		"\"\x00\x80\\", "abcdefgh\\\"", "0123456\"\\", "\x7f\x20!#$%&'()*+,-./\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		want := bytes.IndexByte(s, '"')
		if want >= 0 && !plainASCII(s[:want]) {
			want = -1
		}
		if got := plainLen(s); got != want {
			t.Fatalf("plainLen(%q) = %d, want %d", s, got, want)
		}
	})
}

// plainASCII reports whether s holds only bytes 0x20-0x7F other than the
// backslash (a JSON string's contents that are their own value), eight
// bytes at a time: the fast path's check before plainLen.
func plainASCII(s []byte) bool {
	const (
		lo = 0x0101010101010101
		hi = 0x8080808080808080
		bs = 0x5c5c5c5c5c5c5c5c // backslashes
		sp = 0x2020202020202020 // below this: control bytes
	)
	for len(s) >= 8 {
		w := binary.LittleEndian.Uint64(s)
		x := w ^ bs // zero bytes where s has a backslash
		// A byte is flagged when its high bit is set, when it is zero in
		// x, or when it is below 0x20 (the borrow of w-sp sets its high
		// bit while w's is clear).
		if (w|((x-lo)&^x)|((w-sp)&^w))&hi != 0 {
			return false
		}
		s = s[8:]
	}
	for _, c := range s {
		if c < 0x20 || c == '\\' || c >= 0x80 {
			return false
		}
	}
	return true
}
