// Package merkle computes the RFC 6962 Merkle trees that let an auditor
// check Vellum records without the HMAC key: leaf hashes of records, the
// per-segment tree whose root goes into a segment's trailer, the log-wide
// tree that signed checkpoints commit to, the nodes a segment's footer
// stores so that proofs are cheap, and inclusion and consistency proofs.
//
//	leaf := merkle.LeafHash(encoded, mac) // SHA-256(0x00 || encoding || MAC)
//	r := merkle.NewRange(0)
//	r.Append(leaf, nil)
//	root := r.Root()
//
//	p, err := merkle.ProveInclusion(src, seq-1, size) // src: stored nodes + leaves
//	err = merkle.VerifyInclusion(p, leaf, root)      // *RootMismatchError when it fails
//
// Hashing follows RFC 6962 section 2.1 (leaf prefix 0x00, node prefix 0x01,
// SHA-256); compact ranges and proof shapes come from
// github.com/transparency-dev/merkle, which implements exactly that. The
// leaf definition and the footer section are specified in
// segment/FORMAT.md ("Merkle trees").
//
// Functions are pure and safe for concurrent use. A Range and a Hasher are
// not safe for concurrent use.
package merkle
