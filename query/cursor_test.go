package query

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vellumlog/vellum/chain"
)

func testKey(t testing.TB) *chain.Key {
	t.Helper()
	secret := make([]byte, 32)
	for i := range secret {
		secret[i] = byte(i)
	}
	k, err := chain.NewKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestCursorKnownAnswer pins the version 2 cursor bytes for key 00 01 .. 1f
// (used directly, not derived), the query {tenant_id=acme} in ascending
// order, position (1000000000, 7) and high-water seq 9. Reproduce with:
//
//	python3 -c 'import hmac,hashlib,base64,struct;fp=hashlib.sha256(b"vellum query fingerprint v2\x00"+b"\x00\x00"+b"\x04acme"+b"\x00"*7+b"\x00"+b"\x00\x00").digest();h=bytes([2,0])+struct.pack("<qQQ",10**9,7,9);print(base64.urlsafe_b64encode(h+hmac.new(bytes(range(32)),b"vellum cursor v2\x00"+h+fp,hashlib.sha256).digest()).decode().rstrip("="))'
func TestCursorKnownAnswer(t *testing.T) {
	const want = "AgAAypo7AAAAAAcAAAAAAAAACQAAAAAAAADKJJ147ZrESxBRaBBGGhr_xbPj2k2odixrDjhRUFO3Pw"
	q := Query{TenantID: "acme", MaxSeq: 9}
	got := EncodeCursor(testKey(t), &q, Position{Time: 1_000_000_000, Seq: 7})
	if got != want {
		t.Fatalf("cursor = %s\nwant     %s", got, want)
	}
	c, err := DecodeCursor(testKey(t), &Query{TenantID: "acme"}, want)
	if err != nil || c != (Cursor{After: Position{1_000_000_000, 7}, MaxSeq: 9}) {
		t.Fatalf("decode = %+v, %v", c, err)
	}
}

// TestCursorVersion1Refused: a version 1 cursor (no high-water seq; the
// old known answer) is refused with its own reason, not "malformed".
func TestCursorVersion1Refused(t *testing.T) {
	const v1 = "AQAAypo7AAAAAAcAAAAAAAAASbZRHxox8iJwm4eMWLd6QG0-q4UkNUntXSYXyqfAe_I"
	_, err := DecodeCursor(testKey(t), &Query{TenantID: "acme"}, v1)
	if !errors.Is(err, ErrBadCursor) || !strings.Contains(err.Error(), "version 1") || !strings.Contains(err.Error(), "start again without a cursor") {
		t.Fatalf("err = %v", err)
	}
}

func TestCursorRoundTrip(t *testing.T) {
	key := testKey(t).Derive(CursorKeyLabel)
	tests := []struct {
		name string
		q    Query
		pos  Position
	}{
		{"asc", Query{MaxSeq: 1}, Position{t0.UnixNano(), 1}},
		{"desc with filters", Query{Desc: true, TenantID: "acme", Action: "approval.", Since: t0, MaxSeq: 1000}, Position{t0.UnixNano() + 5, 99}},
		{"event time", Query{EventSince: t0, EventUntil: t0.Add(time.Hour), MaxSeq: 5}, Position{t0.UnixNano(), 5}},
		{"scoped", Query{Tenants: []string{"a", "b"}, MaxSeq: 1}, Position{0, 0}},
		{"extremes", Query{MaxSeq: ^uint64(0)}, Position{-1 << 63, ^uint64(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := EncodeCursor(key, &tt.q, tt.pos)
			if strings.ContainsAny(s, "+/=") {
				t.Fatalf("cursor %q is not unpadded base64url", s)
			}
			got, err := DecodeCursor(key, &tt.q, s)
			if err != nil {
				t.Fatal(err)
			}
			if got.After != tt.pos || got.MaxSeq != tt.q.MaxSeq {
				t.Fatalf("cursor = %+v, want position %+v high-water %d", got, tt.pos, tt.q.MaxSeq)
			}
			var applied Query
			got.Apply(&applied)
			if *applied.After != tt.pos || applied.MaxSeq != tt.q.MaxSeq {
				t.Fatalf("Apply: %+v", applied)
			}
			// The page size may change between pages.
			q2 := tt.q
			q2.Limit = 3
			if _, err := DecodeCursor(key, &q2, s); err != nil {
				t.Fatalf("limit change rejected: %v", err)
			}
		})
	}
}

func TestCursorRejected(t *testing.T) {
	key := testKey(t).Derive(CursorKeyLabel)
	q := Query{TenantID: "acme", Action: "tool.", MaxSeq: 50}
	good := EncodeCursor(key, &q, Position{t0.UnixNano(), 42})
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	reencode := func(mod func(b []byte)) string {
		b := append([]byte(nil), raw...)
		mod(b)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	other := testKey(t).Derive("another purpose")
	tests := []struct {
		name   string
		key    *chain.Key
		q      Query
		cursor string
		reason string // substring of the error
	}{
		{"empty", key, q, "", "malformed"},
		{"short", key, q, good[:len(good)-1], "malformed"},
		{"long", key, q, good + "A", "malformed"},
		{"not base64url", key, q, "*" + good[1:], "malformed"},
		{"std base64 alphabet", key, q, "+" + good[1:], "malformed"},
		{"non-canonical trailing bits", key, q, good[:len(good)-1] + string(flipLowBits(good[len(good)-1])), "malformed"},
		{"version 3", key, q, reencode(func(b []byte) { b[0] = 3 }), "unknown version 3"},
		{"version 1 length", key, q, base64.RawURLEncoding.EncodeToString(append([]byte{1}, raw[1:50]...)), "version 1"},
		{"high-water altered", key, q, reencode(func(b []byte) { b[18]++ }), "does not verify"},
		{"high-water zero", key, q, EncodeCursor(key, &Query{TenantID: "acme", Action: "tool."}, Position{t0.UnixNano(), 42}), "malformed (high-water seq 0"},
		{"position past high-water", key, q, EncodeCursor(key, &Query{TenantID: "acme", Action: "tool.", MaxSeq: 41}, Position{t0.UnixNano(), 42}), "malformed (high-water seq 41"},
		{"event range added", key, Query{TenantID: "acme", Action: "tool.", EventSince: t0}, good, "does not verify"},
		{"unknown flag", key, q, reencode(func(b []byte) { b[1] = 0x80 }), "unknown flags"},
		{"seq altered", key, q, reencode(func(b []byte) { b[10]++ }), "does not verify"},
		{"time altered", key, q, reencode(func(b []byte) { b[2] ^= 1 }), "does not verify"},
		{"tag altered", key, q, reencode(func(b []byte) { b[57] ^= 1 }), "does not verify"},
		{"order flipped in cursor", key, q, reencode(func(b []byte) { b[1] = 1 }), "made for order=desc"},
		{"order changed in query", key, Query{TenantID: "acme", Action: "tool.", Desc: true}, good, "made for order=asc"},
		{"other filters", key, Query{TenantID: "globex", Action: "tool."}, good, "does not verify"},
		{"filter dropped", key, Query{Action: "tool."}, good, "does not verify"},
		{"scope added", key, Query{TenantID: "acme", Action: "tool.", Tenants: []string{"acme"}}, good, "does not verify"},
		{"other key", other, q, good, "does not verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cursor == good {
				if _, err := DecodeCursor(key, &q, good); err != nil {
					t.Fatalf("control: %v", err)
				}
			}
			_, err := DecodeCursor(tt.key, &tt.q, tt.cursor)
			if !errors.Is(err, ErrBadCursor) {
				t.Fatalf("err = %v, want ErrBadCursor", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("err = %q, want it to say %q", err, tt.reason)
			}
		})
	}
}

// flipLowBits returns the base64url character whose value differs from c
// only in the low bit, which the last character of a 58-byte encoding
// does not use (it carries 2 bits of data and 4 zero bits).
func flipLowBits(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, c)
	return alphabet[i^1]
}

// TestCursorEveryByte flips each bit of a cursor: every change must be
// rejected.
func TestCursorEveryByte(t *testing.T) {
	key := testKey(t)
	q := Query{Since: t0, Until: t0.Add(time.Hour), MaxSeq: 3}
	good := EncodeCursor(key, &q, Position{t0.UnixNano(), 3})
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	for i := range raw {
		for bit := range 8 {
			b := append([]byte(nil), raw...)
			b[i] ^= 1 << bit
			if _, err := DecodeCursor(key, &q, base64.RawURLEncoding.EncodeToString(b)); !errors.Is(err, ErrBadCursor) {
				t.Fatalf("byte %d bit %d flipped: err = %v", i, bit, err)
			}
		}
	}
}
