package verify

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/merkle"
)

// BundleVersion is the evidence bundle format version. Wire constant.
const BundleVersion = 1

// BundleHeader is the first line of an evidence bundle: the signed
// checkpoint every record's proof leads to.
type BundleHeader struct {
	Bundle     int         `json:"vellum_bundle"`
	Origin     string      `json:"origin"`
	TreeSize   uint64      `json:"tree_size"`
	Root       merkle.Hash `json:"root"`
	Checkpoint string      `json:"checkpoint"` // the signed note, verbatim
}

// BundleRecord is one record line: the record's JSON form for people, its
// canonical encoding (standard base64) from which the leaf is computed,
// and its inclusion proof. The verifier checks that the JSON says exactly
// what the encoding says, so what a person reads is what is proved.
type BundleRecord struct {
	Record   vellum.Record          `json:"record"`
	Encoding []byte                 `json:"encoding"`
	Proof    *merkle.InclusionProof `json:"proof"`
}

// BundleWriter writes an evidence bundle as JSON lines.
type BundleWriter struct {
	enc  *json.Encoder
	size uint64
}

// NewBundleWriter writes the header for checkpoint s to w.
func NewBundleWriter(w io.Writer, s checkpoint.Signed) (*BundleWriter, error) {
	bw := &BundleWriter{enc: json.NewEncoder(w), size: s.Size}
	bw.enc.SetEscapeHTML(false)
	h := BundleHeader{Bundle: BundleVersion, Origin: s.Origin, TreeSize: s.Size, Root: s.Root, Checkpoint: string(s.Note)}
	if err := bw.enc.Encode(h); err != nil {
		return nil, fmt.Errorf("verify: write bundle: %w", err)
	}
	return bw, nil
}

// Add writes one record with its proof, which must be against the
// bundle's checkpoint.
func (bw *BundleWriter) Add(r vellum.Record, encoding []byte, p *merkle.InclusionProof) error {
	if p.Size != bw.size || p.Index != r.Seq-1 {
		return fmt.Errorf("verify: proof for leaf %d of %d does not fit seq %d in a bundle of %d", p.Index, p.Size, r.Seq, bw.size)
	}
	if err := bw.enc.Encode(BundleRecord{Record: r, Encoding: encoding, Proof: p}); err != nil {
		return fmt.Errorf("verify: write bundle: %w", err)
	}
	return nil
}

// maxBundleLine bounds one line of a bundle (a record of the largest
// allowed size, in base64 and JSON, with its proof).
const maxBundleLine = 8 << 20

// Bundle verifies an evidence bundle with only the public key: the
// checkpoint's signature, and for every record that its JSON matches its
// canonical encoding and that its leaf is included in the signed tree. It
// returns an error for I/O errors and for input that is not a bundle at
// all; everything else is a Problem (File is name, Offset the line's byte
// offset).
func Bundle(r io.Reader, name string, v note.Verifier) (*Report, error) {
	return bundle(r, name, v, nil, 0)
}

func bundle(r io.Reader, name string, v note.Verifier, witnesses []note.Verifier, quorum int) (*Report, error) {
	rep := &Report{Dir: name}
	const recordsWhat = "records: JSON against the canonical encoding, inclusion proofs against the signed root"
	br := bufio.NewReaderSize(r, 64<<10)
	var off int64
	line, err := readLine(br)
	if err != nil {
		return nil, fmt.Errorf("verify: %s: %w", name, err)
	}
	var h BundleHeader
	if err := json.Unmarshal(line, &h); err != nil || h.Bundle == 0 {
		return nil, fmt.Errorf("verify: %s is not a Vellum evidence bundle (first line: %v)", name, err)
	}
	if h.Bundle != BundleVersion {
		return nil, fmt.Errorf("verify: %s is bundle version %d, this build reads %d", name, h.Bundle, BundleVersion)
	}
	seq := 0
	problem := func(off int64, p *Problem) {
		seq++
		p.File, p.Offset, p.order = name, off, [3]uint64{0, uint64(off), uint64(seq)}
		rep.Problems = append(rep.Problems, p)
	}
	cp, err := checkpoint.Open([]byte(h.Checkpoint), v)
	if err != nil {
		check := CheckCheckpoint
		if errors.Is(err, checkpoint.ErrSignature) {
			check = CheckSignature
		}
		problem(0, &Problem{Check: check, Detail: err.Error()})
		rep.Checks = []Coverage{
			{Check: CheckSignature, What: "checkpoint signature", Status: StatusChecked, Scope: "the bundle's checkpoint"},
			{Check: CheckBundle, What: recordsWhat, Status: StatusNotChecked, Why: "the bundle's checkpoint does not verify, so there is no signed root to check them against"},
		}
		return rep, nil
	}
	rep.Checkpoints, rep.Tree = 1, &Tree{Size: cp.Size, Root: cp.Root}
	defer func() {
		rep.Checks = []Coverage{
			{Check: CheckSignature, What: "checkpoint signature", Status: StatusChecked, Scope: "the bundle's checkpoint"},
			{Check: CheckBundle, What: recordsWhat, Status: StatusChecked, Scope: plural(int(rep.Records), "record line")},
		}
		if len(witnesses) > 0 {
			rep.Checks = append(rep.Checks, witnessCoverage(quorum, len(witnesses), "the bundle's checkpoint"))
		}
	}()
	if len(witnesses) > 0 {
		bundleWitnesses(rep, name, []byte(h.Checkpoint), v, witnesses, quorum, problem)
	}
	if h.TreeSize != cp.Size || h.Root != cp.Root || h.Origin != cp.Origin {
		problem(0, &Problem{Check: CheckBundle, Detail: "the header's origin, tree size or root differ from the signed checkpoint's"})
	}
	off = int64(len(line)) + 1
	for {
		line, err := readLine(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("verify: %s offset %d: %w", name, off, err)
		}
		at := off
		off += int64(len(line)) + 1
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		rep.Records++
		var br BundleRecord
		if err := json.Unmarshal(line, &br); err != nil || br.Proof == nil {
			problem(at, &Problem{Check: CheckBundle, Detail: fmt.Sprintf("record line does not parse: %v", err)})
			continue
		}
		seqN := br.Record.Seq
		var dec vellum.Record
		if err := dec.UnmarshalBinary(br.Encoding); err != nil {
			problem(at, &Problem{Check: CheckBundle, Seq: seqN, Detail: "canonical encoding does not decode: " + err.Error()})
			continue
		}
		dec.KeyID, dec.PrevMAC, dec.MAC = br.Record.KeyID, br.Record.PrevMAC, br.Record.MAC
		want, _ := json.Marshal(dec)
		got, _ := json.Marshal(br.Record)
		if !bytes.Equal(want, got) {
			problem(at, &Problem{Check: CheckBundle, Seq: seqN, Expected: string(want), Found: string(got),
				Detail: "the record's JSON says something other than its signed encoding"})
			continue
		}
		if br.Proof.Size != cp.Size || br.Proof.Index != dec.Seq-1 {
			problem(at, &Problem{Check: CheckBundle, Seq: seqN,
				Expected: fmt.Sprintf("leaf %d of %d", dec.Seq-1, cp.Size), Found: fmt.Sprintf("leaf %d of %d", br.Proof.Index, br.Proof.Size),
				Detail: "the proof is not for this record in the signed tree"})
			continue
		}
		leaf := merkle.LeafHash(br.Encoding, br.Record.MAC)
		if err := merkle.VerifyInclusion(br.Proof, leaf, cp.Root); err != nil {
			p := &Problem{Check: CheckBundle, Seq: seqN, Detail: "inclusion proof does not lead to the signed root: " + err.Error()}
			var rm *merkle.RootMismatchError
			if errors.As(err, &rm) {
				p.Expected, p.Found = rm.Expected.String(), rm.Calculated.String()
				p.Detail = "inclusion proof does not lead to the signed root (record or MAC altered, or not in the log)"
			}
			problem(at, p)
		}
	}
	return rep, nil
}

func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				return line, nil
			}
			return nil, err
		}
		line = append(line, chunk...)
		if len(line) > maxBundleLine {
			return nil, fmt.Errorf("line longer than %d bytes", maxBundleLine)
		}
		if !isPrefix {
			return line, nil
		}
	}
}

// ExportBundle writes the records of s with seq in [from, to] (to = 0: up
// to the checkpoint), with inclusion proofs against cp, as an evidence
// bundle. Records after cp.Size are not covered by cp and are left out. It
// first checks that the store's tree at cp.Size has cp's root, so it never
// writes a bundle that cannot verify. It returns the number of records
// written.
func ExportBundle(s *Store, w io.Writer, cp checkpoint.Signed, from, to uint64) (int, error) {
	return ExportBundleFunc(s, w, cp, from, to, nil)
}
