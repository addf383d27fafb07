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

// Pruned is a Source whose first leaves are gone: retention purged the
// records [0, P) (segment/FORMAT.md, "Retention"). Pruned returns the
// compact range [0, P), nil when nothing was purged. Every node a proof or
// root of a tree of at least P leaves needs over the purged leaves is one
// of its hashes, or is computed from them and later leaves, so proofs of
// surviving leaves keep working against any tree size ≥ P.
type Pruned interface {
	Pruned() *Range
}

type nodeID struct {
	level uint
	index uint64
}

// prover computes nodes from a Source, fetching each 256-leaf block of
// leaves once.
type prover struct {
	src       Source
	blk       uint64 // index of the cached leaf block, valid when leaves != nil
	leaves    []Hash
	base      uint64 // leaf index of leaves[0]
	blockSize uint64 // leaves per cached block
	cut       uint64 // leaves [0, cut) are purged
	prefix    map[nodeID]Hash
}

func newProver(src Source) *prover {
	p := &prover{src: src, blockSize: 1 << Stride}
	if ps, ok := src.(Pruned); ok {
		if r := ps.Pruned(); r != nil && r.End() > 0 {
			p.cut = r.End()
			p.prefix = map[nodeID]Hash{}
			for i, id := range compact.RangeNodes(0, r.End(), nil) {
				p.prefix[nodeID{id.Level, id.Index}] = r.hashes[i]
			}
		}
	}
	return p
}

// leafRange returns leaves [from, to); ranges inside one aligned block are
// served from a cached read of the whole block (up to size, and from the
// first leaf not purged).
func (p *prover) leafRange(from, to, size uint64) ([]Hash, error) {
	b := from / p.blockSize
	if (to-1)/p.blockSize != b {
		return p.src.Leaves(from, to)
	}
	if p.leaves == nil || p.blk != b {
		lo, hi := max(b*p.blockSize, p.cut), min((b+1)*p.blockSize, size)
		ls, err := p.src.Leaves(lo, hi)
		if err != nil {
			return nil, err
		}
		if uint64(len(ls)) != hi-lo {
			return nil, fmt.Errorf("merkle: source returned %d leaves for [%d, %d)", len(ls), lo, hi)
		}
		p.blk, p.leaves, p.base = b, ls, lo
	}
	return p.leaves[from-p.base : to-p.base], nil
}

// purgedNode returns node (level, index) when it covers purged leaves:
// one of the compact range's hashes, or, for a node that straddles the
// cut, the hash of its two children. ok is false for a node entirely
// after the cut.
func (p *prover) purgedNode(level uint, index, size uint64) (h Hash, ok bool, err error) {
	if p.cut == 0 || index<<level >= p.cut {
		return Hash{}, false, nil
	}
	if h, ok := p.prefix[nodeID{level, index}]; ok {
		return h, true, nil
	}
	if (index+1)<<level <= p.cut {
		return Hash{}, true, fmt.Errorf("%w: node (%d, %d) lies inside the %d purged leaves and is not kept", ErrPurged, level, index, p.cut)
	}
	if StoredLevel(level) {
		if h, ok, err := p.src.StoredNode(level, index); err != nil || ok {
			return h, true, err
		}
	}
	l, err := p.node(level-1, 2*index, size)
	if err != nil {
		return Hash{}, true, err
	}
	r, err := p.node(level-1, 2*index+1, size)
	if err != nil {
		return Hash{}, true, err
	}
	return NodeHash(l, r), true, nil
}

// node returns the hash of complete node (level, index) of a tree of at
// least size leaves.
func (p *prover) node(level uint, index uint64, size uint64) (Hash, error) {
	if level >= 64 || (index+1)<<level > size || (index+1)<<level == 0 {
		return Hash{}, fmt.Errorf("%w: node (%d, %d) is not complete in a tree of %d leaves", ErrSize, level, index, size)
	}
	if h, ok, err := p.purgedNode(level, index, size); ok {
		return h, err
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
