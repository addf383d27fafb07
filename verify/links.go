package verify

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/merkle"
	"github.com/vellumlog/vellum/segment"
)

// links checks what joins segments, counts what the data holds, grows the
// log-wide tree segment by segment as far as it is known, and checks every
// sealed segment's Merkle root and section.
func (v *dirVerifier) links(nums []uint64, results []*segResult) {
	rep := v.rep
	global := merkle.NewRange(0)
	if v.prefix != nil {
		global = v.prefix.Clone() // the tree of the purged records (purged.go)
	}
	v.treeOK = true
	stop := func(seq uint64, why string) {
		if v.treeOK {
			v.treeOK, v.treeFrom, v.treeWhy = false, seq, why
		}
	}
	var prev *segResult
	var prevLast uint64
	var prevMAC vellum.MAC
	tailOpen := -1 // index in rep.Damage of the previous segment's unreadable end, if its extent is unknown
	for i, r := range results {
		rank := uint64(rankSegment + i)
		for _, p := range r.probs {
			v.problem(rank, p)
		}
		rep.Records += r.count
		if r.count > 0 && rep.FirstSeq == 0 {
			rep.FirstSeq = r.firstRead
		}
		for _, d := range r.damage {
			if d.State == StateUnreadable {
				rep.Unreadable += d.Records
			}
			rep.Damage = append(rep.Damage, d)
		}
		h := r.hdr
		link := func(off int64, expected, found, detail string) {
			v.problem(rank, &Problem{Check: CheckLink, File: r.name, Offset: off, Seq: r.first, Expected: expected, Found: found, Detail: detail})
		}
		// The header's ties to the store and to the segment before it,
		// by the engine's rules (layout.CheckLink), on the first seq and
		// prev MAC this segment's data shows.
		hv := h
		hv.FirstSeq, hv.PrevMAC = r.first, r.prevMAC
		prevEnd := v.purgedEnd()
		if prev != nil {
			prevEnd = &layout.End{Number: prev.num, LastSeq: prevLast, LastMAC: prevMAC}
		}
		links := layout.CheckLink(r.num, v.storeID, &hv, prevEnd)
		for _, le := range links {
			switch {
			case le.Field == layout.FieldNumber && r.hdrOK:
				link(le.Offset, le.Expected, le.Found, le.Reason)
				stop(r.first, fmt.Sprintf("%s holds segment %d (files renamed or swapped)", r.name, h.Number))
			case le.Field == layout.FieldStoreID && r.hdrOK:
				link(le.Offset, le.Expected, le.Found, le.Reason)
			}
		}
		switch {
		case i > 0 && nums[i] != nums[i-1]+1:
			link(-1, fmt.Sprintf("segment %d", nums[i-1]+1), fmt.Sprintf("segment %d", nums[i]), "a segment is missing")
			stop(prevLast+1, fmt.Sprintf("segment %d is missing", nums[i-1]+1))
		case i == 0:
			if why, from := v.startGap(r); why != "" {
				stop(from, why)
			}
		}
		for _, le := range links {
			switch {
			case le.Field == layout.FieldFirstSeq && prev != nil && (tailOpen < 0 || r.first <= prevLast+1):
				// (When the previous segment ends in unreadable bytes,
				// they held the records up to this one's first: see holes.)
				link(le.Offset, le.Expected, le.Found, le.Reason)
				stop(prevLast+1, fmt.Sprintf("%s starts at seq %d, not %d", r.name, r.first, prevLast+1))
			case le.Field == layout.FieldFirstSeq && prev == nil && (prevEnd == nil || r.num == prevEnd.Number+1):
				link(le.Offset, le.Expected, le.Found, le.Reason)
				stop(1, r.name+" does not start where the log does")
			case le.Field == layout.FieldPrevMAC && prev != nil && tailOpen < 0 && !prev.tailLost:
				link(le.Offset, le.Expected, le.Found, le.Reason)
			case le.Field == layout.FieldPrevMAC && prev == nil && r.hdrOK && (prevEnd == nil || r.num == prevEnd.Number+1):
				link(le.Offset, le.Expected, le.Found, le.Reason)
			}
		}
		if prev != nil && !prev.sealed {
			v.problem(uint64(rankSegment+i-1), &Problem{Check: CheckLink, File: prev.name, Offset: prev.size,
				Detail: "segment is not sealed but later segments exist (replaced by an older copy, or truncated)"})
		}
		v.torn(i == len(results)-1, rank, r)

		// The log-wide tree and this segment's Merkle root and section.
		var g *merkle.Range
		if v.treeOK && r.first-1 == global.End() {
			before := global.Clone()
			var joined []merkle.Node
			if err := global.AppendRange(r.piece, func(n merkle.Node) {
				if merkle.StoredLevel(n.Level) {
					joined = append(joined, n)
				}
			}); err == nil {
				for size, snap := range r.snaps {
					gs := before.Clone()
					if err := gs.AppendRange(snap, nil); err == nil {
						v.roots[size] = gs.Root()
					}
				}
				if r.complete {
					g = global
				}
				r.nodes = append(r.nodes, joined...)
			} else {
				stop(global.End()+1, err.Error())
			}
		} else {
			stop(global.End()+1, fmt.Sprintf("%s does not continue the log at seq %d", r.name, global.End()+1))
		}
		if !r.complete {
			stop(r.breakSeq, r.breakWhy)
		}
		v.checkMerkle(rank, r, g)

		// What the next segment must continue.
		tailOpen = -1
		prev = r
		if r.count > 0 || r.hdrOK {
			// An empty segment whose header does not verify says
			// nothing trustworthy about where the log ends.
			prevMAC, prevLast = r.lastMAC, r.lastKnown
		}
		if n := len(r.damage); n > 0 && r.damage[n-1].State == StateUnreadable && r.damage[n-1].LastSeq == 0 {
			tailOpen = len(rep.Damage) - 1
		}
	}
	v.holes(results)
	if v.treeOK {
		rep.Tree = &Tree{Size: global.End(), Root: global.Root()}
		v.roots[global.End()] = rep.Tree.Root
	} else {
		rep.TreeUnknown = fmt.Sprintf("it is unknown from seq %d: %s", v.treeFrom, v.treeWhy)
	}
	v.dataSize = prevLast
	rep.LastSeq = prevLast
	if prev != nil {
		if d := openTail(rep.Damage, prev.name); d != nil {
			v.endWhy = fmt.Sprintf("%s ends in unreadable bytes from offset %d, so the data may hold records after seq %d", d.File, d.Offset, prevLast)
		}
	}
}

// torn reports an incomplete final batch: a warning for the last segment
// when no signed checkpoint covers it (a crash cut a write that was never
// acknowledged), a problem otherwise.
func (v *dirVerifier) torn(last bool, rank uint64, r *segResult) {
	if r.tornAt < 0 {
		return
	}
	// A checkpoint is signed only over durable records: damage to records
	// one covers is tampering, not a torn tail.
	covered := len(v.sizes) > 0 && v.sizes[len(v.sizes)-1] > r.lastRead
	switch {
	case last && covered:
		v.problem(rank, &Problem{Check: CheckFrame, File: r.name, Offset: r.tornAt, Seq: r.lastRead + 1,
			Detail: fmt.Sprintf("damaged bytes that a signed checkpoint (%d records) covers, so they were acknowledged: %s", v.sizes[len(v.sizes)-1], r.tornReason)})
	case last:
		v.rep.Warnings = append(v.rep.Warnings, fmt.Sprintf("%s: %d bytes after offset %d are an incomplete final batch or seal that was never acknowledged (%s)", r.name, r.tornSize, r.tornAt, r.tornReason))
	default:
		v.problem(rank, &Problem{Check: CheckFrame, File: r.name, Offset: r.tornAt, Detail: "damaged bytes after the last commit frame: " + r.tornReason})
	}
}

// checkMerkle compares a sealed segment's trailer root with its records
// and its Merkle section with the log-wide tree (global, nil when that is
// not known up to the segment's end), and notes what it could not check.
func (v *dirVerifier) checkMerkle(rank uint64, r *segResult, global *merkle.Range) {
	if !r.sealed {
		return
	}
	cov := &v.cov
	cov.sealed++
	ft := r.footer
	switch {
	case ft == nil:
		cov.noRoot = append(cov.noRoot, r.name+" (its footer does not verify)")
		return
	case !r.complete:
		cov.noRoot = append(cov.noRoot, r.name+" (not every record of it can be read)")
		return
	}
	trailer := r.size - segment.TrailerSize
	if !ft.HasRoot {
		v.rep.Warnings = append(v.rep.Warnings, r.name+": sealed without a Merkle root")
	} else {
		cov.roots++
		if calc := r.local.Root(); calc != merkle.Hash(ft.MerkleRoot) {
			v.problem(rank, &Problem{Check: CheckMerkle, File: r.name, Offset: trailer + 80, Seq: ft.LastSeq,
				Expected: merkle.Hash(ft.MerkleRoot).String(), Found: calc.String(),
				Detail: "the trailer's Merkle root differs from the root of the segment's records"})
		}
	}
	b, ok := ft.Sections[merkle.SectionType]
	if !ok {
		if ft.HasRoot {
			// Writers put both or neither: a root without its section
			// means the section was removed.
			v.problem(rank, &Problem{Check: CheckMerkle, File: r.name, Offset: ft.Offset, Seq: ft.LastSeq,
				Detail: "the footer has a Merkle root but no Merkle section (section removed)"})
		}
		return
	}
	if global == nil {
		cov.noSection = append(cov.noSection, r.name)
		return
	}
	cov.sections++
	want, err := merkle.NewSection(r.first-1, global, r.nodes)
	if err != nil {
		v.problem(rank, &Problem{Check: CheckMerkle, File: r.name, Offset: ft.Offset, Seq: ft.LastSeq, Detail: "cannot rebuild the Merkle section: " + err.Error()})
		return
	}
	wb, _ := want.MarshalBinary()
	if string(wb) != string(b) {
		got, perr := merkle.ParseSection(b)
		detail := "the footer's Merkle section differs from the log-wide tree the records give"
		if perr == nil && got.Size == want.Size && len(got.Range) == len(want.Range) && len(want.Range) > 0 {
			if g, err := merkle.RangeFrom(0, got.Size, got.Range); err == nil {
				detail += fmt.Sprintf(" (its tree root %s, the records' %s)", g.Root(), global.Root())
			}
		}
		v.problem(rank, &Problem{Check: CheckMerkle, File: r.name, Offset: ft.Offset, Seq: ft.LastSeq, Detail: detail})
	}
}

// holes counts the seqs between the first and the last record that no
// file holds (Missing), and gives the extent of a segment's unreadable end
// (Unreadable) when the next records tell it. Records are placed by their
// seqs, not by file order, so swapped or renamed files lose nothing.
func (v *dirVerifier) holes(results []*segResult) {
	rep := v.rep
	type run struct {
		from, to uint64
		r        *segResult
	}
	var runs []run
	for _, r := range results {
		if r.count == 0 {
			if r.hdrOK {
				// An empty segment still says, by its verified header,
				// that the log goes on at its first seq: the seqs before
				// it must be somewhere.
				runs = append(runs, run{r.first, r.first - 1, r})
			}
			continue
		}
		from := r.firstRead
		if r.hdrOK && r.first < from {
			from = r.first // its first records are unreadable
		}
		runs = append(runs, run{from, r.lastKnown, r})
	}
	slices.SortFunc(runs, func(a, b run) int { return cmp.Compare(a.from, b.from) })
	for i := 1; i < len(runs); i++ {
		prev, cur := runs[i-1], runs[i]
		if cur.from <= prev.to+1 {
			if cur.to < prev.to {
				runs[i] = prev
			}
			continue
		}
		first, last := prev.to+1, cur.from-1
		if d := openTail(rep.Damage, prev.r.name); d != nil {
			d.FirstSeq, d.LastSeq, d.Records = first, last, last-first+1
			rep.Unreadable += d.Records
			continue
		}
		rep.Missing += last - first + 1
		rep.Damage = append(rep.Damage, Damage{State: StateMissing, Offset: -1, FirstSeq: first, LastSeq: last, Records: last - first + 1,
			Detail: fmt.Sprintf("no segment holds them: %s ends at seq %d and %s starts at seq %d", prev.r.name, prev.to, cur.r.name, cur.from)})
	}
	slices.SortStableFunc(rep.Damage, func(a, b Damage) int { return cmp.Compare(a.FirstSeq, b.FirstSeq) })
}

// openTail returns the unreadable end of segment name whose extent is not
// known yet, or nil.
func openTail(ds []Damage, name string) *Damage {
	for i := len(ds) - 1; i >= 0; i-- {
		if ds[i].File == name && ds[i].State == StateUnreadable && ds[i].LastSeq == 0 {
			return &ds[i]
		}
	}
	return nil
}
