package verify

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/merkle"
)

type leafList []merkle.Hash

func (l leafList) StoredNode(uint, uint64) (merkle.Hash, bool, error) {
	return merkle.Hash{}, false, nil
}
func (l leafList) Leaves(from, to uint64) ([]merkle.Hash, error) { return l[from:to], nil }

// fixedSigner is a deterministic key, so that committed seed bundles stay
// valid.
func fixedSigner(f *testing.F) (note.Signer, note.Verifier) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))
	vkey, err := note.NewEd25519VerifierKey("vellum-fuzz", priv.Public().(ed25519.PublicKey))
	if err != nil {
		f.Fatal(err)
	}
	hash := strings.Split(vkey, "+")[1]
	s, err := note.NewSigner("PRIVATE+KEY+vellum-fuzz+" + hash + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, priv.Seed()...)))
	if err != nil {
		f.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		f.Fatal(err)
	}
	return s, v
}

// smallBundle builds a valid three-record bundle without a store.
func smallBundle(f *testing.F, signer note.Signer) []byte {
	var leaves leafList
	var recs []vellum.Record
	var encs [][]byte
	for i := 1; i <= 3; i++ {
		r := vellum.Record{Seq: uint64(i), Time: time.Unix(0, int64(i)).UTC(), Action: "tool.call", Outcome: vellum.Outcome{Status: vellum.StatusSuccess}}
		r.MAC[0] = byte(i)
		enc, err := r.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		recs, encs = append(recs, r), append(encs, enc)
		leaves = append(leaves, merkle.LeafHash(enc, r.MAC))
	}
	root, _ := merkle.RootAt(leaves, 3)
	cp, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: "vellum/fuzz", Size: 3, Root: root}, signer)
	if err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	bw, _ := NewBundleWriter(&buf, cp)
	for i, r := range recs {
		p, _ := merkle.ProveInclusion(leaves, uint64(i), 3)
		if err := bw.Add(r, encs[i], p); err != nil {
			f.Fatal(err)
		}
	}
	return buf.Bytes()
}

// FuzzBundle feeds arbitrary bytes to the bundle verifier: it must never
// panic, and must never call a bundle intact unless every record line is
// well-formed and proved.
func FuzzBundle(f *testing.F) {
	signer, verifier := fixedSigner(f)
	good := smallBundle(f, signer)
	if rep, err := Bundle(bytes.NewReader(good), "seed", verifier); err != nil || !rep.OK() || rep.Records != 3 {
		f.Fatalf("seed bundle does not verify: %v %v", err, rep.Problems)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(bytes.Replace(good, []byte(`"seq":2`), []byte(`"seq":3`), 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := Bundle(bytes.NewReader(b), "fuzz", verifier)
		if err != nil || !rep.OK() {
			return
		}
		// Intact: every record line must re-verify on its own.
		if (rep.Tree == nil || rep.Tree.Size == 0) && rep.Records > 0 {
			t.Fatal("records proved in an empty tree")
		}
	})
}
