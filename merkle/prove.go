package merkle

import (
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	tdproof "github.com/transparency-dev/merkle/proof"
)

// Source is what a prover reads: stored-level nodes where they are kept,
// and leaf hashes (computed from records) for the levels below. A store
// implements it over its segment footers and records.
type Source interface {
	// StoredNode returns complete node (level, index) if it is stored;
	// ok is false when it is not (the prover then computes it from the
	// level below).
	StoredNode(level uint, index uint64) (h Hash, ok bool, err error)
	// Leaves returns the leaf hashes of leaf indices [from, to).
	Leaves(from, to uint64) ([]Hash, error)
}

// prover computes nodes from a Source, fetching each 256-leaf block of
// leaves once.
type prover struct {
	src       Source
	blk       uint64 // index of the cached leaf block, valid when leaves != nil
	leaves    []Hash
	blockSize uint64 // leaves per cached block
}

func newProver(src Source) *prover { return &prover{src: src, blockSize: 1 << Stride} }

// leafRange returns leaves [from, to); ranges inside one aligned block are
// served from a cached read of the whole block (up to size).
func (p *prover) leafRange(from, to, size uint64) ([]Hash, error) {
	b := from / p.blockSize
	if (to-1)/p.blockSize != b {
		return p.src.Leaves(from, to)
	}
	if p.leaves == nil || p.blk != b {
		lo, hi := b*p.blockSize, min((b+1)*p.blockSize, size)
		ls, err := p.src.Leaves(lo, hi)
		if err != nil {
			return nil, err
		}
		if uint64(len(ls)) != hi-lo {
			return nil, fmt.Errorf("merkle: source returned %d leaves for [%d, %d)", len(ls), lo, hi)
		}
		p.blk, p.leaves = b, ls
	}
	base := b * p.blockSize
	return p.leaves[from-base : to-base], nil
}

// node returns the hash of complete node (level, index) of a tree of at
// least size leaves.
func (p *prover) node(level uint, index uint64, size uint64) (Hash, error) {
	if level >= 64 || (index+1)<<level > size || (index+1)<<level == 0 {
		return Hash{}, fmt.Errorf("%w: node (%d, %d) is not complete in a tree of %d leaves", ErrSize, level, index, size)
	}
	if StoredLevel(level) {
		h, ok, err := p.src.StoredNode(level, index)
		if err != nil {
			return Hash{}, err
		}
		if ok {
			return h, nil
		}
	}
	if level == 0 {
		ls, err := p.leafRange(index, index+1, size)
		if err != nil {
			return Hash{}, err
		}
		return ls[0], nil
	}
	// Compute from the nearest lower stored level (or the leaves).
	base := (level - 1) / Stride * Stride
	n := uint64(1) << (level - base)
	var hs []Hash
	if base == 0 {
		ls, err := p.leafRange(index<<level, (index+1)<<level, size)
		if err != nil {
			return Hash{}, err
		}
		hs = append([]Hash(nil), ls...)
	} else {
		hs = make([]Hash, n)
		for i := range hs {
			h, err := p.node(base, index<<(level-base)+uint64(i), size)
			if err != nil {
				return Hash{}, err
			}
			hs[i] = h
		}
	}
	for len(hs) > 1 {
		for i := 0; i < len(hs)/2; i++ {
			hs[i] = NodeHash(hs[2*i], hs[2*i+1])
		}
		hs = hs[:len(hs)/2]
	}
	return hs[0], nil
}

// NodeAt returns the hash of complete node (level, index) of a tree of
// size leaves, reading what it needs from src.
func NodeAt(src Source, level uint, index, size uint64) (Hash, error) {
	return newProver(src).node(level, index, size)
}

// RangeAt returns the compact range [0, size) built from src.
func RangeAt(src Source, size uint64) (*Range, error) {
	p := newProver(src)
	ids := compact.RangeNodes(0, size, nil)
	hs := make([]Hash, len(ids))
	for i, id := range ids {
		h, err := p.node(id.Level, id.Index, size)
		if err != nil {
			return nil, err
		}
		hs[i] = h
	}
	return RangeFrom(0, size, hs)
}

// RootAt returns the root of the tree of size leaves.
func RootAt(src Source, size uint64) (Hash, error) {
	r, err := RangeAt(src, size)
	if err != nil {
		return Hash{}, err
	}
	return r.Root(), nil
}

func (p *prover) fetch(n tdproof.Nodes, size uint64) ([]Hash, error) {
	hs := make([][]byte, len(n.IDs))
	for i, id := range n.IDs {
		h, err := p.node(id.Level, id.Index, size)
		if err != nil {
			return nil, err
		}
		hs[i] = h[:]
	}
	out, err := n.Rehash(hs, nodeBytes)
	if err != nil {
		return nil, err
	}
	res := make([]Hash, len(out))
	for i := range out {
		copy(res[i][:], out[i])
	}
	return res, nil
}

// ProveInclusion returns the inclusion proof of leaf index in the tree of
// size leaves.
func ProveInclusion(src Source, index, size uint64) (*InclusionProof, error) {
	n, err := tdproof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProof, err)
	}
	hs, err := newProver(src).fetch(n, size)
	if err != nil {
		return nil, err
	}
	return &InclusionProof{Index: index, Size: size, Hashes: hs}, nil
}

// ProveConsistency returns the consistency proof from the tree of size1
// leaves to the tree of size2 leaves.
func ProveConsistency(src Source, size1, size2 uint64) (*ConsistencyProof, error) {
	n, err := tdproof.Consistency(size1, size2)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProof, err)
	}
	hs, err := newProver(src).fetch(n, size2)
	if err != nil {
		return nil, err
	}
	return &ConsistencyProof{Size1: size1, Size2: size2, Hashes: hs}, nil
}
