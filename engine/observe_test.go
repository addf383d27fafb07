package engine

import (
	"bytes"
	"sync"
	"testing"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/merkle"
)

// TestOnCheckpoint: every checkpoint the engine signs reaches
// Options.OnCheckpoint, in order, byte for byte as logged.
func TestOnCheckpoint(t *testing.T) {
	dir := t.TempDir()
	signer, verifier := testSigner(t)
	var mu sync.Mutex
	var got []checkpoint.Signed
	var proofs []*merkle.ConsistencyProof
	o := testOpts(t)
	o.Signer, o.CheckpointRecords = signer, 100
	o.OnCheckpoint = func(s checkpoint.Signed, p *merkle.ConsistencyProof) {
		mu.Lock()
		got = append(got, s)
		proofs = append(proofs, p)
		mu.Unlock()
	}
	e := open(t, dir, o)
	for i := 0; i < 500; i += 50 {
		batch := make([]vellum.Record, 50)
		for j := range batch {
			batch[j] = rec(i + j)
		}
		if _, err := e.Append(ctx, batch...); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	logged := readCheckpoints(t, dir, verifier)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(logged) || len(got) < 5 {
		t.Fatalf("%d notifications for %d logged checkpoints", len(got), len(logged))
	}
	for i := range got {
		if !bytes.Equal(got[i].Note, logged[i].Note) {
			t.Fatalf("notification %d is not checkpoint %d", i, i)
		}
		// Each comes with the proof that it extends the one before.
		if i == 0 {
			if proofs[0] != nil {
				t.Fatal("a proof for the first checkpoint")
			}
			continue
		}
		if err := checkpoint.CheckConsistency(got[i-1].Checkpoint, got[i].Checkpoint, proofs[i]); err != nil {
			t.Fatalf("checkpoint %d: %v", i, err)
		}
	}
}
