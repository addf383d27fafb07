package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Token files in a data directory. `vellum token` writes TokenFileName;
// `vellum serve` reads it (and notices changes while it runs), so tokens
// can be created and revoked without editing the config. Only SHA-256
// hashes of tokens are kept.
const (
	// TokenFileName holds the stored principals, as JSON:
	//
	//	{"tokens": [{"name": "admin", "role": "admin", "token_sha256": "<hex>",
	//	             "created": "2026-11-27T10:00:00Z"}, ...]}
	//
	// mode 0600, replaced atomically (temp file, fsync, rename, fsync of
	// the directory).
	TokenFileName = "tokens.json"
	// LegacyAdminTokenFile is where servers before TokenFileName kept the
	// SHA-256 of the first-run admin token (one hex line). It is read as a
	// principal named "admin" with role admin; revoking "admin" removes it.
	LegacyAdminTokenFile = "admin-token.sha256"
)

// StoredToken is one principal of a token file. Tenants limit an auditor
// or ingest token as in TokenConfig.
type StoredToken struct {
	Name        string    `json:"name"`
	Role        Role      `json:"role"`
	Tenants     []string  `json:"tenants,omitempty"`
	TokenSHA256 string    `json:"token_sha256"`
	Created     time.Time `json:"created,omitzero"`
	// Legacy marks the principal read from LegacyAdminTokenFile; it is
	// never written to TokenFileName.
	Legacy bool `json:"-"`
}

type tokenFile struct {
	Tokens []StoredToken `json:"tokens"`
}

// Config returns t as a TokenConfig.
func (t StoredToken) Config() TokenConfig {
	return TokenConfig{Name: t.Name, Role: t.Role, Tenants: slices.Clone(t.Tenants), TokenSHA256: t.TokenSHA256}
}

// LoadStoredTokens reads the principals stored in dataDir: TokenFileName
// and LegacyAdminTokenFile. Missing files mean none. A malformed file or
// entry is an error wrapping ErrConfig naming the file and the entry.
func LoadStoredTokens(dataDir string) ([]StoredToken, error) {
	var out []StoredToken
	path := filepath.Join(dataDir, TokenFileName)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	default:
		if out, err = parseTokenFile(b); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrConfig, path, err)
		}
	}
	legacy := filepath.Join(dataDir, LegacyAdminTokenFile)
	b, err = os.ReadFile(legacy)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	default:
		out = append(out, StoredToken{Name: "admin", Role: RoleAdmin, TokenSHA256: strings.TrimSpace(string(b)), Legacy: true})
	}
	if err := checkStoredTokens(out); err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, dataDir)
	}
	return out, nil
}

// parseTokenFile decodes the JSON of TokenFileName strictly: unknown
// fields and trailing data are errors. The entries are checked by
// checkStoredTokens.
func parseTokenFile(b []byte) ([]StoredToken, error) {
	var f tokenFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("data after the JSON object")
	}
	return f.Tokens, nil
}

// checkStoredTokens applies the rules of auth.tokens to stored principals.
func checkStoredTokens(ts []StoredToken) error {
	a := AuthConfig{}
	for _, t := range ts {
		a.Tokens = append(a.Tokens, t.Config())
	}
	if err := a.validate(); err != nil {
		msg := strings.TrimPrefix(err.Error(), ErrConfig.Error()+": ")
		return fmt.Errorf("%w: %s", ErrConfig, strings.ReplaceAll(msg, "auth.tokens[", TokenFileName+" tokens["))
	}
	return nil
}

// SaveStoredTokens replaces TokenFileName in dataDir with ts (legacy
// entries left out), atomically, with mode 0600.
func SaveStoredTokens(dataDir string, ts []StoredToken) error {
	f := tokenFile{Tokens: []StoredToken{}}
	for _, t := range ts {
		if !t.Legacy {
			f.Tokens = append(f.Tokens, t)
		}
	}
	if err := checkStoredTokens(f.Tokens); err != nil {
		return err
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dataDir, TokenFileName), append(b, '\n'), 0o600)
}

// writeFileAtomic replaces path with data: a temporary file in the same
// directory, fsync, rename, fsync of the directory.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("server: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("server: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("server: sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("server: sync %s: %w", dir, err)
	}
	return nil
}
