package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/julienschmidt/httprouter"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/engine"
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

// ConsistencyProver proves that one tree size is a prefix of another
// (*engine.Engine does); GET /v1/audit/consistency needs it.
type ConsistencyProver interface {
	ConsistencyProof(ctx context.Context, size1, size2 uint64) (*merkle.ConsistencyProof, error)
}

// CheckpointSigner signs a checkpoint of everything durable now
// (*engine.Engine does); POST /v1/audit/checkpoints needs it.
type CheckpointSigner interface {
	SignCheckpoint(ctx context.Context) (checkpoint.Signed, error)
}

var (
	_ Prover            = (*engine.Engine)(nil)
	_ ConsistencyProver = (*engine.Engine)(nil)
	_ CheckpointSigner  = (*engine.Engine)(nil)
)

// checkpointJSON is a signed checkpoint in responses: its fields for
// reading, and the signed note itself, which is what an auditor verifies
// with the log's public key (docs/auditors.md).
type checkpointJSON struct {
	Origin   string      `json:"origin"`
	TreeSize uint64      `json:"tree_size"`
	RootHash merkle.Hash `json:"root_hash"` // standard base64
	Note     string      `json:"note"`
}

func toCheckpointJSON(cp checkpoint.Signed) *checkpointJSON {
	return &checkpointJSON{Origin: cp.Origin, TreeSize: cp.Size, RootHash: cp.Root, Note: string(cp.Note)}
}

// inclusionJSON is a record's inclusion proof in GET /v1/audit/{seq}, with
// the leaf input: the exact bytes whose SHA-256(0x00 || leaf_input) is the
// record's leaf hash, that is its canonical encoding followed by its
// 32-byte MAC (segment/FORMAT.md, "Merkle trees"). With it a client checks
// the proof without re-encoding the record.
type inclusionJSON struct {
	*merkle.InclusionProof
	LeafInput []byte `json:"leaf_input"` // standard base64
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
	return toCheckpointJSON(cp)
}

// inclusion returns the proof that rec is in the tree of the latest
// checkpoint, with its leaf input and that checkpoint; no proof when the
// store signs none yet or the record is newer than the checkpoint (the
// next one, at most a checkpoint interval away, covers it; POST
// /v1/audit/checkpoints signs one now). The proof is checked against the
// checkpoint's root before it is sent, so a proof that would not verify is
// never served.
func (s *Server) inclusion(ctx context.Context, rec *vellum.Record) (*inclusionJSON, *checkpointJSON) {
	cp := s.latestCheckpoint()
	if cp == nil || rec.Seq > cp.TreeSize {
		return nil, cp
	}
	proof, err := s.store.(Prover).InclusionProof(ctx, rec.Seq, cp.TreeSize)
	if err != nil {
		s.log.Warn("inclusion proof failed", "seq", rec.Seq, "error", err.Error())
		return nil, cp
	}
	enc, err := rec.MarshalBinary()
	if err != nil {
		s.log.Warn("cannot encode a record for its leaf input", "seq", rec.Seq, "error", err.Error())
		return nil, cp
	}
	input := append(enc, rec.MAC[:]...)
	if err := merkle.VerifyInclusion(proof, merkle.LeafData(input), cp.RootHash); err != nil {
		s.log.Error("an inclusion proof does not verify against the latest checkpoint; not serving it", "seq", rec.Seq, "error", err.Error())
		return nil, cp
	}
	return &inclusionJSON{InclusionProof: proof, LeafInput: input}, cp
}

// consistencyResponse is the body of GET /v1/audit/consistency: the RFC
// 6962 consistency proof between two tree sizes.
type consistencyResponse struct {
	First  uint64        `json:"first"`
	Second uint64        `json:"second"`
	Hashes []merkle.Hash `json:"hashes"` // standard base64
}

// GET /v1/audit/consistency?first=N&second=M
func (s *Server) handleConsistency(w http.ResponseWriter, r *http.Request, _ httprouter.Params, p Principal) error {
	if !p.CanRead() {
		return forbidden("role %s may not read the audit log (admin or auditor may)", p.Role)
	}
	cp, ok := s.store.(ConsistencyProver)
	if !ok {
		return httpErr(http.StatusNotImplemented, "this store keeps no Merkle tree to prove consistency with")
	}
	vals, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return badRequest("the query string is malformed: %v", err)
	}
	var sizes [2]uint64
	for k := range vals {
		if k != "first" && k != "second" {
			return badRequest("parameter %s: unknown parameter (known: first, second)", k)
		}
	}
	for i, name := range [2]string{"first", "second"} {
		vs := vals[name]
		if len(vs) != 1 {
			return badRequest("parameter %s: give it once (a tree size: a whole number of records)", name)
		}
		n, err := strconv.ParseUint(vs[0], 10, 64)
		if err != nil || vs[0][0] == '+' {
			return badRequest("parameter %s: %q is not a tree size (a whole number of records)", name, vs[0])
		}
		sizes[i] = n
	}
	if sizes[0] > sizes[1] {
		return badRequest("parameter first: %d is larger than second %d (a log only grows)", sizes[0], sizes[1])
	}
	if err := s.storeOK(); err != nil {
		return err
	}
	if last := s.lastSeq(); sizes[1] > last {
		return badRequest("parameter second: %d is larger than the log, which holds %d records", sizes[1], last)
	}
	proof, err := cp.ConsistencyProof(r.Context(), sizes[0], sizes[1])
	if errors.Is(err, engine.ErrNotFound) {
		return badRequest("%s", trimPrefix(err, engine.ErrNotFound))
	}
	if err != nil {
		return s.storeErr(err)
	}
	hashes := proof.Hashes
	if hashes == nil {
		hashes = []merkle.Hash{}
	}
	writeJSON(w, http.StatusOK, consistencyResponse{First: proof.Size1, Second: proof.Size2, Hashes: hashes})
	return nil
}

// POST /v1/audit/checkpoints
func (s *Server) handleSignCheckpoint(w http.ResponseWriter, r *http.Request, _ httprouter.Params, p Principal) error {
	if p.Role != RoleAdmin {
		return forbidden("role %s may not sign checkpoints (admin may)", p.Role)
	}
	signer, ok := s.store.(CheckpointSigner)
	if !ok {
		return httpErr(http.StatusNotImplemented, "this store signs no checkpoints")
	}
	if err := s.storeOK(); err != nil {
		return err
	}
	cp, err := signer.SignCheckpoint(r.Context())
	if errors.Is(err, engine.ErrNoSigner) {
		return httpErr(http.StatusNotImplemented, "this store has no checkpoint signing key")
	}
	if err != nil {
		return s.storeErr(err)
	}
	s.log.Info("checkpoint signed on request", "id", stateOf(r).id, "principal", p.Name, "tree_size", cp.Size)
	writeJSON(w, http.StatusOK, toCheckpointJSON(cp))
	return nil
}

// notAllowed is the 405 of a path served by other methods only.
func notAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow))
}
