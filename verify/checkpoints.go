package verify

import (
	"fmt"
	"sort"

	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/merkle"
)

// cpOutcome is whether one checkpoint could be compared with the data.
type cpOutcome struct {
	offset  int64
	size    uint64
	trusted bool
	checked bool
	why     string // why not, when !checked
}

// checkpoints checks every checkpoint against the data and the one before
// it, and the trusted checkpoint against both.
func (v *dirVerifier) checkpoints() {
	if v.cpLog != "" {
		if v.o.Verifier != nil && v.rep.Segments > 0 {
			// A store that signs checkpoints creates its log when it
			// opens: without it nothing the public key holder can check
			// vouches for the data.
			v.problem(rankCheckpoints, &Problem{Check: CheckCheckpoint, File: checkpoint.LogName, Offset: -1,
				Detail: "the checkpoint log is missing (removed?): no signed checkpoint vouches for the data"})
		} else {
			v.rep.Warnings = append(v.rep.Warnings, v.cpLog+": no signed checkpoint vouches for the data")
		}
	} else if len(v.cps) == 0 && v.dataSize > 0 {
		v.rep.Warnings = append(v.rep.Warnings, "the checkpoint log is empty: no signed checkpoint vouches for the data yet")
	}
	var prev *cpEntry
	for i := range v.cps {
		e := &v.cps[i]
		if !e.ok {
			v.cpChecked = append(v.cpChecked, cpOutcome{why: e.why, offset: e.offset, size: ^uint64(0)})
			continue
		}
		p := Problem{File: checkpoint.LogName, Offset: e.offset}
		if e.s.Origin != v.o.Origin {
			p.Check, p.Expected, p.Found = CheckCheckpoint, fmt.Sprintf("origin %q", v.o.Origin), fmt.Sprintf("origin %q", e.s.Origin)
			p.Detail = "checkpoint of another log"
			v.problem(rankCheckpoints, &p)
			v.cpChecked = append(v.cpChecked, cpOutcome{size: e.s.Size, why: "it is of another log", offset: e.offset})
			continue
		}
		if prev != nil {
			if err := checkpoint.CheckGrowth(prev.s.Checkpoint, e.s.Checkpoint); err != nil {
				q := p
				q.Check, q.Detail = CheckConsistency, fmt.Sprintf("%v (previous checkpoint at offset %d)", err, prev.offset)
				v.problem(rankCheckpoints, &q)
			}
		}
		out := v.againstData(rankCheckpoints, &e.s, p)
		out.offset = e.offset
		v.cpChecked = append(v.cpChecked, out)
		prev = e
	}
	if v.trusted != nil {
		p := Problem{File: "trusted checkpoint", Offset: -1}
		if v.trusted.Origin != v.o.Origin {
			p.Check, p.Expected, p.Found = CheckCheckpoint, fmt.Sprintf("origin %q", v.o.Origin), fmt.Sprintf("origin %q", v.trusted.Origin)
			p.Detail = "the trusted checkpoint is of another log"
			v.problem(rankTrusted, &p)
			v.cpChecked = append(v.cpChecked, cpOutcome{size: v.trusted.Size, trusted: true, checked: true})
			return
		}
		out := v.againstData(rankTrusted, v.trusted, p)
		out.trusted = true
		v.cpChecked = append(v.cpChecked, out)
		if prev != nil {
			if prev.s.Size < v.trusted.Size {
				q := p
				q.Check, q.Expected, q.Found = CheckConsistency, fmt.Sprintf("a checkpoint of at least %d records", v.trusted.Size), fmt.Sprintf("the latest covers %d", prev.s.Size)
				q.Detail = "the checkpoint log ends before the trusted checkpoint (checkpoints were removed)"
				v.problem(rankTrusted, &q)
			} else if err := checkpoint.CheckGrowth(v.trusted.Checkpoint, prev.s.Checkpoint); err != nil {
				q := p
				q.Check, q.Detail = CheckConsistency, err.Error()
				v.problem(rankTrusted, &q)
			}
		}
	}
}

// againstData checks that the data holds at least s.Size records and that
// the root of the first s.Size is s.Root, and says whether it could.
func (v *dirVerifier) againstData(rank uint64, s *checkpoint.Signed, p Problem) cpOutcome {
	out := cpOutcome{size: s.Size, checked: true}
	if s.Size > v.dataSize {
		if v.endWhy != "" {
			out.checked, out.why = false, v.endWhy
			return out
		}
		p.Check, p.Seq = CheckCheckpoint, v.dataSize+1
		p.Expected, p.Found = fmt.Sprintf("%d records", s.Size), fmt.Sprintf("%d records", v.dataSize)
		p.Detail = fmt.Sprintf("the data holds fewer records than this signed checkpoint covers: seq %d..%d were removed (last segment truncated or replaced by an older copy)", v.dataSize+1, s.Size)
		v.problem(rank, &p)
		v.beyond = max(v.beyond, s.Size)
		return out
	}
	if why := v.purgedCheckpoint(s.Size); why != "" {
		out.checked, out.why = false, why
		return out
	}
	calc, ok := v.roots[s.Size]
	if s.Size == 0 {
		calc, ok = merkle.EmptyRoot, true
	}
	if !ok {
		out.checked = false
		out.why = fmt.Sprintf("the log-wide tree is unknown from seq %d (%s)", v.treeFrom, v.treeWhy)
		return out
	}
	if calc == s.Root {
		return out
	}
	// Locate: the largest smaller size whose signed root matched.
	good := uint64(0)
	i := sort.Search(len(v.sizes), func(i int) bool { return v.sizes[i] >= s.Size })
	for j := i - 1; j >= 0; j-- {
		if r, ok := v.roots[v.sizes[j]]; ok && v.matched(v.sizes[j], r) {
			good = v.sizes[j]
			break
		}
	}
	p.Check, p.Seq = CheckCheckpoint, good+1
	p.Expected, p.Found = s.Root.String(), calc.String()
	p.Detail = fmt.Sprintf("the root of the first %d records differs from the signed checkpoint: records in seq %d..%d changed after it was signed", s.Size, good+1, s.Size)
	if at := v.firstDamage(good+1, s.Size); at != "" {
		p.Detail += "; " + at
	}
	v.problem(rank, &p)
	return out
}

// missingAtEnd counts the records signed checkpoints cover beyond the
// data's end as missing.
func (v *dirVerifier) missingAtEnd() {
	if v.beyond <= v.dataSize {
		return
	}
	n := v.beyond - v.dataSize
	v.rep.Missing += n
	v.rep.Damage = append(v.rep.Damage, Damage{State: StateMissing, Offset: -1, FirstSeq: v.dataSize + 1, LastSeq: v.beyond, Records: n,
		Detail: fmt.Sprintf("a signed checkpoint covers %d records, the data ends %s", v.beyond, endsAt(v.dataSize))})
}

func endsAt(last uint64) string {
	if last == 0 {
		return "before seq 1 (it holds no record)"
	}
	return fmt.Sprintf("at seq %d", last)
}

// firstDamage names the first damaged record range in [from, to], which
// is most likely why a root there differs.
func (v *dirVerifier) firstDamage(from, to uint64) string {
	for _, d := range v.rep.Damage {
		if d.State == StateDamaged && d.LastSeq >= from && d.FirstSeq <= to {
			return fmt.Sprintf("%s offset %d holds seq %d..%d in a block that does not verify", d.File, d.Offset, d.FirstSeq, d.LastSeq)
		}
	}
	return ""
}

// matched reports whether some checkpoint of size signed root r.
func (v *dirVerifier) matched(size uint64, r merkle.Hash) bool {
	for _, e := range v.cps {
		if e.ok && e.s.Size == size && e.s.Root == r {
			return true
		}
	}
	return v.trusted != nil && v.trusted.Size == size && v.trusted.Root == r
}
