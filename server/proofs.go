package server

import (
	"context"

	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/merkle"
)

// Prover is what a store that signs Merkle checkpoints offers the API
// (*engine.Engine does): the latest signed checkpoint for list responses,
// and inclusion proofs against it for single records. A store without it
// serves records without proofs.
type Prover interface {
	LatestCheckpoint() (checkpoint.Signed, bool)
	InclusionProof(ctx context.Context, seq, size uint64) (*merkle.InclusionProof, error)
}

// checkpointJSON is a signed checkpoint in responses: its fields for
// reading, and the signed note itself, which is what an auditor verifies
// with the log's public key (docs/auditors.md).
type checkpointJSON struct {
	Origin   string      `json:"origin"`
	TreeSize uint64      `json:"tree_size"`
	RootHash merkle.Hash `json:"root_hash"` // standard base64
	Note     string      `json:"note"`
}

func (s *Server) latestCheckpoint() *checkpointJSON {
	p, ok := s.store.(Prover)
	if !ok {
		return nil
	}
	cp, ok := p.LatestCheckpoint()
	if !ok {
		return nil
	}
	return &checkpointJSON{Origin: cp.Origin, TreeSize: cp.Size, RootHash: cp.Root, Note: string(cp.Note)}
}

// inclusion returns the proof that record seq is in the tree of the latest
// checkpoint, with that checkpoint; nil when the store signs none yet or
// the record is newer than the checkpoint (the next one, at most a
// checkpoint interval away, covers it).
func (s *Server) inclusion(ctx context.Context, seq uint64) (*merkle.InclusionProof, *checkpointJSON) {
	cp := s.latestCheckpoint()
	if cp == nil || seq > cp.TreeSize {
		return nil, cp
	}
	proof, err := s.store.(Prover).InclusionProof(ctx, seq, cp.TreeSize)
	if err != nil {
		s.log.Warn("inclusion proof failed", "seq", seq, "error", err.Error())
		return nil, cp
	}
	return proof, cp
}
