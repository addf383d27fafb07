package report

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"path/filepath"
	"testing"

	"github.com/vellumlog/vellum/checkpoint"
)

// TestFingerprint: the fingerprint is the SHA-256 of the raw Ed25519 key,
// for keys whose base64 holds "+" too (the field separator).
func TestFingerprint(t *testing.T) {
	for i := 0; i < 40; i++ {
		d := t.TempDir()
		sk, vk, err := checkpoint.GenerateKey("vellum")
		if err != nil {
			t.Fatal(err)
		}
		if err := checkpoint.WriteKeyPair(filepath.Join(d, "k"), filepath.Join(d, "p"), sk, vk); err != nil {
			t.Fatal(err)
		}
		raw := vkRaw(t, vk)
		sum := sha256.Sum256(raw)
		if got := fingerprint(filepath.Join(d, "p")); got != hex.EncodeToString(sum[:]) {
			t.Fatalf("fingerprint of %s = %q", vk, got)
		}
	}
}

// vkRaw decodes the public key of a verifier key the long way.
func vkRaw(t *testing.T, vk string) ed25519.PublicKey {
	t.Helper()
	i := 0
	for n := 0; n < 2; n++ {
		for vk[i] != '+' {
			i++
		}
		i++
	}
	b, err := base64.StdEncoding.DecodeString(vk[i:])
	if err != nil || len(b) != 33 {
		t.Fatalf("verifier key %q: %v", vk, err)
	}
	return ed25519.PublicKey(b[1:])
}
