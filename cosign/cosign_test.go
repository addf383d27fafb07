package cosign

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	tdnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/merkle"
)

// fixedWitness returns a witness key pair from a seed byte.
func fixedWitness(t testing.TB, name string, seed byte) (*Signer, string, string) {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	h := keyHash(name, pub)
	skey := fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, h, base64.StdEncoding.EncodeToString(append([]byte{Alg}, priv.Seed()...)))
	vkey := fmt.Sprintf("%s+%08x+%s", name, h, base64.StdEncoding.EncodeToString(append([]byte{Alg}, pub...)))
	s, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	s.Now = func() time.Time { return time.Unix(1700000000, 0) }
	return s, skey, vkey
}

// logKey returns a log's checkpoint signer and verifier.
func logKey(t testing.TB) (note.Signer, note.Verifier) {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	vkey, err := note.NewEd25519VerifierKey("vellum", priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	h := strings.Split(vkey, "+")[1]
	s, err := note.NewSigner("PRIVATE+KEY+vellum+" + h + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, priv.Seed()...)))
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func signedCheckpoint(t testing.TB, size uint64) checkpoint.Signed {
	t.Helper()
	s, _ := logKey(t)
	c := checkpoint.Checkpoint{Origin: "vellum/00112233445566778899aabbccddeeff", Size: size, Root: merkle.LeafData([]byte{byte(size)})}
	sn, err := checkpoint.Sign(c, s)
	if err != nil {
		t.Fatal(err)
	}
	return sn
}

// TestKnownAnswer pins the signed message and signature line for a fixed
// key and time (Ed25519 is deterministic). The message layout is the one
// C2SP tlog-cosignature gives: "cosignature/v1\ntime <T>\n" + body.
func TestKnownAnswer(t *testing.T) {
	s, _, vkey := fixedWitness(t, "witness.example/w1", 9)
	body := []byte("vellum/00112233445566778899aabbccddeeff\n8\nbjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=\n")
	if got := string(Message(1700000000, body)); got != "cosignature/v1\ntime 1700000000\n"+string(body) {
		t.Fatalf("message %q", got)
	}
	line, err := s.Cosign(body)
	if err != nil {
		t.Fatal(err)
	}
	// The line's bytes: key hash, big-endian timestamp, signature over the message.
	raw, _ := base64.StdEncoding.DecodeString(strings.Fields(string(line))[2])
	if len(raw) != 4+8+64 || binary.BigEndian.Uint32(raw) != s.KeyHash() || binary.BigEndian.Uint64(raw[4:]) != 1700000000 {
		t.Fatalf("signature bytes %x", raw)
	}
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	if !bytes.Equal(raw[12:], ed25519.Sign(priv, Message(1700000000, body))) {
		t.Fatal("signature is not Ed25519 over the cosignature/v1 message")
	}
	v, err := NewVerifier(vkey)
	if err != nil || v.String() != vkey || v.KeyHash() != s.KeyHash() {
		t.Fatalf("verifier %v %v", v, err)
	}
}

// TestIndependentVerifier checks our cosignatures with transparency-dev's
// implementation (github.com/transparency-dev/formats/note, by the authors
// of the C2SP spec), and theirs with ours, from the same key strings.
func TestIndependentVerifier(t *testing.T) {
	s, skey, vkey := fixedWitness(t, "witness.example/w1", 9)
	sn := signedCheckpoint(t, 42)
	_, logV := logKey(t)

	line, err := s.Cosign(sn.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	cosigned := Append(sn.Note, line)

	theirV, err := tdnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if theirV.KeyHash() != s.KeyHash() || theirV.Name() != s.Name() {
		t.Fatalf("key hash %08x (theirs) vs %08x (ours)", theirV.KeyHash(), s.KeyHash())
	}
	n, err := note.Open(cosigned, note.VerifierList(theirV, logV))
	if err != nil {
		t.Fatalf("transparency-dev rejects our cosignature: %v", err)
	}
	if len(n.Sigs) != 2 {
		t.Fatalf("verified %d signatures, want the log's and the witness's", len(n.Sigs))
	}
	ts, err := tdnote.CoSigV1Timestamp(n.Sigs[1])
	if err != nil || ts.Unix() != 1700000000 {
		t.Fatalf("timestamp %v %v", ts, err)
	}
	// A changed body fails their verifier too.
	forged := bytes.Replace(cosigned, []byte("\n42\n"), []byte("\n43\n"), 1)
	if _, err := note.Open(forged, note.VerifierList(theirV)); err == nil {
		t.Fatal("transparency-dev accepted a cosignature over another body")
	}

	// Their signer with our private key string; our verifier accepts it.
	theirS, err := tdnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := note.Sign(&note.Note{Text: string(sn.Marshal())}, theirS)
	if err != nil {
		t.Fatal(err)
	}
	ourV, _ := NewVerifier(vkey)
	c, err := Open(Append(sn.Note, lastLine(theirs)), logV, []note.Verifier{ourV}, 1)
	if err != nil {
		t.Fatalf("our verifier rejects transparency-dev's cosignature: %v", err)
	}
	if len(c.Cosignatures) != 1 || c.Cosignatures[0].Witness != ourV.ID() {
		t.Fatalf("cosignatures %+v", c.Cosignatures)
	}
}

func lastLine(msg []byte) []byte {
	i := bytes.LastIndexByte(msg[:len(msg)-1], '\n')
	return msg[i+1:]
}

func TestOpenQuorum(t *testing.T) {
	w1, _, vk1 := fixedWitness(t, "w1", 1)
	w2, _, vk2 := fixedWitness(t, "w2", 2)
	_, _, vk3 := fixedWitness(t, "w3", 3)
	v1, _ := NewVerifier(vk1)
	v2, _ := NewVerifier(vk2)
	v3, _ := NewVerifier(vk3)
	ws := []note.Verifier{v1, v2, v3}
	_, logV := logKey(t)
	sn := signedCheckpoint(t, 10)
	l1, _ := w1.Cosign(sn.Marshal())
	l2, _ := w2.Cosign(sn.Marshal())
	other := signedCheckpoint(t, 11)
	l2other, _ := w2.Cosign(other.Marshal()) // w2's line for another checkpoint
	bad := l2other

	tests := []struct {
		name    string
		msg     []byte
		quorum  int
		have    int
		invalid int
		err     error
	}{
		{"two of three, quorum 2", Append(sn.Note, l1, l2), 2, 2, 0, nil},
		{"one of three, quorum 2", Append(sn.Note, l1), 2, 1, 0, ErrQuorum},
		{"no cosignature, quorum 1", sn.Note, 1, 0, 0, ErrQuorum},
		{"no cosignature, quorum 0", sn.Note, 0, 0, 0, nil},
		{"a cosignature of another checkpoint does not count", Append(sn.Note, l1, bad), 2, 1, 1, ErrQuorum},
		{"duplicate lines count once", Append(sn.Note, l1), 2, 1, 0, ErrQuorum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := tt.msg
			if strings.HasPrefix(tt.name, "duplicate") {
				msg = append(bytes.Clone(msg), l1...)
			}
			c, err := Open(msg, logV, ws, tt.quorum)
			if !errors.Is(err, tt.err) && !(tt.err == nil && err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if c == nil || len(c.Cosignatures) != tt.have {
				t.Fatalf("cosignatures %+v", c)
			}
			var qe *QuorumError
			if errors.As(err, &qe) && (qe.Have != tt.have || len(qe.Invalid) != tt.invalid || qe.Need != tt.quorum) {
				t.Fatalf("quorum error %+v", qe)
			}
		})
	}
	t.Run("a note the log did not sign", func(t *testing.T) {
		body := sn.Marshal()
		onlyWitness := append(append(bytes.Clone(body), '\n'), l1...)
		if _, err := Open(onlyWitness, logV, ws, 1); !errors.Is(err, checkpoint.ErrSignature) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestKeys(t *testing.T) {
	skey, vkey, err := GenerateKey("witness.example/w1")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(vkey)
	if err != nil || v.KeyHash() != s.KeyHash() || s.Verifier().String() != vkey {
		t.Fatalf("%v %v", v, err)
	}
	if _, _, err := GenerateKey("has space"); !errors.Is(err, ErrKey) {
		t.Fatalf("bad name: %v", err)
	}
	_, logV := logKey(t)
	logVkey := fmt.Sprintf("%s+%08x+%s", logV.Name(), logV.KeyHash(), "AepKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs")
	for _, bad := range []string{"", "x", "a+b+c", vkey[:len(vkey)-4], strings.Replace(vkey, "+", "+0", 1), logVkey} {
		if _, err := NewVerifier(bad); !errors.Is(err, ErrKey) {
			t.Errorf("NewVerifier(%q) = %v", bad, err)
		}
	}
	if _, err := NewVerifier(logVkey); err == nil || !strings.Contains(err.Error(), "not a witness") {
		t.Errorf("a log key is not explained: %v", err)
	}
	for _, bad := range []string{"", vkey, "PRIVATE+KEY+a+00000000+AAAA", strings.Replace(skey, "+KEY+", "+KEY+x", 1)} {
		if _, err := NewSigner(bad); !errors.Is(err, ErrKey) {
			t.Errorf("NewSigner(%q) = %v", bad, err)
		}
	}
	t.Run("verify rejects", func(t *testing.T) {
		body := []byte("o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
		sig, _ := s.Sign(body)
		if !v.Verify(body, sig) {
			t.Fatal("own signature does not verify")
		}
		big := bytes.Clone(sig)
		big[0] |= 0x80 // timestamp above 2^63-1
		for name, tc := range map[string]struct{ body, sig []byte }{
			"other body": {[]byte("o\n2\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"), sig},
			"short":      {body, sig[:70]},
			"huge time":  {body, big},
		} {
			if v.Verify(tc.body, tc.sig) {
				t.Errorf("%s: verified", name)
			}
		}
	})
}

func TestParseLinesAndAppend(t *testing.T) {
	w1, _, _ := fixedWitness(t, "w1", 1)
	sn := signedCheckpoint(t, 3)
	l1, _ := w1.Cosign(sn.Marshal())
	w1.Now = func() time.Time { return time.Unix(1700000100, 0) }
	l1later, _ := w1.Cosign(sn.Marshal())
	lines, err := ParseLines(append(bytes.Clone(l1), l1later...))
	if err != nil || len(lines) != 2 || !bytes.Equal(lines[0], l1) {
		t.Fatalf("%q %v", lines, err)
	}
	for _, bad := range []string{"", "— w1 AAAA", "- w1 AAAAAAAA\n", "— w 1 AAAAAAAA\n", "— w1 !!!\n"} {
		if _, err := ParseLines([]byte(bad)); err == nil {
			t.Errorf("ParseLines(%q) accepted", bad)
		}
	}
	got := Append(sn.Note, l1, l1later, l1)
	if want := append(bytes.Clone(sn.Note), l1...); !bytes.Equal(got, want) {
		t.Fatalf("Append kept a second line by one key:\n%s", got)
	}
}
