package cosign

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum/checkpoint"
)

// LoadSigner reads a private key file (one line, mode 0600 or stricter).
func LoadSigner(path string) (*Signer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cosign: witness key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; chmod 600 it", checkpoint.ErrKeyFileMode, path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cosign: witness key: %w", err)
	}
	s, err := NewSigner(string(b))
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return s, nil
}

// ParseVerifierArg reads a witness verifier key given on a command line or
// in a config file: the key text itself, or the name of a file holding it.
func ParseVerifierArg(arg string) (*Verifier, error) {
	arg = strings.TrimSpace(arg)
	v, kerr := NewVerifier(arg)
	if kerr == nil {
		return v, nil
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		if strings.Count(arg, "+") >= 2 {
			return nil, kerr
		}
		return nil, fmt.Errorf("cosign: witness key %q is neither a verifier key nor a readable file: %w", arg, err)
	}
	v, err = NewVerifier(string(b))
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, arg)
	}
	return v, nil
}

// Verifiers converts witness verifiers for note.Open and Open.
func Verifiers(vs []*Verifier) []note.Verifier {
	out := make([]note.Verifier, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}
