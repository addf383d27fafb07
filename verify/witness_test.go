package verify

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/cosign"
	"github.com/vellumlog/vellum/merkle"
)

func newWitnessKey(t *testing.T, name string) *cosign.Signer {
	t.Helper()
	skey, _, err := cosign.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cosign.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// cosignNote adds the witnesses' cosignatures to a signed note.
func cosignNote(t *testing.T, msg []byte, ws ...*cosign.Signer) []byte {
	t.Helper()
	sn, err := checkpoint.ParseNote(msg)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		line, err := w.Cosign(sn.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		msg = cosign.Append(msg, line)
	}
	return msg
}

func TestDirWitness(t *testing.T) {
	f := getFixture(t)
	w1, w2 := newWitnessKey(t, "w1.test"), newWitnessKey(t, "w2.test")
	both := []note.Verifier{w1.Verifier(), w2.Verifier()}
	latest, _ := lastCheckpoint(t, f.dir)
	sn, _ := checkpoint.ParseNote(latest)
	// A checkpoint the store signed before its data was rolled back, and
	// one of a rewritten history of the same log.
	ahead, _ := checkpoint.Sign(checkpoint.Checkpoint{Origin: sn.Origin, Size: sn.Size + 50, Root: merkle.LeafData([]byte("more"))}, f.signer)
	rewritten, _ := checkpoint.Sign(checkpoint.Checkpoint{Origin: sn.Origin, Size: 300, Root: merkle.LeafData([]byte("other"))}, f.signer)
	byOther, _ := checkpoint.Sign(sn.Checkpoint, f.otherSign)
	// The rewrite is located after the store's largest checkpoint below
	// 300 records, whose root the data still matches.
	res, _ := checkpoint.ReadLog(nil, filepath.Join(f.dir, checkpoint.LogName))
	var below uint64
	for _, e := range res.Entries {
		if c, _ := checkpoint.ParseNote(e.Note); c.Size < 300 {
			below = max(below, c.Size)
		}
	}

	tests := []struct {
		name     string
		file     []byte         // cosigned-checkpoint in the data directory
		extra    []CosignedNote // Options.Cosigned
		quorum   int
		check    string // the first problem's check; "" for intact
		seq      uint64
		contains string
	}{
		{"cosigned by both", cosignNote(t, latest, w1, w2), nil, 0, "", 0, ""},
		{"one of two, quorum 1", cosignNote(t, latest, w2), nil, 1, "", 0, ""},
		{"one of two, quorum 2", cosignNote(t, latest, w1), nil, 2, CheckWitness, 0, "no checkpoint cosigned by the witnesses"},
		{"no cosigned checkpoint", nil, nil, 0, CheckWitness, 0, "no checkpoint cosigned"},
		{"rolled back: the witnesses saw more records", cosignNote(t, latest, w1, w2),
			[]CosignedNote{{"https://w1.test", cosignNote(t, ahead.Note, w1, w2)}}, 0, CheckWitness, sn.Size + 1,
			"were cut off after the store signed a checkpoint of"},
		{"rewritten after the witnesses cosigned", nil,
			[]CosignedNote{{"kept.txt", cosignNote(t, rewritten.Note, w1, w2)}}, 0, CheckWitness, below + 1, "were rewritten after it"},
		{"a cosigned checkpoint the store's key did not sign", nil,
			[]CosignedNote{{"forged.txt", cosignNote(t, byOther.Note, w1, w2)}}, 0, CheckSignature, 0, "not signed by key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := f.copyOf(t)
			if tt.file != nil {
				if err := os.WriteFile(filepath.Join(dir, cosign.CheckpointFile), tt.file, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := Dir(dir, &Options{Verifier: f.verifier, Witnesses: both, Quorum: tt.quorum, Cosigned: tt.extra})
			if err != nil {
				t.Fatal(err)
			}
			if tt.check == "" {
				if !rep.OK() || rep.Witnessed == nil || rep.Witnessed.TreeSize != sn.Size {
					t.Fatalf("problems %v, witnessed %+v", rep.Problems, rep.Witnessed)
				}
				return
			}
			p := rep.First()
			if p == nil || p.Check != tt.check || p.Seq != tt.seq || !strings.Contains(p.Detail, tt.contains) {
				t.Fatalf("first problem %v, want %s at seq %d mentioning %q (all: %v)", p, tt.check, tt.seq, tt.contains, rep.Problems)
			}
		})
	}
	t.Run("without witnesses the rolled-back store looks intact", func(t *testing.T) {
		rep, err := Dir(f.copyOf(t), &Options{Verifier: f.verifier})
		if err != nil || !rep.OK() {
			t.Fatalf("%v %v", err, rep.Problems)
		}
	})
	t.Run("witnesses need the store's key", func(t *testing.T) {
		if _, err := Dir(f.dir, &Options{Witnesses: both}); err == nil {
			t.Fatal("accepted")
		}
		if _, err := Dir(f.dir, &Options{Verifier: f.verifier, Witnesses: both, Quorum: 3}); err == nil {
			t.Fatal("quorum above the witnesses accepted")
		}
	})
}

func TestBundleWitnessed(t *testing.T) {
	f := getFixture(t)
	w1, w2 := newWitnessKey(t, "w1.test"), newWitnessKey(t, "w2.test")
	dir := f.copyOf(t)
	s, err := OpenStore(nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	latest, _ := lastCheckpoint(t, dir)
	cp, err := checkpoint.Open(cosignNote(t, latest, w1), f.verifier)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := ExportBundle(s, &buf, cp, 100, 120); err != nil {
		t.Fatal(err)
	}
	// The plain bundle check ignores the cosignature; the witnessed one
	// requires it.
	if rep, err := Bundle(bytes.NewReader(buf.Bytes()), "b", f.verifier); err != nil || !rep.OK() {
		t.Fatalf("%v %v", err, rep.Problems)
	}
	rep, err := BundleWitnessed(bytes.NewReader(buf.Bytes()), "b", f.verifier, []note.Verifier{w1.Verifier()}, 0)
	if err != nil || !rep.OK() || rep.Witnessed == nil || len(rep.Witnessed.Cosignatures) != 1 {
		t.Fatalf("%v %v %+v", err, rep.Problems, rep.Witnessed)
	}
	rep, err = BundleWitnessed(bytes.NewReader(buf.Bytes()), "b", f.verifier, []note.Verifier{w1.Verifier(), w2.Verifier()}, 2)
	if err != nil || rep.OK() || rep.First().Check != CheckWitness {
		t.Fatalf("a bundle cosigned by one of two passed quorum 2: %v %v", err, rep.Problems)
	}
}
