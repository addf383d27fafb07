package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/merkle"
)

// LatestCheckpoint returns the last signed checkpoint, or false when none
// was signed yet (or no Signer is configured).
func (e *Engine) LatestCheckpoint() (checkpoint.Signed, bool) { return e.tree.latest() }

// SignCheckpoint signs a checkpoint of every record durable so far (unless
// the latest already covers them) and returns it. On a closed engine it
// returns the latest checkpoint, which Close signed, or ErrClosed.
func (e *Engine) SignCheckpoint(ctx context.Context) (checkpoint.Signed, error) {
	if e.opts.Signer == nil {
		return checkpoint.Signed{}, ErrNoSigner
	}
	err := e.Err()
	if err == nil {
		var s checkpoint.Signed
		if s, err = e.tree.sign(ctx); err == nil {
			return s, nil
		}
	}
	if errors.Is(err, ErrClosed) {
		if s, ok := e.LatestCheckpoint(); ok {
			return s, nil
		}
	}
	return checkpoint.Signed{}, err
}

// TreeHead returns the size and root of the log-wide tree as far as the
// tree goroutine has hashed (it trails the durable log by at most the
// batches in flight).
func (e *Engine) TreeHead() (uint64, merkle.Hash) { return e.tree.head() }

// InclusionProof proves that the record with seq is in the tree of size
// records (0: the latest signed checkpoint's size). Verify it with
// merkle.VerifyInclusion against that checkpoint's root and the record's
// leaf hash, merkle.LeafHash(encoding, MAC); no key is needed.
func (e *Engine) InclusionProof(ctx context.Context, seq, size uint64) (*merkle.InclusionProof, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if size == 0 {
		s, ok := e.LatestCheckpoint()
		if !ok {
			return nil, fmt.Errorf("%w: no signed checkpoint yet", ErrNotFound)
		}
		size = s.Size
	}
	if last := e.LastSeq(); size > last {
		return nil, fmt.Errorf("%w: tree size %d, the store holds %d records", ErrNotFound, size, last)
	}
	if seq == 0 || seq > size {
		return nil, fmt.Errorf("%w: seq %d is not in the tree of %d records", ErrNotFound, seq, size)
	}
	p, err := merkle.ProveInclusion(e.tree.source(), seq-1, size)
	if err != nil {
		return nil, fmt.Errorf("engine: inclusion proof of seq %d: %w", seq, err)
	}
	return p, nil
}

// ConsistencyProof proves that the tree of size1 records is a prefix of
// the tree of size2 records.
func (e *Engine) ConsistencyProof(ctx context.Context, size1, size2 uint64) (*merkle.ConsistencyProof, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if last := e.LastSeq(); size2 > last || size1 > size2 {
		return nil, fmt.Errorf("%w: consistency from %d to %d, the store holds %d records", ErrNotFound, size1, size2, last)
	}
	p, err := merkle.ProveConsistency(e.tree.source(), size1, size2)
	if err != nil {
		return nil, fmt.Errorf("engine: consistency proof %d to %d: %w", size1, size2, err)
	}
	return p, nil
}
