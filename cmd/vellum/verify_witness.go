package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum/cosign"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/verify"
	"github.com/vellumlog/vellum/witness"
)

// stringList collects a repeated flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// witnessKeys parses --witness flags: each a witness's public key, or a
// file holding one.
func witnessKeys(args []string) ([]note.Verifier, error) {
	var out []note.Verifier
	for _, a := range args {
		v, err := cosign.ParseVerifierArg(a)
		if err != nil {
			return nil, fmt.Errorf("--witness: %v", err)
		}
		out = append(out, v)
	}
	return out, nil
}

// fetchCosigned asks each witness URL for its latest cosigned checkpoint
// of the store in dir: what the witness holds, which the operator cannot
// roll back with the data.
func fetchCosigned(dir string, urls []string) ([]verify.CosignedNote, error) {
	if len(urls) == 0 {
		return nil, nil
	}
	id, err := layout.ReadStoreID(nil, dir)
	if err != nil {
		return nil, fmt.Errorf("--witness-url: the store's origin: %v", err)
	}
	origin := engine.DefaultOrigin(id)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out []verify.CosignedNote
	for _, u := range urls {
		c := &witness.Client{URL: u, HTTP: &http.Client{Timeout: 30 * time.Second}}
		msg, err := c.Latest(ctx, origin)
		if err != nil {
			return nil, fmt.Errorf("--witness-url %s: %v", u, err)
		}
		out = append(out, verify.CosignedNote{Source: u, Note: msg})
	}
	return out, nil
}

// cosignedNote reads the data directory's cosigned checkpoint, if any.
func cosignedNote(dir string) ([]byte, bool) {
	b, err := os.ReadFile(filepath.Join(dir, cosign.CheckpointFile))
	return b, err == nil && len(b) > 0
}
