package chain

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"

	"github.com/vellumlog/vellum"
)

// genesisLabel is the domain separator of the genesis value. Wire constant:
// do not change.
const genesisLabel = "vellum chain genesis v1\x00"

// Genesis returns the chain value before the first record of a store:
// SHA-256("vellum chain genesis v1\x00" || storeID || keyID). It needs no
// secret, so anyone can recompute it from a segment header.
func Genesis(storeID [16]byte, id KeyID) vellum.MAC {
	h := sha256.New()
	h.Write([]byte(genesisLabel))
	h.Write(storeID[:])
	h.Write(id[:])
	var m vellum.MAC
	h.Sum(m[:0])
	return m
}

// Hasher computes chain MACs under one key, reusing its state between
// records (hmac.New's keyed state is restored by Reset, not recomputed). It
// is not safe for concurrent use.
type Hasher struct {
	mac hash.Hash
	// prev and buf are scratch space: writing prev from here rather than
	// from Next's argument keeps that argument on the stack (an interface
	// call's argument escapes), one allocation less per record.
	prev vellum.MAC
	buf  [sha256.Size]byte
}

// NewHasher returns a Hasher for k.
func (k *Key) NewHasher() *Hasher {
	return &Hasher{mac: hmac.New(sha256.New, k.secret)}
}

// Next returns HMAC-SHA256(key, prev || encoded): the MAC of the record
// whose canonical encoding is encoded and whose predecessor's MAC is prev.
func (h *Hasher) Next(prev vellum.MAC, encoded []byte) vellum.MAC {
	h.mac.Reset()
	h.prev = prev
	h.mac.Write(h.prev[:])
	h.mac.Write(encoded)
	var m vellum.MAC
	copy(m[:], h.mac.Sum(h.buf[:0]))
	return m
}

// Check recomputes the MAC of the record at seq and returns a
// *MismatchError if found differs.
func (h *Hasher) Check(seq uint64, prev vellum.MAC, encoded []byte, found vellum.MAC) (vellum.MAC, error) {
	want := h.Next(prev, encoded)
	if !hmac.Equal(want[:], found[:]) {
		return want, &MismatchError{Seq: seq, Expected: want, Found: found}
	}
	return want, nil
}
