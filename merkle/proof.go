package merkle

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"

	tdproof "github.com/transparency-dev/merkle/proof"
)

// InclusionProof proves that the leaf at Index is in the tree of Size
// leaves: the sibling hashes from the leaf up to the root (RFC 6962 section
// 2.1.1). A record's leaf index is its seq minus one.
type InclusionProof struct {
	Index  uint64 `json:"leaf_index"`
	Size   uint64 `json:"tree_size"`
	Hashes []Hash `json:"hashes"`
}

// ConsistencyProof proves that the tree of Size1 leaves is a prefix of the
// tree of Size2 leaves (RFC 6962 section 2.1.2): the log only grew.
type ConsistencyProof struct {
	Size1  uint64 `json:"tree_size_1"`
	Size2  uint64 `json:"tree_size_2"`
	Hashes []Hash `json:"hashes"`
}

// inclusionLen is the number of hashes of an inclusion proof.
func inclusionLen(index, size uint64) int {
	inner := bits.Len64(index ^ (size - 1))
	return inner + bits.OnesCount64(index>>uint(inner))
}

// consistencyLen is the number of hashes of a consistency proof.
func consistencyLen(size1, size2 uint64) int {
	if size1 == 0 || size1 == size2 {
		return 0
	}
	inner := bits.Len64((size1 - 1) ^ (size2 - 1))
	shift := bits.TrailingZeros64(size1)
	border := bits.OnesCount64((size1 - 1) >> uint(inner))
	n := inner - shift + border
	if size1 != 1<<uint(shift) {
		n++
	}
	return n
}

// Check reports whether the proof has the shape its sizes require.
func (p *InclusionProof) Check() error {
	if p.Index >= p.Size {
		return fmt.Errorf("%w: leaf index %d is not below tree size %d", ErrProof, p.Index, p.Size)
	}
	if want := inclusionLen(p.Index, p.Size); len(p.Hashes) != want {
		return fmt.Errorf("%w: inclusion proof of leaf %d in tree size %d has %d hashes, want %d", ErrProof, p.Index, p.Size, len(p.Hashes), want)
	}
	return nil
}

// Check reports whether the proof has the shape its sizes require.
func (p *ConsistencyProof) Check() error {
	if p.Size1 > p.Size2 {
		return fmt.Errorf("%w: tree size %d is larger than %d", ErrProof, p.Size1, p.Size2)
	}
	if want := consistencyLen(p.Size1, p.Size2); len(p.Hashes) != want {
		return fmt.Errorf("%w: consistency proof from %d to %d has %d hashes, want %d", ErrProof, p.Size1, p.Size2, len(p.Hashes), want)
	}
	return nil
}

// maxProofJSON bounds what the decoders read: a proof never has more than
// 128 hashes.
const maxProofJSON = 16 << 10

// DecodeInclusion parses the JSON form of an inclusion proof and checks
// its shape.
func DecodeInclusion(b []byte) (*InclusionProof, error) {
	if len(b) > maxProofJSON {
		return nil, fmt.Errorf("%w: %d bytes", ErrProof, len(b))
	}
	var p InclusionProof
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProof, err)
	}
	if err := p.Check(); err != nil {
		return nil, err
	}
	return &p, nil
}

// DecodeConsistency parses the JSON form of a consistency proof and checks
// its shape.
func DecodeConsistency(b []byte) (*ConsistencyProof, error) {
	if len(b) > maxProofJSON {
		return nil, fmt.Errorf("%w: %d bytes", ErrProof, len(b))
	}
	var p ConsistencyProof
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProof, err)
	}
	if err := p.Check(); err != nil {
		return nil, err
	}
	return &p, nil
}

func byteSlices(hs []Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// RootFromInclusion returns the root that proof p and leaf hash leaf
// imply.
func RootFromInclusion(p *InclusionProof, leaf Hash) (Hash, error) {
	if err := p.Check(); err != nil {
		return Hash{}, err
	}
	r, err := tdproof.RootFromInclusionProof(LogHasher, p.Index, p.Size, leaf[:], byteSlices(p.Hashes))
	if err != nil {
		return Hash{}, fmt.Errorf("%w: %v", ErrProof, err)
	}
	var h Hash
	copy(h[:], r)
	return h, nil
}

// VerifyInclusion checks that leaf is at p.Index in the tree of p.Size
// leaves whose root is root. It needs no key. A proof that leads to another
// root fails with a *RootMismatchError.
func VerifyInclusion(p *InclusionProof, leaf, root Hash) error {
	calc, err := RootFromInclusion(p, leaf)
	if err != nil {
		return err
	}
	if calc != root {
		return &RootMismatchError{Expected: root, Calculated: calc}
	}
	return nil
}

// VerifyConsistency checks that the tree of p.Size1 leaves with root root1
// is a prefix of the tree of p.Size2 leaves with root root2.
func VerifyConsistency(p *ConsistencyProof, root1, root2 Hash) error {
	if err := p.Check(); err != nil {
		return err
	}
	if p.Size1 == 0 {
		return nil // the empty tree is a prefix of every tree
	}
	if p.Size1 == p.Size2 {
		if root1 != root2 {
			return &RootMismatchError{Expected: root1, Calculated: root2}
		}
		return nil
	}
	err := tdproof.VerifyConsistency(LogHasher, p.Size1, p.Size2, byteSlices(p.Hashes), root1[:], root2[:])
	var rm tdproof.RootMismatchError
	if errors.As(err, &rm) {
		e := &RootMismatchError{}
		copy(e.Expected[:], rm.ExpectedRoot)
		copy(e.Calculated[:], rm.CalculatedRoot)
		return e
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrProof, err)
	}
	return nil
}
