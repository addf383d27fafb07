package engine

import (
	"context"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/checkpoint"
)

// BenchmarkSignCheckpoint measures what one signed checkpoint costs the
// store, to choose the cadence (docs/auditors.md, "Checkpoint cadence"):
// the consistency proof from the previous checkpoint (read from the tree),
// the Ed25519 signature, and the fsync'd append to the checkpoint log.
// Each iteration appends records=N (untimed) and then signs.
func BenchmarkSignCheckpoint(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			priv, _, _ := checkpoint.GenerateKey("bench")
			signer, _ := note.NewSigner(priv)
			key, _ := chain.GenerateKey()
			e, err := Open(b.TempDir(), &Options{Keys: chain.NewKeyring(key), Signer: signer,
				CheckpointInterval: -1, CheckpointRecords: -1, Logger: discardLogger()})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			ctx := context.Background()
			recs := make([]vellum.Record, n)
			for i := range recs {
				recs[i] = vellum.Record{TenantID: "acme", Action: "tool.call", Outcome: vellum.Outcome{Status: vellum.StatusSuccess}}
			}
			// A tree of some size first, so the proof is not trivial.
			for range 100 {
				if _, err := e.Append(ctx, recs...); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				if _, err := e.Append(ctx, recs...); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := e.SignCheckpoint(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEd25519Note is the signature alone: checkpoint.Sign of a
// checkpoint body.
func BenchmarkEd25519Note(b *testing.B) {
	priv, _, _ := checkpoint.GenerateKey("bench")
	signer, _ := note.NewSigner(priv)
	c := checkpoint.Checkpoint{Origin: "vellum/0123456789abcdef0123456789abcdef", Size: 123456789}
	for b.Loop() {
		if _, err := checkpoint.Sign(c, signer); err != nil {
			b.Fatal(err)
		}
	}
}
