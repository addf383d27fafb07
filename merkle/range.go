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
// fewest perfect subtrees that cover those leaves. It grows by appending
// leaves or other ranges, reporting every node it completes. Not safe for
// concurrent use.
type Range struct {
	r     *compact.Range
	fac   *compact.RangeFactory
	slab  []byte // backing store for new node hashes, to spare an allocation per node
	visit func(Node)
	cv    compact.VisitFn // calls visit; built once so appends do not allocate
	h     hash.Hash       // reused for node hashes
	buf   [1 + 2*HashSize]byte
}

// NewRange returns an empty range starting at leaf index begin.
func NewRange(begin uint64) *Range {
	r := &Range{}
	r.fac = &compact.RangeFactory{Hash: r.hash}
	r.r = r.fac.NewEmptyRange(begin)
	return r
}

// RangeFrom rebuilds the range [begin, end) from its hashes, left to right.
func RangeFrom(begin, end uint64, hashes []Hash) (*Range, error) {
	r := &Range{}
	r.fac = &compact.RangeFactory{Hash: r.hash}
	hs := make([][]byte, len(hashes))
	for i := range hashes {
		h := hashes[i]
		hs[i] = h[:]
	}
	cr, err := r.fac.NewRange(begin, end, hs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSection, err)
	}
	r.r = cr
	return r, nil
}

// hash computes a node into the range's slab.
func (r *Range) hash(left, right []byte) []byte {
	if len(r.slab) < HashSize {
		r.slab = make([]byte, 256*HashSize)
	}
	if r.h == nil {
		r.h = sha256.New()
		r.buf[0] = NodePrefix
	}
	copy(r.buf[1:], left)
	copy(r.buf[1+HashSize:], right)
	r.h.Reset()
	r.h.Write(r.buf[:])
	out := r.h.Sum(r.slab[:0:HashSize])
	r.slab = r.slab[HashSize:]
	return out
}

// Begin returns the first leaf index of the range.
func (r *Range) Begin() uint64 { return r.r.Begin() }

// End returns one past the last leaf index of the range.
func (r *Range) End() uint64 { return r.r.End() }

// Hashes returns copies of the range's subtree roots, left to right.
func (r *Range) Hashes() []Hash {
	hs := r.r.Hashes()
	out := make([]Hash, len(hs))
	for i := range hs {
		copy(out[i][:], hs[i])
	}
	return out
}

// Clone returns an independent copy.
func (r *Range) Clone() *Range {
	c, err := RangeFrom(r.Begin(), r.End(), r.Hashes())
	if err != nil {
		panic(err) // a valid range always rebuilds
	}
	return c
}

// Append adds the next leaf hash. visit, when non-nil, is called for the
// leaf (level 0) and every node the append completes.
func (r *Range) Append(leaf Hash, visit func(Node)) {
	h := r.own(leaf)
	var err error
	if visit == nil {
		err = r.r.Append(h, nil)
	} else {
		if r.cv == nil {
			r.cv = func(id compact.NodeID, h []byte) {
				n := Node{Level: id.Level, Index: id.Index}
				copy(n.Hash[:], h)
				r.visit(n)
			}
		}
		r.visit = visit
		err = r.r.Append(h, r.cv)
	}
	if err != nil {
		panic(err) // appending a leaf cannot fail
	}
}

func (r *Range) own(h Hash) []byte {
	if len(r.slab) < HashSize {
		r.slab = make([]byte, 256*HashSize)
	}
	out := r.slab[:HashSize:HashSize]
	copy(out, h[:])
	r.slab = r.slab[HashSize:]
	return out
}

func visitor(visit func(Node)) compact.VisitFn {
	return func(id compact.NodeID, h []byte) {
		n := Node{Level: id.Level, Index: id.Index}
		copy(n.Hash[:], h)
		visit(n)
	}
}

// AppendRange merges other, which must begin where r ends, into r. visit,
// when non-nil, is called for every node the merge completes.
func (r *Range) AppendRange(other *Range, visit func(Node)) error {
	// compact.Range merges only ranges of one factory: view other's
	// hashes through r's.
	o, err := r.fac.NewRange(other.Begin(), other.End(), other.r.Hashes())
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSection, err)
	}
	var v compact.VisitFn
	if visit != nil {
		v = visitor(visit)
	}
	if err := r.r.AppendRange(o, v); err != nil {
		return fmt.Errorf("%w: %v", ErrSection, err)
	}
	return nil
}

// Root returns the root of the tree [0, End). The range must begin at 0.
// The empty tree's root is EmptyRoot.
func (r *Range) Root() Hash {
	if r.Begin() != 0 {
		panic("merkle: Root of a range that does not begin at 0")
	}
	if r.End() == 0 {
		return EmptyRoot
	}
	h, err := r.r.GetRootHash(nil)
	if err != nil {
		panic(err)
	}
	var out Hash
	copy(out[:], h)
	return out
}
