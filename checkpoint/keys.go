package checkpoint

import (
	"crypto/rand"
	"fmt"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Default file names of the signing key pair inside a key directory.
const (
	PrivateKeyFile = "signing.key"
	PublicKeyFile  = "signing.pub"
)

// GenerateKey returns a new Ed25519 key pair named name in the note
// formats: the private key "PRIVATE+KEY+<name>+<hash>+<base64>" and the
// verifier key "<name>+<hash>+<base64>" (hash: the first 4 bytes of
// SHA-256 over name, newline, 0x01 and the public key).
func GenerateKey(name string) (private, public string, err error) {
	private, public, err = note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("checkpoint: generate key %q: %w", name, err)
	}
	return private, public, nil
}

// WriteKeyPair writes private (mode 0600) and public (mode 0644) key files,
// refusing to overwrite either.
func WriteKeyPair(privPath, pubPath, private, public string) error {
	for _, f := range []struct {
		path, text string
		mode       os.FileMode
	}{{privPath, private, 0o600}, {pubPath, public, 0o644}} {
		fh, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
		if err != nil {
			return fmt.Errorf("checkpoint: write key: %w", err)
		}
		if _, err := fh.WriteString(f.text + "\n"); err != nil {
			fh.Close()
			return fmt.Errorf("checkpoint: write %s: %w", f.path, err)
		}
		if err := fh.Sync(); err != nil {
			fh.Close()
			return fmt.Errorf("checkpoint: sync %s: %w", f.path, err)
		}
		if err := fh.Close(); err != nil {
			return fmt.Errorf("checkpoint: close %s: %w", f.path, err)
		}
	}
	return nil
}

// LoadSigner reads a private key file written by WriteKeyPair. The file
// must not be readable by group or others.
func LoadSigner(path string) (note.Signer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: signing key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; chmod 600 it", ErrKeyFileMode, path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: signing key: %w", err)
	}
	s, err := note.NewSigner(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not a note signing key: %v", ErrMalformed, path, err)
	}
	return s, nil
}

// ParseVerifier parses a verifier (public) key in the note format.
func ParseVerifier(text string) (note.Verifier, error) {
	v, err := note.NewVerifier(strings.TrimSpace(text))
	if err != nil {
		return nil, fmt.Errorf("%w: not a note verifier key: %v", ErrMalformed, err)
	}
	return v, nil
}

// LoadVerifier reads a public key file: one line in the note verifier-key
// format.
func LoadVerifier(path string) (note.Verifier, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: public key: %w", err)
	}
	v, err := ParseVerifier(string(b))
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return v, nil
}
