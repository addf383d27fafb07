package checkpoint

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum/merkle"
	"github.com/vellumlog/vellum/vfs"
)

// fixedKey returns a deterministic key pair named name from a seed byte.
func fixedKey(t testing.TB, name string, seed byte) (note.Signer, note.Verifier, string) {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	vkey, err := note.NewEd25519VerifierKey(name, priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(vkey, "+")
	skey := "PRIVATE+KEY+" + name + "+" + parts[1] + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, priv.Seed()...))
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v, vkey
}

func sample() Checkpoint {
	return Checkpoint{Origin: "vellum/00112233445566778899aabbccddeeff", Size: 8, Root: merkle.LeafData(nil)}
}

// TestSignedNoteKnownAnswer pins the exact verifier key and signed note
// for the Ed25519 key with seed 07 x32 (Ed25519 signatures are
// deterministic), so neither format can drift. Reproduced by:
//
//	python3 -c 'import hashlib,base64;from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey as K;from cryptography.hazmat.primitives.serialization import Encoding as E,PublicFormat as P;k=K.from_private_bytes(bytes([7])*32);pub=k.public_key().public_bytes(E.Raw,P.Raw);h=hashlib.sha256(b"vellum-test\n\x01"+pub).digest()[:4];body=b"vellum/00112233445566778899aabbccddeeff\n8\nbjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=\n";print(h.hex(),base64.b64encode(b"\x01"+pub).decode(),base64.b64encode(h+k.sign(body)).decode())'
//
// (key hash, base64 of 0x01 || public key, signature line's base64).
func TestSignedNoteKnownAnswer(t *testing.T) {
	s, v, vkey := fixedKey(t, "vellum-test", 7)
	if vkey != "vellum-test+5e8707ba+AepKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs" {
		t.Fatalf("verifier key %q", vkey)
	}
	signed, err := Sign(sample(), s)
	if err != nil {
		t.Fatal(err)
	}
	const want = "vellum/00112233445566778899aabbccddeeff\n8\nbjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=\n" +
		"\n— vellum-test XocHup4bVM5mFxpHpHToGpBxiDPemkQafB0RAa8n4UQE4NrSGUhZd6f6c0+noSCNeJBBRYe8mwNhhDIyCOG/Jcy2iws=\n"
	if string(signed.Note) != want {
		t.Fatalf("note = %q", signed.Note)
	}
	got, err := Open(signed.Note, v)
	if err != nil {
		t.Fatal(err)
	}
	if got.Origin != sample().Origin || got.Size != 8 || got.Root != sample().Root {
		t.Fatalf("opened %+v", got.Checkpoint)
	}
	again, _ := Sign(sample(), s)
	if !bytes.Equal(again.Note, signed.Note) {
		t.Fatal("Ed25519 note signatures should be deterministic")
	}
}

func TestOpenRejects(t *testing.T) {
	s, v, _ := fixedKey(t, "vellum-test", 7)
	other, _, _ := fixedKey(t, "vellum-test", 8)
	otherName, _, _ := fixedKey(t, "intruder", 9)
	good, _ := Sign(sample(), s)
	byOther, _ := Sign(sample(), other)
	byOtherName, _ := Sign(sample(), otherName)
	flipped := bytes.Clone(good.Note)
	flipped[len(body(good.Note))-3] ^= 1 // a character of the root
	sigFlip := bytes.Clone(good.Note)
	i := bytes.LastIndexByte(sigFlip[:len(sigFlip)-1], ' ') + 10
	sigFlip[i] = 'A' + (sigFlip[i]-'A'+1)%26
	tests := []struct {
		name string
		msg  []byte
		want error
	}{
		{"signed by another key with the same name", byOther.Note, ErrSignature},
		{"signed by another key", byOtherName.Note, ErrSignature},
		{"body changed", flipped, ErrSignature},
		{"signature changed", sigFlip, ErrSignature},
		{"no signature", []byte(body(good.Note)), ErrMalformed},
		{"garbage", []byte("\x00\x01"), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Open(tt.msg, v); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func body(msg []byte) string {
	i := bytes.Index(msg, []byte("\n\n"))
	return string(msg[:i+1])
}

func TestParseBody(t *testing.T) {
	root := sample().Root.Base64()
	tests := []struct {
		name, body string
		ok         bool
	}{
		{"minimal", "o\n0\n" + root + "\n", true},
		{"extension", "o\n5\n" + root + "\nts 123\n", true},
		{"leading zero", "o\n05\n" + root + "\n", false},
		{"plus sign", "o\n+5\n" + root + "\n", false},
		{"negative", "o\n-5\n" + root + "\n", false},
		{"no final newline", "o\n5\n" + root, false},
		{"short root", "o\n5\nAAAA\n", false},
		{"space in origin", "a b\n5\n" + root + "\n", false},
		{"plus in origin", "a+b\n5\n" + root + "\n", false},
		{"empty origin", "\n5\n" + root + "\n", false},
		{"empty extension", "o\n5\n" + root + "\n\n", false},
		{"two lines", "o\n5\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.body))
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v", err)
			}
			if err == nil && string(c.Marshal()) != tt.body {
				t.Fatalf("re-marshals to %q", c.Marshal())
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("err %v is not ErrMalformed", err)
			}
		})
	}
}

func TestConsistency(t *testing.T) {
	var leaves []merkle.Hash
	r := merkle.NewRange(0)
	var cps []Checkpoint
	for i := 0; i < 20; i++ {
		l := merkle.LeafData([]byte{byte(i)})
		leaves = append(leaves, l)
		r.Append(l, nil)
		cps = append(cps, Checkpoint{Origin: "o", Size: uint64(i + 1), Root: r.Root()})
	}
	src := leafSource(leaves)
	p, err := merkle.ProveConsistency(src, 7, 20)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckConsistency(cps[6], cps[19], p); err != nil {
		t.Fatal(err)
	}
	forged := cps[19]
	forged.Root = cps[18].Root
	var ie *InconsistentError
	if err := CheckConsistency(cps[6], forged, p); !errors.As(err, &ie) || ie.Old.Size != 7 {
		t.Fatalf("forged new root: %v", err)
	}
	if err := CheckGrowth(cps[10], cps[5]); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("shrinking log: %v", err)
	}
	if err := CheckGrowth(cps[5], Checkpoint{Origin: "o", Size: 6, Root: cps[4].Root}); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("same size, other root: %v", err)
	}
}

type leafSource []merkle.Hash

func (s leafSource) StoredNode(uint, uint64) (merkle.Hash, bool, error) {
	return merkle.Hash{}, false, nil
}
func (s leafSource) Leaves(from, to uint64) ([]merkle.Hash, error) { return s[from:to], nil }

func TestLogRecovery(t *testing.T) {
	s, v, _ := fixedKey(t, "vellum-test", 7)
	fs := vfs.NewMem()
	fs.MkdirAll("/d", 0o755)
	path := "/d/" + LogName
	l, res, err := OpenLog(fs, path)
	if err != nil || len(res.Entries) != 0 {
		t.Fatalf("new log: %v %+v", err, res)
	}
	var notes [][]byte
	for i := 1; i <= 3; i++ {
		c := sample()
		c.Size = uint64(i)
		signed, _ := Sign(c, s)
		if err := l.Append(signed); err != nil {
			t.Fatal(err)
		}
		notes = append(notes, signed.Note)
	}
	l.Close()
	whole, _ := vfs.ReadFile(fs, path)

	t.Run("reads back", func(t *testing.T) {
		res, err := ReadLog(fs, path)
		if err != nil || len(res.Entries) != 3 || res.TornAt != -1 {
			t.Fatalf("%v %+v", err, res)
		}
		for i, e := range res.Entries {
			if !bytes.Equal(e.Note, notes[i]) {
				t.Fatalf("entry %d differs", i)
			}
			if _, err := Open(e.Note, v); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("torn final entry is cut after a copy", func(t *testing.T) {
		cut := whole[:len(whole)-5]
		fs2 := vfs.NewMem()
		fs2.MkdirAll("/d", 0o755)
		writeMem(t, fs2, path, cut)
		l2, res, err := OpenLog(fs2, path)
		if err != nil || len(res.Entries) != 2 || res.TornAt < 0 {
			t.Fatalf("%v %+v", err, res)
		}
		l2.Close()
		after, _ := vfs.ReadFile(fs2, path)
		if int64(len(after)) != res.TornAt {
			t.Fatalf("file is %d bytes after recovery, want %d", len(after), res.TornAt)
		}
		names, _ := fs2.ReadDir("/d")
		if len(names) != 2 || !strings.HasPrefix(names[1], LogName+".broken-") {
			t.Fatalf("no .broken copy: %v", names)
		}
	})
	t.Run("damage before a valid entry is corruption", func(t *testing.T) {
		bad := bytes.Clone(whole)
		bad[20] ^= 1
		fs3 := vfs.NewMem()
		fs3.MkdirAll("/d", 0o755)
		writeMem(t, fs3, path, bad)
		_, _, err := OpenLog(fs3, path)
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Offset != 0 || ce.Path != path {
			t.Fatalf("err = %v", err)
		}
		after, _ := vfs.ReadFile(fs3, path)
		if !bytes.Equal(after, bad) {
			t.Fatal("a corrupt log was changed")
		}
	})
}

func writeMem(t *testing.T, fs *vfs.Mem, path string, b []byte) {
	t.Helper()
	f, err := fs.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(b)
	f.Sync()
	f.Close()
	fs.SyncDir(filepath.Dir(path))
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	priv, pub, err := GenerateKey("vellum-test")
	if err != nil {
		t.Fatal(err)
	}
	pp, vp := filepath.Join(dir, PrivateKeyFile), filepath.Join(dir, PublicKeyFile)
	if err := WriteKeyPair(pp, vp, priv, pub); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyPair(pp, vp, priv, pub); err == nil {
		t.Fatal("overwrote a key pair")
	}
	fi, _ := os.Stat(pp)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %o", fi.Mode().Perm())
	}
	s, err := LoadSigner(pp)
	if err != nil {
		t.Fatal(err)
	}
	v, err := LoadVerifier(vp)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := Sign(sample(), s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(signed.Note, v); err != nil {
		t.Fatal(err)
	}
	os.Chmod(pp, 0o640)
	if _, err := LoadSigner(pp); !errors.Is(err, ErrKeyFileMode) {
		t.Fatalf("group-readable key: %v", err)
	}
	pubText, _ := os.ReadFile(vp)
	if strings.Contains(string(pubText), "PRIVATE") || strings.Count(string(pubText), "\n") != 1 {
		t.Fatalf("public key file %q", pubText)
	}
}
