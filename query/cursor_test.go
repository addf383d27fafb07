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

// TestCursorKnownAnswer pins the version 1 cursor bytes for key 00 01 .. 1f
// (used directly, not derived), the query {tenant_id=acme} in ascending
// order and position (1000000000, 7). Reproduce with:
//
//	python3 -c 'import hmac,hashlib,base64,struct;fp=hashlib.sha256(b"vellum query fingerprint v1\x00"+b"\x00\x00"+b"\x04acme"+b"\x00"*7+b"\x00").digest();h=bytes([1,0])+struct.pack("<qQ",10**9,7);print(base64.urlsafe_b64encode(h+hmac.new(bytes(range(32)),b"vellum cursor v1\x00"+h+fp,hashlib.sha256).digest()).decode().rstrip("="))'
func TestCursorKnownAnswer(t *testing.T) {
	const want = "AQAAypo7AAAAAAcAAAAAAAAASbZRHxox8iJwm4eMWLd6QG0-q4UkNUntXSYXyqfAe_I"
	q := Query{TenantID: "acme"}
	got := EncodeCursor(testKey(t), &q, Position{Time: 1_000_000_000, Seq: 7})
	if got != want {
		t.Fatalf("cursor = %s\nwant     %s", got, want)
	}
	pos, err := DecodeCursor(testKey(t), &q, want)
	if err != nil || pos != (Position{1_000_000_000, 7}) {
		t.Fatalf("decode = %+v, %v", pos, err)
	}
}

func TestCursorRoundTrip(t *testing.T) {
	key := testKey(t).Derive(CursorKeyLabel)
	tests := []struct {
		name string
		q    Query
		pos  Position
	}{
		{"asc", Query{}, Position{t0.UnixNano(), 1}},
		{"desc with filters", Query{Desc: true, TenantID: "acme", Action: "approval.", Since: t0}, Position{t0.UnixNano() + 5, 99}},
		{"scoped", Query{Tenants: []string{"a", "b"}}, Position{0, 0}},
		{"extremes", Query{}, Position{-1 << 63, ^uint64(0)}},
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
			if got != tt.pos {
				t.Fatalf("position = %+v, want %+v", got, tt.pos)
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
	q := Query{TenantID: "acme", Action: "tool."}
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
		{"version 2", key, q, reencode(func(b []byte) { b[0] = 2 }), "unknown version 2"},
		{"unknown flag", key, q, reencode(func(b []byte) { b[1] = 0x80 }), "unknown flags"},
		{"seq altered", key, q, reencode(func(b []byte) { b[10]++ }), "does not verify"},
		{"time altered", key, q, reencode(func(b []byte) { b[2] ^= 1 }), "does not verify"},
		{"tag altered", key, q, reencode(func(b []byte) { b[49] ^= 1 }), "does not verify"},
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
// only in the two low bits, which the last character of a 50-byte encoding
// does not use.
func flipLowBits(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, c)
	return alphabet[i^1]
}

// TestCursorEveryByte flips each bit of a cursor: every change must be
// rejected.
func TestCursorEveryByte(t *testing.T) {
	key := testKey(t)
	q := Query{Since: t0, Until: t0.Add(time.Hour)}
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
