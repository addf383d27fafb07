package checkpoint

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum/merkle"
)

// maxNote bounds a signed note Vellum reads: a checkpoint with a few
// signatures is a few hundred bytes.
const maxNote = 16 << 10

// Checkpoint is a C2SP tlog-checkpoint body: the log's origin, its size in
// records and the root of the RFC 6962 tree over their leaves.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   merkle.Hash
	// Extensions are further body lines, kept as read (C2SP allows them);
	// Vellum writes none.
	Extensions []string
}

// Marshal returns the body text:
//
//	<origin>\n<size in decimal>\n<root in base64>\n[extension lines\n]
func (c Checkpoint) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n%d\n%s\n", c.Origin, c.Size, c.Root.Base64())
	for _, e := range c.Extensions {
		b.WriteString(e)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Parse parses a checkpoint body, strictly: an origin without spaces or
// '+', a size in decimal without leading zeros, and a base64 root of 32
// bytes, each ending in a newline; extension lines must be non-empty.
func Parse(body []byte) (Checkpoint, error) {
	var c Checkpoint
	bad := func(format string, args ...any) (Checkpoint, error) {
		return Checkpoint{}, fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	if len(body) > maxNote {
		return bad("body of %d bytes", len(body))
	}
	if len(body) == 0 || body[len(body)-1] != '\n' {
		return bad("body does not end in a newline")
	}
	lines := strings.Split(string(body[:len(body)-1]), "\n")
	if len(lines) < 3 {
		return bad("%d lines, want at least 3 (origin, size, root)", len(lines))
	}
	c.Origin = lines[0]
	if err := checkOrigin(c.Origin); err != nil {
		return Checkpoint{}, err
	}
	s := lines[1]
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || (len(s) > 1 && s[0] == '0') || s == "" || s[0] == '+' {
		return bad("tree size %q is not a decimal number", s)
	}
	c.Size = n
	if err := c.Root.UnmarshalText([]byte(lines[2])); err != nil {
		return bad("root hash %q is not base64 of 32 bytes", lines[2])
	}
	for _, e := range lines[3:] {
		if e == "" {
			return bad("empty extension line")
		}
		c.Extensions = append(c.Extensions, e)
	}
	return c, nil
}

func checkOrigin(o string) error {
	if o == "" || strings.ContainsAny(o, " \t+") || !isPrintable(o) {
		return fmt.Errorf("%w: origin %q must be non-empty, printable, without spaces or '+'", ErrMalformed, o)
	}
	return nil
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// Signed is a checkpoint with its signed note, byte for byte as signed.
type Signed struct {
	Checkpoint
	Note []byte
}

// Sign signs c with signer (Ed25519 for keys from GenerateKey) as a C2SP
// signed note.
func Sign(c Checkpoint, signer note.Signer) (Signed, error) {
	if err := checkOrigin(c.Origin); err != nil {
		return Signed{}, err
	}
	msg, err := note.Sign(&note.Note{Text: string(c.Marshal())}, signer)
	if err != nil {
		return Signed{}, fmt.Errorf("checkpoint: sign: %w", err)
	}
	return Signed{Checkpoint: c, Note: msg}, nil
}

// Open parses a signed note, checks that verifier's key signed it, and
// parses the checkpoint it carries. A note the key did not sign, or whose
// signature is wrong, fails with ErrSignature.
func Open(msg []byte, verifier note.Verifier) (Signed, error) {
	if len(msg) > maxNote {
		return Signed{}, fmt.Errorf("%w: note of %d bytes", ErrMalformed, len(msg))
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		var unv *note.UnverifiedNoteError
		var inv *note.InvalidSignatureError
		switch {
		case errors.As(err, &unv):
			return Signed{}, fmt.Errorf("%w: not signed by key %s+%08x (signed by %s)", ErrSignature, verifier.Name(), verifier.KeyHash(), signers(unv.Note))
		case errors.As(err, &inv):
			return Signed{}, fmt.Errorf("%w: invalid signature by key %s+%08x", ErrSignature, inv.Name, inv.Hash)
		}
		return Signed{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	c, err := Parse([]byte(n.Text))
	if err != nil {
		return Signed{}, err
	}
	return Signed{Checkpoint: c, Note: bytes.Clone(msg)}, nil
}

// ParseNote parses a signed note and its checkpoint without checking any
// signature, for tools that report on a log without the public key.
func ParseNote(msg []byte) (Signed, error) {
	if len(msg) > maxNote {
		return Signed{}, fmt.Errorf("%w: note of %d bytes", ErrMalformed, len(msg))
	}
	_, err := note.Open(msg, nil)
	var unv *note.UnverifiedNoteError
	if !errors.As(err, &unv) {
		return Signed{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	c, err := Parse([]byte(unv.Note.Text))
	if err != nil {
		return Signed{}, err
	}
	return Signed{Checkpoint: c, Note: bytes.Clone(msg)}, nil
}

func signers(n *note.Note) string {
	if n == nil || len(n.UnverifiedSigs) == 0 {
		return "nobody"
	}
	var names []string
	for _, s := range n.UnverifiedSigs {
		names = append(names, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
	}
	return strings.Join(names, ", ")
}

// CheckGrowth reports whether new can follow old in one append-only log
// as far as sizes and origins tell (a smaller new size, a different
// origin, or equal sizes with different roots cannot). Whether the roots
// are consistent needs a consistency proof or the data.
func CheckGrowth(old, new Checkpoint) error {
	switch {
	case old.Origin != new.Origin:
		return &InconsistentError{Old: old, New: new, Reason: fmt.Sprintf("origin %q then %q", old.Origin, new.Origin)}
	case new.Size < old.Size:
		return &InconsistentError{Old: old, New: new, Reason: "the log shrank"}
	case new.Size == old.Size && new.Root != old.Root:
		return &InconsistentError{Old: old, New: new, Reason: "same size, different roots"}
	}
	return nil
}

// CheckConsistency checks that new extends old with proof p (from
// merkle.ProveConsistency between their sizes).
func CheckConsistency(old, new Checkpoint, p *merkle.ConsistencyProof) error {
	if err := CheckGrowth(old, new); err != nil {
		return err
	}
	if p.Size1 != old.Size || p.Size2 != new.Size {
		return &InconsistentError{Old: old, New: new, Reason: fmt.Sprintf("proof is for sizes %d to %d", p.Size1, p.Size2)}
	}
	if err := merkle.VerifyConsistency(p, old.Root, new.Root); err != nil {
		return &InconsistentError{Old: old, New: new, Reason: err.Error()}
	}
	return nil
}
