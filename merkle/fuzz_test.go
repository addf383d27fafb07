package merkle

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzDecodeInclusion feeds arbitrary bytes to the inclusion proof decoder:
// it must never panic, and whatever it accepts must have the shape its
// sizes require, re-encode to an equivalent proof, and be safe to verify.
func FuzzDecodeInclusion(f *testing.F) {
	leaves := randLeaves(9, 5)
	src := memSource{leaves: leaves}
	for _, c := range [][2]uint64{{0, 1}, {3, 9}, {8, 9}} {
		p, _ := ProveInclusion(src, c[0], c[1])
		b, _ := json.Marshal(p)
		f.Add(b)
	}
	f.Add([]byte(`{"leaf_index":0,"tree_size":0,"hashes":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeInclusion(b)
		if err != nil {
			return
		}
		if p.Index >= p.Size || len(p.Hashes) > 64 {
			t.Fatalf("accepted a malformed proof: %+v", p)
		}
		again, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		q, err := DecodeInclusion(again)
		if err != nil || q.Index != p.Index || q.Size != p.Size || len(q.Hashes) != len(p.Hashes) {
			t.Fatalf("re-encoded proof does not decode the same: %v", err)
		}
		_ = VerifyInclusion(p, leaves[0], EmptyRoot)
	})
}

// FuzzDecodeConsistency does the same for consistency proofs.
func FuzzDecodeConsistency(f *testing.F) {
	leaves := randLeaves(9, 6)
	src := memSource{leaves: leaves}
	for _, c := range [][2]uint64{{0, 9}, {4, 9}, {5, 9}, {9, 9}} {
		p, _ := ProveConsistency(src, c[0], c[1])
		b, _ := json.Marshal(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeConsistency(b)
		if err != nil {
			return
		}
		if p.Size1 > p.Size2 || len(p.Hashes) > 128 {
			t.Fatalf("accepted a malformed proof: %+v", p)
		}
		_ = VerifyConsistency(p, EmptyRoot, EmptyRoot)
	})
}

// FuzzParseSection feeds arbitrary bytes to the footer section parser: it
// must never panic or over-allocate, and what it accepts re-encodes to the
// same bytes.
func FuzzParseSection(f *testing.F) {
	log := NewLog(NewRange(0))
	for _, l := range randLeaves(600, 7) {
		log.Append(l)
	}
	_, sec, _ := log.Seal()
	b, _ := sec.MarshalBinary()
	f.Add(b)
	empty, _ := (&Section{}).MarshalBinary()
	f.Add(empty)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSection(b)
		if err != nil {
			return
		}
		again, _ := s.MarshalBinary()
		if !bytes.Equal(again, b) {
			t.Fatalf("section re-encodes differently")
		}
		if _, err := RangeFrom(0, s.Size, s.Range); err != nil {
			t.Fatalf("accepted range does not rebuild: %v", err)
		}
	})
}
