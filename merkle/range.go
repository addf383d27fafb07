package merkle

import (
	"crypto/sha256"
	"fmt"
	"hash"

	"github.com/transparency-dev/merkle/compact"
)

// Stride is the level spacing of the nodes a segment footer stores: every
// complete node at level 8, 16, 24, ... of the log-wide tree. Any node is
// then at most 255 hashes away from stored ones (or from 255 leaves), which
// keeps proofs cheap while storing 32 bytes per 256 records. Wire
// constant: do not change.
const Stride = 8

// StoredLevel reports whether complete nodes at level are kept in segment
// footers.
func StoredLevel(level uint) bool { return level >= Stride && level%Stride == 0 }

// Node is one node of the log-wide tree: its level (0 for leaves), its
// index within the level, and its hash.
type Node struct {
	Level uint
	Index uint64
	Hash  Hash
}

// Range is a compact range [Begin, End) of the tree: the roots of the
// fewest perfect subtrees that cover those leaves, left to right. It grows
// by appending leaves or other ranges, reporting every node it completes.
//
// Appending a leaf, the hot path of the engine and the verifier, is done
// here without allocating: the new leaf merges with the range's last root
// while that root is its left sibling, as in
// github.com/transparency-dev/merkle/compact, whose Range does the merging
// of two ranges (AppendRange) and against which the tests check this.
// Not safe for concurrent use.
type Range struct {
	begin, end uint64
	hashes     []Hash
	h          hash.Hash // reused for node hashes
	buf        [1 + 2*HashSize]byte
	sum        Hash
}

// NewRange returns an empty range starting at leaf index begin.
func NewRange(begin uint64) *Range {
	return &Range{begin: begin, end: begin, hashes: make([]Hash, 0, 64)}
}

// RangeFrom rebuilds the range [begin, end) from its hashes, left to right.
func RangeFrom(begin, end uint64, hashes []Hash) (*Range, error) {
	if end < begin || len(hashes) != compact.RangeSize(begin, end) {
		return nil, fmt.Errorf("%w: %d hashes for range [%d, %d), want %d", ErrSection, len(hashes), begin, end, compact.RangeSize(begin, end))
	}
	r := NewRange(begin)
	r.end = end
	r.hashes = append(r.hashes, hashes...)
	return r, nil
}

func (r *Range) node(l, rt *Hash) Hash {
	if r.h == nil {
		r.h = sha256.New()
		r.buf[0] = NodePrefix
	}
	copy(r.buf[1:], l[:])
	copy(r.buf[1+HashSize:], rt[:])
	r.h.Reset()
	r.h.Write(r.buf[:])
	// Sum into a field: a local array would escape through the
	// interface call and cost an allocation per node.
	r.h.Sum(r.sum[:0])
	return r.sum
}

// Begin returns the first leaf index of the range.
func (r *Range) Begin() uint64 { return r.begin }

// End returns one past the last leaf index of the range.
func (r *Range) End() uint64 { return r.end }

// Hashes returns a copy of the range's subtree roots, left to right.
func (r *Range) Hashes() []Hash { return append([]Hash(nil), r.hashes...) }

// Clone returns an independent copy.
func (r *Range) Clone() *Range {
	c := NewRange(r.begin)
	c.end = r.end
	c.hashes = append(c.hashes, r.hashes...)
	return c
}

// Append adds the next leaf hash. visit, when non-nil, is called for the
// leaf (level 0) and every node the append completes.
func (r *Range) Append(leaf Hash, visit func(Node)) {
	if visit != nil {
		visit(Node{Level: 0, Index: r.end, Hash: leaf})
	}
	cur, idx, level := leaf, r.end, uint(0)
	// The node at (level, idx) merges with its left sibling while that
	// sibling is the range's last root: idx is odd and the sibling starts
	// at or after begin.
	for idx&1 == 1 && len(r.hashes) > 0 && (idx-1)<<level >= r.begin {
		n := len(r.hashes) - 1
		cur = r.node(&r.hashes[n], &cur)
		r.hashes = r.hashes[:n]
		idx >>= 1
		level++
		if visit != nil {
			visit(Node{Level: level, Index: idx, Hash: cur})
		}
	}
	r.hashes = append(r.hashes, cur)
	r.end++
}

func (r *Range) compact(f *compact.RangeFactory) (*compact.Range, error) {
	hs := make([][]byte, len(r.hashes))
	for i := range r.hashes {
		h := r.hashes[i]
		hs[i] = h[:]
	}
	return f.NewRange(r.begin, r.end, hs)
}

// AppendStored is Append calling visit only for the stored-level nodes
// (see StoredLevel) the append completes: what a segment footer keeps.
func (r *Range) AppendStored(leaf Hash, visit func(Node)) {
	cur, idx, level := leaf, r.end, uint(0)
	for idx&1 == 1 && len(r.hashes) > 0 && (idx-1)<<level >= r.begin {
		n := len(r.hashes) - 1
		cur = r.node(&r.hashes[n], &cur)
		r.hashes = r.hashes[:n]
		idx >>= 1
		level++
		if level%Stride == 0 {
			visit(Node{Level: level, Index: idx, Hash: cur})
		}
	}
	r.hashes = append(r.hashes, cur)
	r.end++
}

// AppendRange merges other, which must begin where r ends, into r. visit,
// when non-nil, is called for every node the merge completes.
func (r *Range) AppendRange(other *Range, visit func(Node)) error {
	f := &compact.RangeFactory{Hash: nodeBytes}
	a, err := r.compact(f)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSection, err)
	}
	b, err := other.compact(f)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSection, err)
	}
	var v compact.VisitFn
	if visit != nil {
		v = func(id compact.NodeID, h []byte) {
			n := Node{Level: id.Level, Index: id.Index}
			copy(n.Hash[:], h)
			visit(n)
		}
	}
	if err := a.AppendRange(b, v); err != nil {
		return fmt.Errorf("%w: %v", ErrSection, err)
	}
	r.end = a.End()
	r.hashes = r.hashes[:0]
	for _, h := range a.Hashes() {
		r.hashes = append(r.hashes, Hash(h))
	}
	return nil
}

// Root returns the root of the tree [0, End). The range must begin at 0.
// The empty tree's root is EmptyRoot.
func (r *Range) Root() Hash {
	if r.begin != 0 {
		panic("merkle: Root of a range that does not begin at 0")
	}
	if len(r.hashes) == 0 {
		return EmptyRoot
	}
	h := r.hashes[len(r.hashes)-1]
	for i := len(r.hashes) - 2; i >= 0; i-- {
		h = r.node(&r.hashes[i], &h)
	}
	return h
}
