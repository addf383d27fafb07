package witness

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/merkle"
)

const testOrigin = "vellum/00112233445566778899aabbccddeeff"

// testLog is a log for the witness to watch: leaves, a signing key, and
// checkpoints with consistency proofs between them.
type testLog struct {
	t      testing.TB
	origin string
	signer note.Signer
	key    note.Verifier
	leaves []merkle.Hash
}

func newTestLog(t testing.TB, seed byte) *testLog {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	vkey, err := note.NewEd25519VerifierKey("vellum", priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	h := strings.Split(vkey, "+")[1]
	s, err := note.NewSigner("PRIVATE+KEY+vellum+" + h + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, priv.Seed()...)))
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{t: t, origin: testOrigin, signer: s, key: v}
}

// grow appends n leaves whose content starts with tag.
func (l *testLog) grow(n int, tag byte) {
	for i := 0; i < n; i++ {
		l.leaves = append(l.leaves, merkle.LeafData([]byte{tag, byte(len(l.leaves)), byte(len(l.leaves) >> 8)}))
	}
}

// fork returns a copy of l with its first size leaves.
func (l *testLog) fork(size int) *testLog {
	c := *l
	c.leaves = append([]merkle.Hash(nil), l.leaves[:size]...)
	return &c
}

func (l *testLog) root(size uint64) merkle.Hash {
	r, err := merkle.RootAt(l, size)
	if err != nil {
		l.t.Fatal(err)
	}
	return r
}

// checkpoint signs the log at size.
func (l *testLog) checkpoint(size uint64) checkpoint.Signed {
	s, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: l.origin, Size: size, Root: l.root(size)}, l.signer)
	if err != nil {
		l.t.Fatal(err)
	}
	return s
}

// request is an add-checkpoint request from old to size.
func (l *testLog) request(old, size uint64) *AddRequest {
	r := &AddRequest{OldSize: old, Checkpoint: l.checkpoint(size).Note}
	if old > 0 && old < size {
		p, err := merkle.ProveConsistency(l, old, size)
		if err != nil {
			l.t.Fatal(err)
		}
		r.Proof = p.Hashes
	}
	return r
}

// ConsistencyProof makes testLog a Prover.
func (l *testLog) ConsistencyProof(_ context.Context, size1, size2 uint64) (*merkle.ConsistencyProof, error) {
	return merkle.ProveConsistency(l, size1, size2)
}

func (l *testLog) StoredNode(uint, uint64) (merkle.Hash, bool, error) {
	return merkle.Hash{}, false, nil
}
func (l *testLog) Leaves(from, to uint64) ([]merkle.Hash, error) { return l.leaves[from:to], nil }

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }
