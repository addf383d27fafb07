package merkle

import (
	"errors"
	"fmt"
	"testing"

	tdproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// prunedSource serves only the leaves from cut on, and the compact range of
// the purged leaves [0, cut): a store after a retention purge.
type prunedSource struct {
	memSource
	cut    uint64
	prefix *Range
}

func (p prunedSource) Pruned() *Range { return p.prefix }

func (p prunedSource) Leaves(from, to uint64) ([]Hash, error) {
	if from < p.cut {
		return nil, fmt.Errorf("leaf %d is purged", from)
	}
	return p.memSource.Leaves(from, to)
}

func (p prunedSource) StoredNode(level uint, index uint64) (Hash, bool, error) {
	if index<<level < p.cut {
		return Hash{}, false, nil // segments holding them are gone
	}
	return p.memSource.StoredNode(level, index)
}

// TestPrunedProofs checks that after the leaves before a cut are purged,
// keeping only their compact range, every inclusion proof of a surviving
// leaf and every consistency proof from a size at or after the cut still
// verify, with transparency-dev/merkle's own verifier, for every cut.
func TestPrunedProofs(t *testing.T) {
	leaves := randLeaves(90, 4)
	for cut := uint64(1); cut < uint64(len(leaves)); cut++ {
		prefix := NewRange(0)
		for _, l := range leaves[:cut] {
			prefix.Append(l, nil)
		}
		src := prunedSource{memSource: memSource{leaves: leaves}, cut: cut, prefix: prefix}
		for size := cut; size <= uint64(len(leaves)); size++ {
			root := mth(leaves[:size])
			if got, err := RootAt(src, size); err != nil || got != root {
				t.Fatalf("cut %d: root of %d: %s, %v", cut, size, got, err)
			}
			for i := cut; i < size; i++ {
				p, err := ProveInclusion(src, i, size)
				if err != nil {
					t.Fatalf("cut %d: inclusion %d in %d: %v", cut, i, size, err)
				}
				hs := make([][]byte, len(p.Hashes))
				for j := range p.Hashes {
					hs[j] = p.Hashes[j][:]
				}
				if err := tdproof.VerifyInclusion(rfc6962.DefaultHasher, i, size, leaves[i][:], hs, root[:]); err != nil {
					t.Fatalf("cut %d: inclusion %d in %d: %v", cut, i, size, err)
				}
			}
			for s1 := cut; s1 <= size; s1++ {
				p, err := ProveConsistency(src, s1, size)
				if err != nil {
					t.Fatalf("cut %d: consistency %d to %d: %v", cut, s1, size, err)
				}
				if err := VerifyConsistency(p, mth(leaves[:s1]), root); err != nil {
					t.Fatalf("cut %d: consistency %d to %d: %v", cut, s1, size, err)
				}
			}
		}
		// A tree smaller than the cut is either given by the kept nodes
		// or refused with ErrPurged, never wrong.
		for size := uint64(1); size < cut; size++ {
			got, err := RootAt(src, size)
			if (err != nil && !errors.Is(err, ErrPurged)) || (err == nil && got != mth(leaves[:size])) {
				t.Fatalf("cut %d: root of %d from purged leaves: %s, %v", cut, size, got, err)
			}
		}
	}
}
