package chain

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// MinKeySize is the smallest HMAC key accepted, in bytes (the SHA-256
// output size, as NIST SP 800-107 recommends for HMAC-SHA256).
const MinKeySize = 32

// KeyIDSize is the size of a key id in bytes.
const KeyIDSize = 8

// KeyID names a key without revealing it: the first 8 bytes of
// HMAC-SHA256(key, "vellum key id v1"). Its text form is 16 hex characters.
type KeyID [KeyIDSize]byte

// String returns id in lower-case hex.
func (id KeyID) String() string { return hex.EncodeToString(id[:]) }

// ParseKeyID parses the 16-character hex form of a key id.
func ParseKeyID(s string) (KeyID, error) {
	var id KeyID
	if len(s) != 2*KeyIDSize {
		return id, fmt.Errorf("%w: %q is not %d hex characters", ErrKeyFormat, s, 2*KeyIDSize)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("%w: key id %q: %v", ErrKeyFormat, s, err)
	}
	return id, nil
}

// Key is an HMAC-SHA256 key with its id. It never prints its secret.
type Key struct {
	id     KeyID
	secret []byte
}

// NewKey makes a key from at least MinKeySize bytes of secret. The bytes are
// copied.
func NewKey(secret []byte) (*Key, error) {
	if len(secret) < MinKeySize {
		return nil, fmt.Errorf("%w: %d bytes, need at least %d", ErrKeyTooShort, len(secret), MinKeySize)
	}
	k := &Key{secret: bytes.Clone(secret)}
	m := hmac.New(sha256.New, k.secret)
	m.Write([]byte("vellum key id v1"))
	copy(k.id[:], m.Sum(nil))
	return k, nil
}

// GenerateKey returns a new random key of MinKeySize bytes.
func GenerateKey() (*Key, error) {
	b := make([]byte, MinKeySize)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("chain: generate key: %w", err)
	}
	return NewKey(b)
}

// Secret returns a copy of the key material, for a component that needs the
// raw bytes (the redactor's pseudonym key). Never log it.
func (k *Key) Secret() []byte { return bytes.Clone(k.secret) }

// ID returns the key's id.
func (k *Key) ID() KeyID { return k.id }

// String names the key by id only, so a key that reaches a log line or an
// error message never leaks its secret.
func (k *Key) String() string { return "hmac-sha256:" + k.id.String() }

// LogValue keeps the secret out of slog output.
func (k *Key) LogValue() any { return k.String() }

// ParseKey decodes hex key material (surrounding white space ignored).
func ParseKey(text []byte) (*Key, error) {
	text = bytes.TrimSpace(text)
	secret := make([]byte, hex.DecodedLen(len(text)))
	if _, err := hex.Decode(secret, text); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyFormat, err)
	}
	return NewKey(secret)
}

// LoadKeyFile reads a hex key from path. It refuses a file that group or
// others may read, since anyone who reads the key can rewrite history.
func LoadKeyFile(path string) (*Key, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("chain: key file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o, want 0600 or 0400", ErrKeyFileMode, path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("chain: key file: %w", err)
	}
	k, err := ParseKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w (key file %s)", err, path)
	}
	return k, nil
}

// KeyFromEnv reads a hex key from the environment variable name.
func KeyFromEnv(name string) (*Key, error) {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return nil, fmt.Errorf("chain: environment variable %s is not set", name)
	}
	k, err := ParseKey([]byte(v))
	if err != nil {
		return nil, fmt.Errorf("%w (environment variable %s)", err, name)
	}
	return k, nil
}

// WriteKeyFile writes k in hex to path with mode 0600, refusing to replace
// an existing file. The file is synced before it is closed.
func WriteKeyFile(path string, k *Key) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("chain: write key file: %w", err)
	}
	_, err = fmt.Fprintf(f, "%s\n", hex.EncodeToString(k.secret))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("chain: write key file %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Derive returns a key for another purpose (such as signing query cursors),
// HMAC-SHA256(k, "vellum derive v1" || label), so one secret never serves
// two uses.
func (k *Key) Derive(label string) *Key {
	m := hmac.New(sha256.New, k.secret)
	m.Write([]byte("vellum derive v1\x00"))
	m.Write([]byte(label))
	d, _ := NewKey(m.Sum(nil)) // 32 bytes: cannot fail
	return d
}

// Sum returns HMAC-SHA256(k, parts...), for tags such as query cursors.
func (k *Key) Sum(parts ...[]byte) [32]byte {
	m := hmac.New(sha256.New, k.secret)
	for _, p := range parts {
		m.Write(p)
	}
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// Equal compares two MACs or tags in constant time.
func Equal(a, b []byte) bool { return hmac.Equal(a, b) }

// Keyring holds the active key, which chains new records, and retired keys,
// which older segments were written under.
type Keyring struct {
	active *Key
	byID   map[KeyID]*Key
}

// NewKeyring makes a keyring whose active key is active; older keys follow.
func NewKeyring(active *Key, older ...*Key) *Keyring {
	kr := &Keyring{active: active, byID: map[KeyID]*Key{active.ID(): active}}
	for _, k := range older {
		kr.byID[k.ID()] = k
	}
	return kr
}

// Active returns the key that chains new records.
func (kr *Keyring) Active() *Key { return kr.active }

// Lookup returns the key with id, or an error wrapping ErrUnknownKey.
func (kr *Keyring) Lookup(id KeyID) (*Key, error) {
	if k, ok := kr.byID[id]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w: %s (configured: active %s and %d retired)", ErrUnknownKey, id, kr.active.ID(), len(kr.byID)-1)
}
