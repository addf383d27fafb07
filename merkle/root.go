package merkle

import (
	"crypto/sha256"
	"hash"
	"math/bits"
)

// RootBuilder computes the RFC 6962 root of a list of leaf hashes as they
// are appended, keeping only the O(log n) roots of its perfect subtrees. It
// is the compact range [0, n) without node reporting or merging, made for
// the hot paths (a segment's own tree) where it costs no allocation. The
// zero value is an empty tree. Not safe for concurrent use.
type RootBuilder struct {
	n     uint64
	stack [64]Hash // roots of perfect subtrees, largest first
	top   int
	h     hash.Hash
	buf   [1 + 2*HashSize]byte
	sum   [HashSize]byte
}

func (b *RootBuilder) node(l, r *Hash) Hash {
	if b.h == nil {
		b.h = sha256.New()
		b.buf[0] = NodePrefix
	}
	copy(b.buf[1:], l[:])
	copy(b.buf[1+HashSize:], r[:])
	b.h.Reset()
	b.h.Write(b.buf[:])
	// Sum into a field: a local array would escape through the
	// interface call and cost an allocation per node.
	b.h.Sum(b.sum[:0])
	return b.sum
}

// Append adds the next leaf hash.
func (b *RootBuilder) Append(leaf Hash) {
	b.stack[b.top] = leaf
	b.top++
	// Every trailing one bit of n is a subtree of equal size to merge.
	for m := bits.TrailingZeros64(^b.n); m > 0; m-- {
		b.top--
		b.stack[b.top-1] = b.node(&b.stack[b.top-1], &b.stack[b.top])
	}
	b.n++
}

// Size returns the number of leaves.
func (b *RootBuilder) Size() uint64 { return b.n }

// Root returns the root of the tree (EmptyRoot when empty).
func (b *RootBuilder) Root() Hash {
	if b.top == 0 {
		return EmptyRoot
	}
	h := b.stack[b.top-1]
	for i := b.top - 2; i >= 0; i-- {
		h = b.node(&b.stack[i], &h)
	}
	return h
}
