package merkle

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"github.com/vellumlog/vellum"
)

// Wire constants (RFC 6962 section 2.1). Do not change.
const (
	// HashSize is the size of every hash in the tree.
	HashSize = sha256.Size
	// LeafPrefix is prepended to a leaf's data before hashing.
	LeafPrefix = 0x00
	// NodePrefix is prepended to two child hashes before hashing.
	NodePrefix = 0x01
)

// Hash is a node or leaf hash. Its text form is lower-case hex; checkpoints
// and proofs carry it in standard base64.
type Hash [HashSize]byte

// String returns h in lower-case hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Base64 returns h in standard base64, as checkpoints carry it.
func (h Hash) Base64() string { return base64.StdEncoding.EncodeToString(h[:]) }

// MarshalText encodes h in standard base64.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.Base64()), nil }

// UnmarshalText decodes standard base64 of exactly HashSize bytes, strictly
// (padding bits zero), so one hash has one text form.
func (h *Hash) UnmarshalText(b []byte) error {
	var buf [HashSize + 3]byte
	if base64.StdEncoding.EncodedLen(HashSize) != len(b) {
		return fmt.Errorf("%w: hash is %d base64 characters, want %d", ErrProof, len(b), base64.StdEncoding.EncodedLen(HashSize))
	}
	n, err := base64.StdEncoding.Strict().Decode(buf[:], b)
	if err != nil || n != HashSize {
		return fmt.Errorf("%w: hash is not base64 of %d bytes", ErrProof, HashSize)
	}
	copy(h[:], buf[:n])
	return nil
}

// EmptyRoot is the root of the tree with no leaves: SHA-256 of nothing
// (RFC 6962: MTH({}) = SHA-256()).
var EmptyRoot = Hash(sha256.Sum256(nil))

// LeafHash returns the leaf hash of a record: SHA-256(0x00 || encoded ||
// mac), where encoded is the record's canonical encoding and mac its chain
// MAC. Committing to the MAC as well as the content means the tree also
// fixes the chain: a checkpoint pins every record and every MAC.
func LeafHash(encoded []byte, mac vellum.MAC) Hash {
	var h Hasher
	return h.Leaf(encoded, mac)
}

// Hasher computes leaf hashes reusing a buffer; the zero value is ready.
// Not safe for concurrent use.
type Hasher struct {
	buf []byte
}

// Leaf returns LeafHash(encoded, mac).
func (x *Hasher) Leaf(encoded []byte, mac vellum.MAC) Hash {
	// One contiguous buffer and a one-shot sum: cheaper than a streaming
	// hash's Reset, three Writes and Sum for records of a few hundred
	// bytes.
	x.buf = append(append(append(x.buf[:0], LeafPrefix), encoded...), mac[:]...)
	return sha256.Sum256(x.buf)
}

// LeafData hashes arbitrary leaf data: SHA-256(0x00 || data). It is
// LeafHash for data = encoding || MAC, and what the RFC 6962 test vectors
// use.
func LeafData(data []byte) Hash {
	var b []byte
	b = append(append(b, LeafPrefix), data...)
	return sha256.Sum256(b)
}

// NodeHash returns SHA-256(0x01 || left || right).
func NodeHash(left, right Hash) Hash {
	var b [1 + 2*HashSize]byte
	b[0] = NodePrefix
	copy(b[1:], left[:])
	copy(b[1+HashSize:], right[:])
	return sha256.Sum256(b[:])
}

// nodeBytes is NodeHash on slices, for the transparency-dev interfaces.
func nodeBytes(left, right []byte) []byte {
	var b [1 + 2*HashSize]byte
	b[0] = NodePrefix
	copy(b[1:], left)
	copy(b[1+HashSize:], right)
	s := sha256.Sum256(b[:])
	return s[:]
}

// LogHasher is the RFC 6962 SHA-256 hasher in the form
// github.com/transparency-dev/merkle's proof functions take.
var LogHasher logHasher

type logHasher struct{}

func (logHasher) EmptyRoot() []byte { return EmptyRoot[:] }
func (logHasher) HashLeaf(leaf []byte) []byte {
	h := LeafData(leaf)
	return h[:]
}
func (logHasher) HashChildren(l, r []byte) []byte { return nodeBytes(l, r) }
func (logHasher) Size() int                       { return HashSize }
