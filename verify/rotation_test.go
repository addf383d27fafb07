package verify

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/engine"
)

// TestKeyRotationAndReopen: segments sealed on open because the HMAC key
// was rotated, sealed by size, and left active across reopens all verify,
// with the old key listed as retired; with only the new key the old
// segments are named as written under another key.
func TestKeyRotationAndReopen(t *testing.T) {
	dir := t.TempDir()
	signer, verifier := signerPair("vellum-test")
	a, b := testKey(1), testKey(2)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	appendN := func(kr *chain.Keyring, from, n int) {
		e, err := engine.Open(dir, &engine.Options{Keys: kr, Signer: signer, Logger: log, SegmentSize: 16 << 10, CheckpointRecords: 50})
		if err != nil {
			t.Fatal(err)
		}
		recs := make([]vellum.Record, n)
		for i := range recs {
			recs[i] = record(from + i)
		}
		if _, err := e.Append(ctx, recs...); err != nil {
			t.Fatal(err)
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
	appendN(chain.NewKeyring(a), 0, 30)     // an active segment, left open
	appendN(chain.NewKeyring(a), 30, 30)    // continued after a reopen
	appendN(chain.NewKeyring(b, a), 60, 90) // rotation: sealed on open, then more segments
	rep, err := Dir(dir, &Options{Keys: chain.NewKeyring(b, a), Verifier: verifier})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Records != 150 || rep.Tree == nil || rep.Tree.Size != 150 {
		t.Fatalf("rotated store: %d records, tree %v, problems %v", rep.Records, rep.Tree, rep.Problems)
	}
	rep, err = Dir(dir, &Options{Keys: chain.NewKeyring(b), Verifier: verifier})
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.First(); p == nil || p.Check != CheckKey || p.File != segName(1) {
		t.Fatalf("old segments without the old key: %v", p)
	}
}
