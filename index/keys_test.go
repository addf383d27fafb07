package index

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/vellumlog/vellum"
)

// keysOfRef is KeysOf as first written, one hashKey per key: the
// reference the interleaved hashing must match, key for key and in order.
func keysOfRef(tenant, user, action, tool, model, status string) Keys {
	var k Keys
	add := func(id byte, v string) {
		switch {
		case len(v) == 0:
		case int(k.n) == maxKeys:
			k.overflow = true
		default:
			k.h[k.n] = hashKey(id, v, len(v))
			k.n++
		}
	}
	add(fieldTenant, tenant)
	add(fieldUser, user)
	add(fieldAction, action)
	for i := 0; i < len(action)-1; i++ {
		if action[i] == '.' {
			add(fieldActionPrefix, action[:i+1])
		}
	}
	add(fieldTool, tool)
	add(fieldModel, model)
	k.outcome = vellum.StatusBit(status)
	return k
}

// TestKeysOfMatchesReference: KeysOf, which hashes two keys at a time,
// gives the keys hashKey gives one at a time, for strings and for bytes,
// including empty values, actions of many dots and more keys than fit.
func TestKeysOfMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	word := func(max int) string {
		n := rng.IntN(max + 1)
		b := make([]byte, n)
		for i := range b {
			b[i] = "ab.xyz-_0123456789\xc3\xa9"[rng.IntN(20)]
		}
		return string(b)
	}
	cases := [][6]string{
		{"", "", "", "", "", ""},
		{"t", "", "tool.call", "", "m", "success"},
		{"tenant-01", "user-0001", "approval.granted", "send_email", "gpt-4o", "denied"},
		{"t", "u", strings.Repeat("a.", 14) + "z", "x", "y", "blocked"}, // 14 prefixes: overflow
		{"", "", strings.Repeat("a.", 11) + "z", "", "", ""},            // exactly 12 keys
		{"", "", strings.Repeat("a.", 12) + "z", "", "", ""},            // 13: overflow
		{"t", "u", "a.", "", "", ""},                                    // a trailing dot is no prefix
		{"t", "u", ".", ".a", "..", "nope"},
	}
	for range 3000 {
		cases = append(cases, [6]string{word(12), word(30), word(24), word(8), word(20), []string{"", "success", "pending", "x"}[rng.IntN(4)]})
	}
	for i, c := range cases {
		want := keysOfRef(c[0], c[1], c[2], c[3], c[4], c[5])
		if got := KeysOf(c[0], c[1], c[2], c[3], c[4], c[5]); got != want {
			t.Fatalf("case %d %q: KeysOf = %+v, want %+v", i, c, got, want)
		}
		b := func(s string) []byte { return []byte(s) }
		if got := KeysOf(b(c[0]), b(c[1]), b(c[2]), b(c[3]), b(c[4]), b(c[5])); got != want {
			t.Fatalf("case %d %q: KeysOf of bytes = %+v, want %+v", i, c, got, want)
		}
		ha, hb := hashKey2(FieldSession, c[1], FieldTrace, c[2])
		if ha != hashKey(FieldSession, c[1], len(c[1])) || hb != hashKey(FieldTrace, c[2], len(c[2])) {
			t.Fatalf("case %d: hashKey2 differs from hashKey", i)
		}
		v := Values{Session: c[0], Trace: c[4]}
		v.hash()
		var ws, wt uint64
		if c[0] != "" {
			ws = HashValue(FieldSession, c[0])
		}
		if c[4] != "" {
			wt = HashValue(FieldTrace, c[4])
		}
		if v.hs != ws || v.ht != wt {
			t.Fatalf("case %d: session and trace hashes %x %x, want %x %x", i, v.hs, v.ht, ws, wt)
		}
	}
}

// BenchmarkKeysOf measures a record's summary keys, as Prepare computes
// them on the appending goroutine.
func BenchmarkKeysOf(b *testing.B) {
	var sink Keys
	for b.Loop() {
		sink = KeysOf("tenant-07", "user-0042", "approval.granted", "send_email", "llama-3.1-70b", "success")
	}
	_ = sink
}
