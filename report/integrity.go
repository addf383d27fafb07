package report

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/merkle"
	"github.com/vellumlog/vellum/verify"
	"github.com/vellumlog/vellum/vfs"
)

// Integrity is the section an auditor reads first: the latest signed
// checkpoint, whether it verifies (signature, and root against the data),
// the public key, retention and holds, and how to re-verify offline.
type Integrity struct {
	StoreID string
	// Checkpoints is how many checkpoints the checkpoint log holds.
	Checkpoints int
	// Latest is the latest signed checkpoint (nil: none yet).
	Latest *checkpoint.Signed
	// NoteText is Latest's signed note, to save and re-check later.
	NoteText string
	// SignatureChecked, SignatureOK: whether the note's signature was
	// checked against the public key, and the result; SignatureErr says
	// why it failed or was not checked.
	SignatureChecked, SignatureOK bool
	SignatureErr                  string
	// RootChecked, RootOK: whether the checkpoint's Merkle root was
	// recomputed from the segment files, and the result.
	RootChecked, RootOK bool
	RootErr             string
	// PublicKeyFile is the key used; KeyName and KeyHash its note name and
	// key hash; Fingerprint the SHA-256 of the raw Ed25519 public key in
	// hex.
	PublicKeyFile, KeyName, KeyHash, Fingerprint string
	// Retention is what the configuration says.
	Retention Retention
	// Dir is the data directory, for the commands.
	Dir string
}

// Verified reports whether the latest checkpoint's signature and root
// were both checked and both hold.
func (in *Integrity) Verified() bool {
	return in.Latest != nil && in.SignatureChecked && in.SignatureOK && in.RootChecked && in.RootOK
}

// Retention is the retention policy and the legal holds as configured,
// and what the running version does with them.
type Retention struct {
	// Configured is false when no configuration was given to the report
	// (then MaxAge and LegalHolds are unknown).
	Configured bool
	MaxAge     time.Duration
	LegalHolds []string
	// Enforced says whether the store purges by retention per segment and
	// tenant, as the report describes (the segment store does; the SQL
	// stores apply only a time horizon, and the report reads segment
	// stores only).
	Enforced bool
	// Holds are the legal holds in the data directory (set over the API),
	// and Purged what purges removed; both read from the data directory.
	Holds  []string
	Purged string
}

// checkIntegrity reads the checkpoint log and checks its latest entry
// against pubFile (when given) and against the data.
func checkIntegrity(fs vfs.FS, dir, pubFile string) *Integrity {
	in := &Integrity{Dir: dir, PublicKeyFile: pubFile}
	if id, err := layout.ReadStoreID(fs, dir); err == nil {
		in.StoreID = hex.EncodeToString(id[:])
	}
	res, err := checkpoint.ReadLog(fs, filepath.Join(dir, checkpoint.LogName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		in.SignatureErr = fmt.Sprintf("the checkpoint log cannot be read: %v", err)
		return in
	}
	var note []byte
	if res != nil {
		in.Checkpoints = len(res.Entries)
		if n := len(res.Entries); n > 0 {
			note = res.Entries[n-1].Note
		}
	}
	if note == nil {
		in.SignatureErr = "the store has no signed checkpoint (no signing key was configured, or nothing was written yet)"
		return in
	}
	in.NoteText = string(note)
	s, err := checkpoint.ParseNote(note)
	if err != nil {
		in.SignatureErr = fmt.Sprintf("the latest checkpoint does not parse: %v", err)
		return in
	}
	in.Latest = &s
	if pubFile == "" {
		in.SignatureErr = "not checked: no public key (give --pubkey, or keep signing.pub in the data directory)"
	} else if v, err := checkpoint.LoadVerifier(pubFile); err != nil {
		in.SignatureErr = fmt.Sprintf("not checked: %v", err)
	} else {
		in.KeyName, in.KeyHash = v.Name(), fmt.Sprintf("%08x", v.KeyHash())
		in.Fingerprint = fingerprint(pubFile)
		in.SignatureChecked = true
		if _, err := checkpoint.Open(note, v); err != nil {
			in.SignatureErr = err.Error()
		} else {
			in.SignatureOK = true
		}
	}
	st, err := verify.OpenStore(fs, dir)
	if err != nil {
		in.RootChecked, in.RootErr = true, fmt.Sprintf("the segment files cannot be read: %v", err)
		return in
	}
	defer st.Close()
	in.RootChecked = true
	if st.LastSeq() < s.Size {
		in.RootErr = fmt.Sprintf("the checkpoint covers %d records, the data directory holds %d", s.Size, st.LastSeq())
		return in
	}
	root, err := merkle.RootAt(st.Source(), s.Size)
	switch {
	case err != nil:
		in.RootErr = err.Error()
	case root != s.Root:
		in.RootErr = (&merkle.RootMismatchError{Expected: s.Root, Calculated: root}).Error()
	default:
		in.RootOK = true
	}
	return in
}

// fingerprint returns the SHA-256 of the raw Ed25519 key in a note
// verifier key file ("name+hash+base64(0x01 || key)"), in hex; "" when the
// file is not of that form.
func fingerprint(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	parts := strings.SplitN(strings.TrimSpace(string(b)), "+", 3) // base64 may hold "+" too
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 33 {
		return ""
	}
	sum := sha256.Sum256(raw[1:])
	return hex.EncodeToString(sum[:])
}
