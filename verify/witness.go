package verify

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/cosign"
	"github.com/vellumlog/vellum/merkle"
	"github.com/vellumlog/vellum/vfs"
)

// CheckWitness names problems with witness cosignatures and with the data
// against a cosigned checkpoint.
const CheckWitness = "witness"

// rankWitness orders witness problems after the trusted checkpoint's.
const rankWitness = 1<<62 + 2

// CosignedNote is a cosigned checkpoint to check the data against, and
// where it came from (a file name or a witness URL, for the report).
type CosignedNote struct {
	Source string
	Note   []byte
}

// Witnessed describes the newest checkpoint a quorum of the trusted
// witnesses cosigned: its size and root, where it was found, and who
// cosigned it when. An auditor reads its times to know how fresh the
// witnesses' view was.
type Witnessed struct {
	Source       string               `json:"source"`
	TreeSize     uint64               `json:"tree_size"`
	Root         merkle.Hash          `json:"root"`
	Quorum       int                  `json:"quorum"`
	Cosignatures []cosign.Cosignature `json:"cosignatures"`
}

// String is the report line.
func (w *Witnessed) String() string {
	var who []string
	for _, c := range w.Cosignatures {
		who = append(who, fmt.Sprintf("%s at %s", c.Witness, c.Time.Format(time.RFC3339)))
	}
	return fmt.Sprintf("checkpoint of %d records cosigned by %s (quorum %d; from %s)", w.TreeSize, strings.Join(who, ", "), w.Quorum, w.Source)
}

// cosignedEntry is one cosigned checkpoint found for the directory.
type cosignedEntry struct {
	source string
	c      *cosign.Cosigned
	quorum bool // cosigned by a quorum of the trusted witnesses
}

// readCosigned gathers the cosigned checkpoints: the data directory's
// cosigned checkpoint and any witness's conflicting checkpoint the server
// kept, then Options.Cosigned. Each must be signed by the store's key; the
// ones a quorum cosigned satisfy the witness requirement, and the data is
// checked against all of them. (Hook called from readCheckpoints, before
// the sizes whose roots are needed are fixed.)
func (v *dirVerifier) readCosigned() error {
	if len(v.o.Witnesses) == 0 {
		return nil
	}
	notes, err := cosignedFiles(v.o.FS, v.dir)
	if err != nil {
		return err
	}
	notes = append(notes, v.o.Cosigned...)
	for _, n := range notes {
		c, err := cosign.Open(n.Note, v.o.Verifier, v.o.Witnesses, v.quorum())
		var qe *cosign.QuorumError
		switch {
		case errors.As(err, &qe):
			if len(qe.Invalid) > 0 {
				v.problem(rankWitness, &Problem{Check: CheckWitness, File: n.Source, Offset: -1,
					Detail: "a witness cosignature does not verify: " + strings.Join(qe.Invalid, ", ")})
			}
		case err != nil:
			check := CheckWitness
			if errors.Is(err, checkpoint.ErrSignature) {
				check = CheckSignature
			}
			v.problem(rankWitness, &Problem{Check: check, File: n.Source, Offset: -1, Detail: "cosigned checkpoint: " + err.Error()})
			continue
		}
		v.cosigned = append(v.cosigned, cosignedEntry{source: n.Source, c: c, quorum: err == nil})
		v.sizes = append(v.sizes, c.Size)
	}
	return nil
}

func (v *dirVerifier) quorum() int {
	if v.o.Quorum > 0 {
		return v.o.Quorum
	}
	return len(v.o.Witnesses)
}

// cosignedFiles reads the cosigned checkpoints a server keeps in its data
// directory (segment/FORMAT.md, "Cosigned checkpoints").
func cosignedFiles(fs vfs.FS, dir string) ([]CosignedNote, error) {
	names, err := fs.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	var out []CosignedNote
	for _, name := range names {
		if name != cosign.CheckpointFile && (!strings.HasPrefix(name, cosign.ConflictPrefix) || strings.HasSuffix(name, ".tmp")) {
			continue
		}
		b, err := vfs.ReadFile(fs, filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		out = append(out, CosignedNote{Source: name, Note: b})
	}
	return out, nil
}

// witnessChecks requires a checkpoint cosigned by a quorum and checks the
// data against every cosigned checkpoint: records cut off or rewritten
// after witnesses cosigned are reported with the cosigned size. (Hook
// called from run after the checkpoint log's checks.)
func (v *dirVerifier) witnessChecks() {
	if len(v.o.Witnesses) == 0 {
		return
	}
	v.rep.Checks = append(v.rep.Checks, witnessCoverage(v.quorum(), len(v.o.Witnesses),
		fmt.Sprintf("%s, and the data against each", plural(len(v.cosigned), "cosigned checkpoint"))))
	sort.SliceStable(v.cosigned, func(i, j int) bool { return v.cosigned[i].c.Size > v.cosigned[j].c.Size })
	for _, e := range v.cosigned {
		if e.quorum && v.rep.Witnessed == nil {
			v.rep.Witnessed = &Witnessed{Source: e.source, TreeSize: e.c.Size, Root: e.c.Root, Quorum: v.quorum(), Cosignatures: e.c.Cosignatures}
		}
	}
	if v.rep.Witnessed == nil {
		v.problem(rankWitness, &Problem{Check: CheckWitness, File: cosign.CheckpointFile, Offset: -1,
			Expected: fmt.Sprintf("a checkpoint cosigned by %d of the witnesses", v.quorum()), Found: fmt.Sprintf("%d cosigned checkpoints, none with enough valid cosignatures", len(v.cosigned)),
			Detail: "no checkpoint cosigned by the witnesses was found (the server keeps the latest in its data directory; fetch one from a witness with --witness-url)"})
	}
	for _, e := range v.cosigned {
		v.againstCosigned(e)
	}
}

// againstCosigned checks the data against one cosigned checkpoint.
func (v *dirVerifier) againstCosigned(e cosignedEntry) {
	c := e.c
	p := Problem{Check: CheckWitness, File: e.source, Offset: -1}
	by := cosigners(c)
	if c.Origin != v.o.Origin {
		p.Expected, p.Found = fmt.Sprintf("origin %q", v.o.Origin), fmt.Sprintf("origin %q", c.Origin)
		p.Detail = "the cosigned checkpoint is of another log"
		v.problem(rankWitness, &p)
		return
	}
	if c.Size > v.dataSize {
		p.Seq = v.dataSize + 1
		p.Expected, p.Found = fmt.Sprintf("%d records (cosigned by %s)", c.Size, by), fmt.Sprintf("%d records", v.dataSize)
		p.Detail = fmt.Sprintf("records seq %d..%d were cut off after the store signed a checkpoint of %d records that witnesses cosigned: the store was rolled back to an earlier copy or truncated", v.dataSize+1, c.Size, c.Size)
		v.problem(rankWitness, &p)
		return
	}
	calc, ok := v.roots[c.Size]
	if c.Size == 0 {
		calc, ok = merkle.EmptyRoot, true
	}
	if !ok || calc == c.Root {
		return // unknown: a problem reported above made the tree unknown there
	}
	good := uint64(0)
	i := sort.Search(len(v.sizes), func(i int) bool { return v.sizes[i] >= c.Size })
	for j := i - 1; j >= 0; j-- {
		if r, ok := v.roots[v.sizes[j]]; ok && (v.matched(v.sizes[j], r) || v.cosignedMatch(v.sizes[j], r)) {
			good = v.sizes[j]
			break
		}
	}
	p.Seq = good + 1
	p.Expected, p.Found = c.Root.String(), calc.String()
	p.Detail = fmt.Sprintf("the first %d records differ from the checkpoint of %d records witnesses cosigned (%s): records in seq %d..%d were rewritten after it, even if the store's own checkpoints were re-signed to match", c.Size, c.Size, by, good+1, c.Size)
	v.problem(rankWitness, &p)
}

func (v *dirVerifier) cosignedMatch(size uint64, r merkle.Hash) bool {
	for _, e := range v.cosigned {
		if e.c.Size == size && e.c.Root == r {
			return true
		}
	}
	return false
}

func cosigners(c *cosign.Cosigned) string {
	if len(c.Cosignatures) == 0 {
		return "no trusted witness"
	}
	var who []string
	for _, s := range c.Cosignatures {
		who = append(who, fmt.Sprintf("%s at %s", s.Witness, s.Time.Format(time.RFC3339)))
	}
	return strings.Join(who, ", ")
}

// BundleWitnessed verifies an evidence bundle like Bundle and also
// requires its checkpoint to carry valid cosignatures by quorum of
// witnesses (all of them when quorum is 0): the records are then proved
// against a checkpoint the witnesses saw extend every earlier one.
func BundleWitnessed(r io.Reader, name string, v note.Verifier, witnesses []note.Verifier, quorum int) (*Report, error) {
	if len(witnesses) == 0 {
		return nil, errors.New("verify: no witness key given")
	}
	if quorum < 0 || quorum > len(witnesses) {
		return nil, fmt.Errorf("verify: quorum %d is not between 1 and the %d witnesses given", quorum, len(witnesses))
	}
	if quorum == 0 {
		quorum = len(witnesses)
	}
	return bundle(r, name, v, witnesses, quorum)
}

// witnessCoverage is the Coverage entry of the witness check.
func witnessCoverage(quorum, n int, scope string) Coverage {
	return Coverage{Check: CheckWitness, What: fmt.Sprintf("a checkpoint cosigned by %d of %d witnesses", quorum, n), Status: StatusChecked, Scope: scope}
}

// bundleWitnesses checks the cosignatures on a bundle's checkpoint.
func bundleWitnesses(rep *Report, name string, msg []byte, v note.Verifier, witnesses []note.Verifier, quorum int, problem func(int64, *Problem)) {
	c, err := cosign.Open(msg, v, witnesses, quorum)
	if err != nil {
		p := &Problem{Check: CheckWitness, Detail: err.Error()}
		var qe *cosign.QuorumError
		if errors.As(err, &qe) {
			p.Expected, p.Found = fmt.Sprintf("%d valid cosignatures", qe.Need), fmt.Sprintf("%d", qe.Have)
			p.Detail = "the bundle's checkpoint is not cosigned by enough of the witnesses: " + err.Error()
		}
		problem(0, p)
		return
	}
	rep.Witnessed = &Witnessed{Source: name, TreeSize: c.Size, Root: c.Root, Quorum: quorum, Cosignatures: c.Cosignatures}
}
