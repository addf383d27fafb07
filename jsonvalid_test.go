package vellum

import (
	"encoding/json"
	"strings"
	"testing"
)

var jsonCases = []string{
	`{}`, `[]`, `{"a":1}`, ` {"a" : [1, 2.5, -3e10, 0, -0.0e+1, true, false, null, "x\n\u00e9\""]} `,
	`"\ud83d\ude00"`, `0`, `-`, `01`, `1.`, `.5`, `1e`, `1e+`, `{"a"}`, `{"a":}`, `{,}`, `[1,]`, `[,1]`,
	`{"a":1,}`, `"abc`, `"\x"`, `"\u12"`, "\"\x01\"", `tru`, `nul`, `truex`, `{} {}`, ``, ` `, `[`, `]`,
	`{"a":{"b":{"c":[[[]]]}}}`, "\"\xff\"", `{"query":"weather in Paris","max_results":3}`,
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001), strings.Repeat("[", 9999) + strings.Repeat("]", 9999),
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000), strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000),
	`"\ud800"`, `"\udc00x"`, `"\ud83d\u0041"`, `{"a":1,"a":2}`, "\"\xed\xa0\x80\"", "\"\xc3\"", `[1 2]`, `{"a":1}x`, "\x00", `1 `,
}

func TestValidJSONMatchesEncodingJSON(t *testing.T) {
	for _, c := range jsonCases {
		if got, want := validJSON([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("validJSON(%.40q) = %v, json.Valid says %v", c, got, want)
		}
	}
}

// FuzzValidJSON holds validJSON to encoding/json.Valid on arbitrary input.
func FuzzValidJSON(f *testing.F) {
	for _, c := range jsonCases {
		if len(c) < 200 {
			f.Add([]byte(c))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", b, got, want)
		}
	})
}

func BenchmarkValidJSON(b *testing.B) {
	args := []byte(`{"query":"weather in Paris for day 120","max_results":17,"lang":"en"}`)
	b.Run("impl=validJSON", func(b *testing.B) {
		b.SetBytes(int64(len(args)))
		for b.Loop() {
			validJSON(args)
		}
	})
	b.Run("impl=encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(args)))
		for b.Loop() {
			json.Valid(args)
		}
	})
}
