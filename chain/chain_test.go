package chain

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vellumlog/vellum"
)

func testKey(t testing.TB) *Key {
	t.Helper()
	secret := make([]byte, 32)
	for i := range secret {
		secret[i] = byte(i)
	}
	k, err := NewKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKnownAnswers pins the key id, genesis value and first two chain MACs
// for key 00 01 .. 1f and store id 11 x16. Each value is reproduced by:
//
//	KEY=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
//	printf 'vellum key id v1' | openssl dgst -sha256 -mac HMAC -macopt hexkey:$KEY   # first 8 bytes = key id
//	python3 -c 'import hmac,hashlib;k=bytes(range(32));kid=hmac.new(k,b"vellum key id v1",hashlib.sha256).digest()[:8];g=hashlib.sha256(b"vellum chain genesis v1\x00"+bytes([0x11]*16)+kid).digest();m1=hmac.new(k,g+b"record-1",hashlib.sha256).digest();print(g.hex(),m1.hex(),hmac.new(k,m1+b"record-2",hashlib.sha256).hexdigest())'
func TestKnownAnswers(t *testing.T) {
	k := testKey(t)
	if got := k.ID().String(); got != "9d03eb8b0a28bd77" {
		t.Fatalf("key id = %s", got)
	}
	var sid [16]byte
	for i := range sid {
		sid[i] = 0x11
	}
	g := Genesis(sid, k.ID())
	if got := g.String(); got != "2bb8badd93bd1f0a61e7df1777e77d4c16034db891284b8ae65868efcd8d1771" {
		t.Fatalf("genesis = %s", got)
	}
	h := k.NewHasher()
	m1 := h.Next(g, []byte("record-1"))
	if got := m1.String(); got != "16bf233e034dd7102d21d62985564ab33d89aabd454da042dc14fa71abf691b6" {
		t.Fatalf("mac 1 = %s", got)
	}
	m2 := h.Next(m1, []byte("record-2"))
	if got := m2.String(); got != "256f902597e023a3c57390ee133251d4b450a2a3e3e878d04082b91a95c1101f" {
		t.Fatalf("mac 2 = %s", got)
	}
}

// TestRFC4231 checks the HMAC-SHA256 primitive against RFC 4231 test case 6
// (a key longer than the block size).
func TestRFC4231(t *testing.T) {
	k, err := NewKey(bytes.Repeat([]byte{0xaa}, 131))
	if err != nil {
		t.Fatal(err)
	}
	got := k.Sum([]byte("Test Using Larger Than Block-Size Key - Hash Key First"))
	want := mustHex(t, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
	if !bytes.Equal(got[:], want) {
		t.Fatalf("HMAC = %x, want %x", got, want)
	}
}

func TestCheck(t *testing.T) {
	k := testKey(t)
	h := k.NewHasher()
	var prev vellum.MAC
	good := h.Next(prev, []byte("x"))
	if _, err := h.Check(5, prev, []byte("x"), good); err != nil {
		t.Fatalf("good mac rejected: %v", err)
	}
	bad := good
	bad[3] ^= 1
	_, err := h.Check(5, prev, []byte("x"), bad)
	var me *MismatchError
	if !errors.As(err, &me) || !errors.Is(err, ErrMismatch) || me.Seq != 5 || me.Expected != good || me.Found != bad {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "seq 5") {
		t.Fatalf("error does not name the seq: %v", err)
	}
}

func TestKeyLoading(t *testing.T) {
	dir := t.TempDir()
	secretHex := strings.Repeat("ab", 32)
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	tests := []struct {
		name    string
		path    string
		wantErr error
	}{
		{"ok", write("ok", secretHex+"\n", 0o600), nil},
		{"read-only owner", write("ro", secretHex, 0o400), nil},
		{"group readable", write("g", secretHex, 0o640), ErrKeyFileMode},
		{"world readable", write("w", secretHex, 0o604), ErrKeyFileMode},
		{"short", write("short", strings.Repeat("ab", 31), 0o600), ErrKeyTooShort},
		{"not hex", write("nothex", strings.Repeat("zz", 32), 0o600), ErrKeyFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := LoadKeyFile(tt.path)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				want, _ := NewKey(bytes.Repeat([]byte{0xab}, 32))
				if k.ID() != want.ID() {
					t.Fatal("loaded a different key")
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.path) && tt.wantErr != ErrKeyFormat && tt.wantErr != ErrKeyTooShort {
				t.Fatalf("error does not name the file: %v", err)
			}
		})
	}
	t.Run("env", func(t *testing.T) {
		t.Setenv("VELLUM_TEST_KEY", secretHex)
		if _, err := KeyFromEnv("VELLUM_TEST_KEY"); err != nil {
			t.Fatal(err)
		}
		if _, err := KeyFromEnv("VELLUM_TEST_KEY_UNSET"); err == nil || !strings.Contains(err.Error(), "VELLUM_TEST_KEY_UNSET") {
			t.Fatalf("unset variable: %v", err)
		}
	})
	t.Run("write refuses overwrite and is 0600", func(t *testing.T) {
		k, _ := GenerateKey()
		p := filepath.Join(dir, "new.key")
		if err := WriteKeyFile(p, k); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(p)
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("mode %o", fi.Mode().Perm())
		}
		if err := WriteKeyFile(p, k); err == nil {
			t.Fatal("overwrote an existing key file")
		}
		back, err := LoadKeyFile(p)
		if err != nil || back.ID() != k.ID() {
			t.Fatalf("reload: %v", err)
		}
	})
}

func TestKeyNeverPrintsSecret(t *testing.T) {
	k := testKey(t)
	s := k.String()
	if strings.Contains(s, "000102") || !strings.Contains(s, k.ID().String()) {
		t.Fatalf("String() = %q", s)
	}
}

func TestKeyring(t *testing.T) {
	a, _ := GenerateKey()
	b, _ := GenerateKey()
	kr := NewKeyring(a, b)
	if kr.Active() != a {
		t.Fatal("active")
	}
	if got, err := kr.Lookup(b.ID()); err != nil || got != b {
		t.Fatal("retired key not found")
	}
	c, _ := GenerateKey()
	if _, err := kr.Lookup(c.ID()); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v", err)
	}
	if d1, d2 := a.Derive("cursor"), a.Derive("cursor"); d1.ID() == a.ID() || d1.ID() != d2.ID() {
		t.Fatal("Derive must be deterministic and differ from the parent")
	}
}

func BenchmarkNext(b *testing.B) {
	k := testKey(b)
	h := k.NewHasher()
	rec := bytes.Repeat([]byte("x"), 350)
	var m vellum.MAC
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		m = h.Next(m, rec)
	}
}
