package cosign

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum/checkpoint"
)

// Wire constants of C2SP tlog-cosignature. Do not change.
const (
	// Alg is the note signature type of Ed25519 cosignature/v1 keys.
	Alg = 0x04
	// header is the first line of the signed message (domain separation).
	header = "cosignature/v1\n"
	// sigSize is a cosignature's bytes after the key hash: a big-endian
	// u64 timestamp, then the 64-byte Ed25519 signature.
	sigSize = 8 + ed25519.SignatureSize
)

// Message returns the bytes a cosignature/v1 signs: the header line, the
// time line and the checkpoint's note body (with its final newline, without
// signature lines).
func Message(t uint64, body []byte) []byte {
	return fmt.Appendf(nil, "%stime %d\n%s", header, t, body)
}

// keyHash is the note key hash: SHA-256(name || "\n" || 0x04 || key)[:4].
func keyHash(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', Alg})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// validName is the note rule for key names: non-empty, printable, no
// spaces or '+'.
func validName(name string) bool {
	if name == "" || strings.ContainsAny(name, "+ \t\n") {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// GenerateKey returns a new Ed25519 cosignature/v1 key pair named name:
// the private key "PRIVATE+KEY+<name>+<hash>+<base64>" and the verifier key
// "<name>+<hash>+<base64>". The name should identify the witness, for
// example a host name and path ("witness.example.com/w1").
func GenerateKey(name string) (private, public string, err error) {
	if !validName(name) {
		return "", "", fmt.Errorf("%w: name %q must be non-empty, printable, without spaces or '+'", ErrKey, name)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("cosign: generate key: %w", err)
	}
	h := keyHash(name, pub)
	private = fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, h, base64.StdEncoding.EncodeToString(append([]byte{Alg}, priv.Seed()...)))
	public = fmt.Sprintf("%s+%08x+%s", name, h, base64.StdEncoding.EncodeToString(append([]byte{Alg}, pub...)))
	return private, public, nil
}

// Signer makes cosignature/v1 signatures. It implements note.Signer, so
// note.Sign can add a cosignature to a note.
type Signer struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
	// Now is the clock whose time each cosignature states; time.Now when
	// nil. A test hook.
	Now func() time.Time
}

var _ note.Signer = (*Signer)(nil)

// NewSigner parses a private key made by GenerateKey.
func NewSigner(skey string) (*Signer, error) {
	parts := strings.SplitN(strings.TrimSpace(skey), "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return nil, fmt.Errorf("%w: not a private key (PRIVATE+KEY+<name>+<hash>+<key>)", ErrKey)
	}
	name, hash16, key64 := parts[2], parts[3], parts[4]
	key, err := base64.StdEncoding.DecodeString(key64)
	if err != nil || !validName(name) || len(hash16) != 8 || len(key) != 1+ed25519.SeedSize {
		return nil, fmt.Errorf("%w: private key of %q does not parse", ErrKey, name)
	}
	if key[0] != Alg {
		return nil, fmt.Errorf("%w: private key of %q has type %#02x, a cosignature/v1 key has %#02x", ErrKey, name, key[0], Alg)
	}
	priv := ed25519.NewKeyFromSeed(key[1:])
	s := &Signer{name: name, key: priv, hash: keyHash(name, priv.Public().(ed25519.PublicKey))}
	if want, err := strconv.ParseUint(hash16, 16, 32); err != nil || uint32(want) != s.hash {
		return nil, fmt.Errorf("%w: private key of %q: key hash %s does not match the key", ErrKey, name, hash16)
	}
	return s, nil
}

// Name returns the witness's key name.
func (s *Signer) Name() string { return s.name }

// KeyHash returns the note key hash.
func (s *Signer) KeyHash() uint32 { return s.hash }

// Sign signs body (a checkpoint's note text) at the current time and
// returns timestamp || signature, as note.Sign expects.
func (s *Signer) Sign(body []byte) ([]byte, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	t := now().Unix()
	if t < 0 {
		return nil, errors.New("cosign: the clock is before 1970")
	}
	sig := binary.BigEndian.AppendUint64(make([]byte, 0, sigSize), uint64(t))
	return append(sig, ed25519.Sign(s.key, Message(uint64(t), body))...), nil
}

// Cosign returns a complete note signature line for body: "— <name>
// <base64(key hash || timestamp || signature)>\n", the form a witness
// answers with and a note carries.
func (s *Signer) Cosign(body []byte) ([]byte, error) {
	sig, err := s.Sign(body)
	if err != nil {
		return nil, err
	}
	return SignatureLine(s.name, s.hash, sig), nil
}

// SignatureLine formats one note signature line.
func SignatureLine(name string, hash uint32, sig []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, hash)
	return fmt.Appendf(nil, "— %s %s\n", name, base64.StdEncoding.EncodeToString(append(b, sig...)))
}

// Verifier returns the verifier of s's signatures.
func (s *Signer) Verifier() *Verifier {
	return &Verifier{name: s.name, hash: s.hash, key: s.key.Public().(ed25519.PublicKey)}
}

// Verifier checks cosignature/v1 signatures of one witness. It implements
// note.Verifier.
type Verifier struct {
	name string
	hash uint32
	key  ed25519.PublicKey
}

var _ note.Verifier = (*Verifier)(nil)

// NewVerifier parses a verifier key "<name>+<hash>+<base64 of 0x04 ||
// key>", as a witness prints it.
func NewVerifier(vkey string) (*Verifier, error) {
	vkey = strings.TrimSpace(vkey)
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: %q is not a verifier key (<name>+<hash>+<key>)", ErrKey, vkey)
	}
	name, hash16, key64 := parts[0], parts[1], parts[2]
	key, err := base64.StdEncoding.DecodeString(key64)
	if err != nil || !validName(name) || len(hash16) != 8 || len(key) != 1+ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: verifier key of %q does not parse", ErrKey, name)
	}
	if key[0] != Alg {
		what := ""
		if key[0] == 0x01 {
			what = " (an Ed25519 signed-note key, such as a log's checkpoint key, not a witness's)"
		}
		return nil, fmt.Errorf("%w: verifier key of %q has type %#02x%s; a witness cosignature/v1 key has %#02x", ErrKey, name, key[0], what, Alg)
	}
	v := &Verifier{name: name, key: ed25519.PublicKey(key[1:])}
	v.hash = keyHash(name, v.key)
	if want, err := strconv.ParseUint(hash16, 16, 32); err != nil || uint32(want) != v.hash {
		return nil, fmt.Errorf("%w: verifier key of %q: key hash %s does not match the key", ErrKey, name, hash16)
	}
	return v, nil
}

// Name returns the witness's key name.
func (v *Verifier) Name() string { return v.name }

// KeyHash returns the note key hash.
func (v *Verifier) KeyHash() uint32 { return v.hash }

// String returns the verifier key text.
func (v *Verifier) String() string {
	return fmt.Sprintf("%s+%08x+%s", v.name, v.hash, base64.StdEncoding.EncodeToString(append([]byte{Alg}, v.key...)))
}

// ID returns "<name>+<hash>", how reports name the witness.
func (v *Verifier) ID() string { return fmt.Sprintf("%s+%08x", v.name, v.hash) }

// Verify checks sig (timestamp || signature) over body.
func (v *Verifier) Verify(body, sig []byte) bool {
	if len(sig) != sigSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig)
	if t > math.MaxInt64 {
		return false
	}
	return ed25519.Verify(v.key, Message(t, body), sig[8:])
}

// Cosignature is one valid witness cosignature on a checkpoint.
type Cosignature struct {
	// Witness is the witness's "<name>+<hash>".
	Witness string `json:"witness"`
	// Time is when the witness cosigned (second precision).
	Time time.Time `json:"time"`
	// Line is the note signature line, with its newline.
	Line string `json:"-"`
}

// Cosigned is a checkpoint signed by its log and the witness cosignatures
// on it that verified.
type Cosigned struct {
	checkpoint.Signed
	Cosignatures []Cosignature
}

// Open checks a cosigned checkpoint: the log's signature must verify with
// logKey (else checkpoint.ErrSignature or ErrMalformed), and at least
// quorum of witnesses must have a valid cosignature on it (else a
// *QuorumError). Signatures by other keys are ignored.
func Open(msg []byte, logKey note.Verifier, witnesses []note.Verifier, quorum int) (*Cosigned, error) {
	s, err := checkpoint.Open(msg, logKey)
	if err != nil {
		return nil, err
	}
	c := &Cosigned{Signed: s}
	qe := &QuorumError{Need: quorum}
	for _, w := range witnesses {
		id := fmt.Sprintf("%s+%08x", w.Name(), w.KeyHash())
		qe.Witnesses = append(qe.Witnesses, id)
		sig, ok, err := find(msg, w)
		if err != nil {
			qe.Invalid = append(qe.Invalid, id)
			continue
		}
		if ok {
			c.Cosignatures = append(c.Cosignatures, sig)
		}
	}
	qe.Have = len(c.Cosignatures)
	if qe.Have < quorum {
		return c, qe
	}
	return c, nil
}

// find opens msg with w alone: the cosignature by w, whether there is
// one, or an error when w's signature line does not verify.
func find(msg []byte, w note.Verifier) (Cosignature, bool, error) {
	n, err := note.Open(msg, note.VerifierList(w))
	var unv *note.UnverifiedNoteError
	if errors.As(err, &unv) {
		return Cosignature{}, false, nil
	}
	if err != nil {
		return Cosignature{}, false, err
	}
	for _, sg := range n.Sigs {
		raw, _ := base64.StdEncoding.DecodeString(sg.Base64)
		t := time.Unix(int64(binary.BigEndian.Uint64(raw[4:])), 0).UTC()
		line := fmt.Sprintf("— %s %s\n", sg.Name, sg.Base64)
		return Cosignature{Witness: fmt.Sprintf("%s+%08x", sg.Name, sg.Hash), Time: t, Line: line}, true, nil
	}
	return Cosignature{}, false, nil
}

// ParseLines splits a witness's add-checkpoint response (note signature
// lines) into lines, each with its newline. It checks only the shape
// ("— <name> <base64>\n"); whether a line verifies is Open's job.
func ParseLines(b []byte) ([][]byte, error) {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return nil, fmt.Errorf("%w: signature lines must end in a newline", checkpoint.ErrMalformed)
	}
	var lines [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		line := b[:i+1]
		b = b[i+1:]
		rest, ok := bytes.CutPrefix(line[:len(line)-1], []byte("— "))
		name, b64, _ := strings.Cut(string(rest), " ")
		if raw, err := base64.StdEncoding.DecodeString(b64); !ok || !validName(name) || err != nil || len(raw) < 5 {
			return nil, fmt.Errorf("%w: %q is not a note signature line", checkpoint.ErrMalformed, line)
		}
		lines = append(lines, line)
		if len(lines) > 100 {
			return nil, fmt.Errorf("%w: more than 100 signature lines", checkpoint.ErrMalformed)
		}
	}
	return lines, nil
}

// Append returns the signed note msg with signature lines added after its
// own, leaving out lines it already has and any further line from a key
// (name and hash) that already signed it.
func Append(msg []byte, lines ...[]byte) []byte {
	out := bytes.Clone(msg)
	have := map[string]bool{}
	split := bytes.LastIndex(msg, []byte("\n\n"))
	if split >= 0 {
		for _, l := range bytes.SplitAfter(msg[split+2:], []byte("\n")) {
			have[lineKey(l)] = true
		}
	}
	for _, l := range lines {
		k := lineKey(l)
		if k == "" || have[k] {
			continue
		}
		have[k] = true
		out = append(out, l...)
	}
	return out
}

// lineKey is "<name> <key hash>" of a signature line, "" when it does not
// parse.
func lineKey(line []byte) string {
	rest, ok := bytes.CutPrefix(bytes.TrimSuffix(line, []byte("\n")), []byte("— "))
	name, b64, _ := strings.Cut(string(rest), " ")
	raw, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil || len(raw) < 4 {
		return ""
	}
	return fmt.Sprintf("%s %x", name, raw[:4])
}

// Find reports whether msg carries a cosignature by w and returns it; the
// error is set when w's signature line is present but does not verify.
func Find(msg []byte, w note.Verifier) (Cosignature, bool, error) { return find(msg, w) }

// Files of a Vellum data directory that hold cosigned checkpoints
// (segment/FORMAT.md, "Cosigned checkpoints"). Do not change.
const (
	// CheckpointFile is the latest checkpoint cosigned by a quorum of the
	// store's witnesses: the store's signed note with the witnesses'
	// signature lines after its own. Replaced atomically.
	CheckpointFile = "cosigned-checkpoint"
	// ConflictPrefix starts the name of a file holding a witness's
	// cosigned checkpoint that this store's history does not extend,
	// kept when the witness refused the store:
	// "witness-conflict-<8 hex key hash of the witness>".
	ConflictPrefix = "witness-conflict-"
)
