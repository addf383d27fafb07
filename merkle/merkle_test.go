package merkle

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/transparency-dev/merkle/compact"

	"github.com/vellumlog/vellum"
)

func hx(t testing.TB, s string) Hash {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != HashSize {
		t.Fatalf("bad hex %q", s)
	}
	var h Hash
	copy(h[:], b)
	return h
}

// rfcLeaves are the leaf inputs of the RFC 6962 test vectors used by
// certificate-transparency and transparency-dev/merkle.
var rfcLeaves = []string{"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"}

func rfcLeafHashes(t testing.TB) []Hash {
	out := make([]Hash, len(rfcLeaves))
	for i, s := range rfcLeaves {
		b, _ := hex.DecodeString(s)
		out[i] = LeafData(b)
	}
	return out
}

// TestRFC6962Roots pins the roots of the trees over the first n RFC 6962
// test leaves. Each is reproduced by:
//
//	python3 -c 'import hashlib as H;L=lambda d:H.sha256(b"\0"+d).digest();N=lambda a,b:H.sha256(b"\1"+a+b).digest();M=lambda x:L(x[0]) if len(x)==1 else N(M(x[:1<<((len(x)-1).bit_length()-1)]),M(x[1<<((len(x)-1).bit_length()-1):]));v=[bytes.fromhex(s) for s in ["","00","10","2021","3031","40414243","5051525354555657","606162636465666768696a6b6c6d6e6f"]];[print(n,M(v[:n]).hex()) for n in range(1,9)]'
//
// and the empty root by `sha256sum < /dev/null`.
func TestRFC6962Roots(t *testing.T) {
	want := []string{
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
		"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
		"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
		"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
		"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
		"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
		"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
		"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
	}
	leaves := rfcLeafHashes(t)
	r := NewRange(0)
	for n := 0; n <= len(leaves); n++ {
		if n > 0 {
			r.Append(leaves[n-1], nil)
		}
		if got := r.Root(); got != hx(t, want[n]) {
			t.Errorf("root of %d leaves = %s, want %s", n, got, want[n])
		}
	}
}

// TestRFC6962Proofs pins inclusion and consistency proofs over the RFC
// 6962 test leaves (the vectors of certificate-transparency's merkle
// tests). A proof's hashes are subtree roots, each reproduced with the
// one-liner above applied to the slice of leaves the node covers, e.g.
// M(v[0:1]) = 6e34.., M(v[2:4]) = 5f08.., M(v[4:8]) = 6b47...
func TestRFC6962Proofs(t *testing.T) {
	const (
		l0   = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
		l1   = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
		l4   = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
		l5   = "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"
		n01  = "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
		n23  = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
		n67  = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
		n45  = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"
		n03  = "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
		n47  = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
		root = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
	)
	src := memSource{leaves: rfcLeafHashes(t)}
	inclusion := []struct {
		index, size uint64
		want        []string
	}{
		{0, 1, nil},
		{0, 8, []string{l1, n23, n47}},
		{5, 8, []string{l4, n67, n03}},
		{2, 3, []string{n01}},
		{1, 5, []string{l0, n23, l4}},
	}
	for _, tc := range inclusion {
		t.Run(fmt.Sprintf("inclusion/%d-of-%d", tc.index, tc.size), func(t *testing.T) {
			p, err := ProveInclusion(src, tc.index, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			checkHashes(t, p.Hashes, tc.want)
			r, _ := RootAt(src, tc.size)
			if err := VerifyInclusion(p, src.leaves[tc.index], r); err != nil {
				t.Fatal(err)
			}
		})
	}
	consistency := []struct {
		size1, size2 uint64
		want         []string
	}{
		{1, 1, nil},
		{1, 8, []string{l1, n23, n47}},
		{6, 8, []string{n45, n67, n03}},
		{2, 5, []string{n23, l4}},
	}
	for _, tc := range consistency {
		t.Run(fmt.Sprintf("consistency/%d-to-%d", tc.size1, tc.size2), func(t *testing.T) {
			p, err := ProveConsistency(src, tc.size1, tc.size2)
			if err != nil {
				t.Fatal(err)
			}
			checkHashes(t, p.Hashes, tc.want)
			r1, _ := RootAt(src, tc.size1)
			r2, _ := RootAt(src, tc.size2)
			if err := VerifyConsistency(p, r1, r2); err != nil {
				t.Fatal(err)
			}
		})
	}
	if r, _ := RootAt(src, 8); r != hx(t, root) {
		t.Fatalf("RootAt(8) = %s", r)
	}
	_ = l5
}

func checkHashes(t *testing.T, got []Hash, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d hashes, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("hash %d = %s, want %s", i, got[i], want[i])
		}
	}
}

// TestLeafHash pins the record leaf: SHA-256(0x00 || encoding || MAC).
//
//	python3 -c 'import hashlib;print(hashlib.sha256(b"\0"+b"record"+bytes(range(32))).hexdigest())'
func TestLeafHash(t *testing.T) {
	var mac vellum.MAC
	for i := range mac {
		mac[i] = byte(i)
	}
	want := "ab070bd36131f252fc8c22e4509ffe4665c23dc49bb48ed390046ba45643d828"
	got := LeafHash([]byte("record"), mac)
	if got != LeafData(append([]byte("record"), mac[:]...)) {
		t.Fatal("LeafHash differs from LeafData(encoding || MAC)")
	}
	if got.String() != want {
		t.Fatalf("LeafHash = %s, want %s", got, want)
	}
}

// mth is the naive RFC 6962 definition, the oracle for everything else.
func mth(leaves []Hash) Hash {
	switch len(leaves) {
	case 0:
		return EmptyRoot
	case 1:
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	return NodeHash(mth(leaves[:k]), mth(leaves[k:]))
}

func randLeaves(n int, seed uint64) []Hash {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]Hash, n)
	for i := range out {
		for j := range out[i] {
			out[i][j] = byte(rng.Uint32())
		}
	}
	return out
}

// memSource serves leaves from memory and, when stored is set, the
// stored-level nodes a Log recorded.
type memSource struct {
	leaves []Hash
	stored map[[2]uint64]Hash
	reads  *int
}

func (m memSource) StoredNode(level uint, index uint64) (Hash, bool, error) {
	h, ok := m.stored[[2]uint64{uint64(level), index}]
	return h, ok, nil
}

func (m memSource) Leaves(from, to uint64) ([]Hash, error) {
	if to > uint64(len(m.leaves)) {
		return nil, ErrSize
	}
	if m.reads != nil {
		*m.reads += int(to - from)
	}
	return m.leaves[from:to], nil
}

func TestRangeMatchesOracle(t *testing.T) {
	leaves := randLeaves(300, 1)
	r := NewRange(0)
	for n := 0; n <= len(leaves); n++ {
		if n > 0 {
			r.Append(leaves[n-1], nil)
		}
		if got, want := r.Root(), mth(leaves[:n]); got != want {
			t.Fatalf("n=%d: root %s, want %s", n, got, want)
		}
	}
	// Pieces merged in any split give the same range.
	for _, split := range []int{0, 1, 7, 128, 255, 256, 299, 300} {
		a, b := NewRange(0), NewRange(uint64(split))
		for i, l := range leaves {
			if i < split {
				a.Append(l, nil)
			} else {
				b.Append(l, nil)
			}
		}
		if err := a.AppendRange(b, nil); err != nil {
			t.Fatal(err)
		}
		if a.Root() != r.Root() {
			t.Fatalf("split %d: merged root differs", split)
		}
		c := a.Clone()
		c.Append(leaves[0], nil)
		if a.Root() != r.Root() {
			t.Fatal("Clone shares state")
		}
	}
}

func TestProofsAgainstOracle(t *testing.T) {
	leaves := randLeaves(70, 2)
	src := memSource{leaves: leaves}
	for size := uint64(1); size <= uint64(len(leaves)); size++ {
		root := mth(leaves[:size])
		for i := uint64(0); i < size; i++ {
			p, err := ProveInclusion(src, i, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyInclusion(p, leaves[i], root); err != nil {
				t.Fatalf("inclusion %d in %d: %v", i, size, err)
			}
			// The wrong leaf fails with a typed error naming both roots.
			err = VerifyInclusion(p, leaves[(i+1)%size], root)
			var rm *RootMismatchError
			if size > 1 && (!errors.As(err, &rm) || rm.Expected != root || rm.Calculated == root) {
				t.Fatalf("inclusion %d in %d with the wrong leaf: %v", i, size, err)
			}
		}
		for s1 := uint64(0); s1 <= size; s1++ {
			p, err := ProveConsistency(src, s1, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyConsistency(p, mth(leaves[:s1]), root); err != nil {
				t.Fatalf("consistency %d to %d: %v", s1, size, err)
			}
			if s1 > 0 && s1 < size {
				bad := mth(leaves[1 : s1+1])
				if err := VerifyConsistency(p, bad, root); !errors.Is(err, ErrRootMismatch) {
					t.Fatalf("consistency %d to %d with a wrong old root: %v", s1, size, err)
				}
			}
		}
	}
}

// TestStoredNodes checks that a Log records every stored-level node, that
// sections built by Seal hold exactly the nodes completed in them, and that
// proofs from stored nodes read few leaves and match the oracle.
func TestStoredNodes(t *testing.T) {
	const n = 70_000
	leaves := randLeaves(n, 3)
	log := NewLog(NewRange(0))
	stored := map[[2]uint64]Hash{}
	bounds := []uint64{0, 1000, 1001, 33_000, 65_536, n} // segment ends
	next := 1
	for i, l := range leaves {
		log.Append(l)
		if uint64(i+1) == bounds[next] {
			root, sec, err := log.Seal()
			if err != nil {
				t.Fatal(err)
			}
			if want := mth(leaves[bounds[next-1]:bounds[next]]); root != want {
				t.Fatalf("segment %d root %s, want %s", next, root, want)
			}
			b, _ := sec.MarshalBinary()
			back, err := ParseSection(b)
			if err != nil {
				t.Fatal(err)
			}
			if back.Size != bounds[next] || len(back.Levels) != len(sec.Levels) {
				t.Fatalf("section round trip: %+v", back)
			}
			rr, err := RangeFrom(0, back.Size, back.Range)
			if err != nil || rr.Root() != mth(leaves[:back.Size]) {
				t.Fatalf("section range does not give the root at %d: %v", back.Size, err)
			}
			for _, l := range back.Levels {
				for j, h := range l.Hashes {
					stored[[2]uint64{uint64(l.Level), l.First + uint64(j)}] = h
				}
			}
			next++
		}
	}
	if len(stored) != n/256+n/65536 {
		t.Fatalf("%d stored nodes, want %d", len(stored), n/256+n/65536)
	}
	for k, h := range stored {
		lo := k[1] << k[0]
		if want := mth(leaves[lo : lo+1<<k[0]]); h != want {
			t.Fatalf("stored node %v wrong", k)
		}
	}
	reads := 0
	src := memSource{leaves: leaves, stored: stored, reads: &reads}
	for _, tc := range [][2]uint64{{0, n}, {12345, n}, {n - 1, n}, {65535, 65537}, {500, 33_000}} {
		reads = 0
		p, err := ProveInclusion(src, tc[0], tc[1])
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyInclusion(p, leaves[tc[0]], mth(leaves[:tc[1]])); err != nil {
			t.Fatalf("inclusion %v: %v", tc, err)
		}
		if reads > 2*256 {
			t.Fatalf("inclusion %v read %d leaves; stored nodes should bound it by 512", tc, reads)
		}
	}
	p, err := ProveConsistency(src, 33_000, n)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyConsistency(p, mth(leaves[:33_000]), mth(leaves)); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeProofs(t *testing.T) {
	leaves := randLeaves(10, 4)
	src := memSource{leaves: leaves}
	p, _ := ProveInclusion(src, 3, 10)
	b, err := jsonMarshal(p)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeInclusion(b)
	if err != nil || back.Index != 3 || back.Size != 10 || len(back.Hashes) != len(p.Hashes) || back.Hashes[0] != p.Hashes[0] {
		t.Fatalf("round trip: %v %+v", err, back)
	}
	bad := []struct{ name, in string }{
		{"index beyond size", `{"leaf_index":10,"tree_size":10,"hashes":[]}`},
		{"too few hashes", `{"leaf_index":3,"tree_size":10,"hashes":[]}`},
		{"not base64", `{"leaf_index":0,"tree_size":2,"hashes":["!!"]}`},
		{"short hash", `{"leaf_index":0,"tree_size":2,"hashes":["AAAA"]}`},
		{"not json", `leaf 3`},
	}
	for _, tc := range bad {
		if _, err := DecodeInclusion([]byte(tc.in)); !errors.Is(err, ErrProof) {
			t.Errorf("%s: err = %v, want ErrProof", tc.name, err)
		}
	}
	if _, err := DecodeConsistency([]byte(`{"tree_size_1":5,"tree_size_2":3,"hashes":[]}`)); !errors.Is(err, ErrProof) {
		t.Errorf("shrinking consistency proof accepted: %v", err)
	}
}

func BenchmarkLeafAndRanges(b *testing.B) {
	rec := make([]byte, 350)
	var mac vellum.MAC
	var h Hasher
	g, s := NewRange(0), NewRange(0)
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		l := h.Leaf(rec, mac)
		g.Append(l, nil)
		s.Append(l, nil)
	}
}

func TestRootBuilderMatchesOracle(t *testing.T) {
	leaves := randLeaves(600, 9)
	var b RootBuilder
	if b.Root() != EmptyRoot {
		t.Fatal("empty root")
	}
	for n := 1; n <= len(leaves); n++ {
		b.Append(leaves[n-1])
		if got, want := b.Root(), mth(leaves[:n]); got != want || b.Size() != uint64(n) {
			t.Fatalf("n=%d: root %s, want %s", n, got, want)
		}
	}
}

// TestRangeAppendMatchesLibrary checks the allocation-free Append against
// transparency-dev's compact.Range: same hashes and the same visited
// nodes, from any starting index.
func TestRangeAppendMatchesLibrary(t *testing.T) {
	leaves := randLeaves(300, 10)
	f := &compact.RangeFactory{Hash: nodeBytes}
	for _, begin := range []uint64{0, 1, 5, 64, 255, 1000, 1<<20 + 3} {
		ours := NewRange(begin)
		lib := f.NewEmptyRange(begin)
		var got, want []Node
		for _, l := range leaves {
			ours.Append(l, func(n Node) { got = append(got, n) })
			lib.Append(append([]byte(nil), l[:]...), func(id compact.NodeID, h []byte) {
				want = append(want, Node{Level: id.Level, Index: id.Index, Hash: Hash(h)})
			})
			lh := lib.Hashes()
			if len(lh) != len(ours.hashes) {
				t.Fatalf("begin %d end %d: %d hashes, library %d", begin, ours.End(), len(ours.hashes), len(lh))
			}
			for i := range lh {
				if Hash(lh[i]) != ours.hashes[i] {
					t.Fatalf("begin %d end %d: hash %d differs", begin, ours.End(), i)
				}
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("begin %d: visited nodes differ", begin)
		}
	}
}

func TestAppendStoredVisitsStoredLevels(t *testing.T) {
	leaves := randLeaves(70_000, 11)
	a, b := NewRange(300), NewRange(300)
	var all, stored []Node
	for _, l := range leaves {
		a.Append(l, func(n Node) {
			if StoredLevel(n.Level) {
				all = append(all, n)
			}
		})
		b.AppendStored(l, func(n Node) { stored = append(stored, n) })
	}
	if !reflect.DeepEqual(all, stored) || len(stored) == 0 || !reflect.DeepEqual(a.Hashes(), b.Hashes()) {
		t.Fatalf("AppendStored visited %d nodes, Append %d stored-level ones", len(stored), len(all))
	}
}
