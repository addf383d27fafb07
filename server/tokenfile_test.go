package server

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStoredTokensRoundTrip(t *testing.T) {
	dir := t.TempDir()
	ts := []StoredToken{
		{Name: "admin", Role: RoleAdmin, TokenSHA256: HashToken("a-token-0123456789"), Created: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)},
		{Name: "acme", Role: RoleAuditor, Tenants: []string{"acme"}, TokenSHA256: HashToken("b-token-0123456789")},
	}
	if err := SaveStoredTokens(dir, ts); err != nil {
		t.Fatal(err)
	}
	got, err := LoadStoredTokens(dir)
	if err != nil || len(got) != 2 || got[1].Tenants[0] != "acme" || !got[0].Created.Equal(ts[0].Created) {
		t.Fatalf("%+v %v", got, err)
	}
	fi, _ := os.Stat(filepath.Join(dir, TokenFileName))
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
	for name, body := range map[string]string{
		"unknown field": `{"tokens":[],"extra":1}`,
		"bad hash":      `{"tokens":[{"name":"a","role":"admin","token_sha256":"xyz"}]}`,
		"bad role":      `{"tokens":[{"name":"a","role":"root","token_sha256":"` + HashToken("x") + `"}]}`,
		"duplicate":     `{"tokens":[{"name":"a","role":"admin","token_sha256":"` + HashToken("x") + `"},{"name":"a","role":"admin","token_sha256":"` + HashToken("y") + `"}]}`,
		"trailing":      `{"tokens":[]} {}`,
	} {
		os.WriteFile(filepath.Join(dir, TokenFileName), []byte(body), 0o600)
		_, err := LoadStoredTokens(dir)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), TokenFileName) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzParseTokenFile: the token file parser never panics, and what it
// accepts and checkStoredTokens passes saves and loads back the same.
func FuzzParseTokenFile(f *testing.F) {
	f.Add([]byte(`{"tokens":[{"name":"admin","role":"admin","token_sha256":"` + HashToken("x") + `","created":"2026-11-27T10:00:00Z"}]}`))
	f.Add([]byte(`{"tokens":[{"name":"a","role":"auditor","tenants":["acme"],"token_sha256":"` + HashToken("y") + `"}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := parseTokenFile(b)
		if err != nil || checkStoredTokens(ts) != nil {
			return
		}
		dir := t.TempDir()
		if err := SaveStoredTokens(dir, ts); err != nil {
			t.Fatalf("accepted tokens do not save: %v", err)
		}
		back, err := LoadStoredTokens(dir)
		if err != nil || len(back) != len(ts) {
			t.Fatalf("saved tokens do not load: %v", err)
		}
	})
}
