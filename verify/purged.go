package verify

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/merkle"
)

// Purged is a range of segments a retention purge removed, as the
// retention manifest and the anchor record that authorized it say
// (segment/FORMAT.md, "Retention").
type Purged struct {
	FirstSegment uint64    `json:"first_segment"`
	LastSegment  uint64    `json:"last_segment"`
	FirstSeq     uint64    `json:"first_seq"`
	LastSeq      uint64    `json:"last_seq"`
	FirstTime    time.Time `json:"first_time,omitzero"`
	LastTime     time.Time `json:"last_time,omitzero"`
	PurgedAt     time.Time `json:"purged_at,omitzero"`
	// AnchorSeq is the retention.purge record that authorized the purge;
	// Anchor says what was found there.
	AnchorSeq uint64 `json:"anchor_seq"`
	Anchor    string `json:"anchor"`
}

// The action of a purge's anchor record (engine.ActionPurge; verify does
// not import the engine).
const actionPurge = "retention.purge"

// readPurged reads the retention manifest; a manifest that does not parse
// is a problem, and the directory is then checked as if nothing had been
// purged (so the missing segments are reported).
func (v *dirVerifier) readPurged() {
	m, err := layout.ReadPurged(v.o.FS, v.dir)
	if err != nil {
		v.problem(rankStore, &Problem{Check: CheckStore, File: layout.PurgedName, Offset: -1, Detail: "the retention manifest is unreadable: " + err.Error()})
		return
	}
	v.purged = m
	if m == nil {
		return
	}
	hs := make([]merkle.Hash, len(m.Range))
	for i, h := range m.Range {
		hs[i] = merkle.Hash(h)
	}
	r, err := merkle.RangeFrom(0, m.LastSeq, hs)
	if err != nil {
		v.problem(rankStore, &Problem{Check: CheckStore, File: layout.PurgedName, Offset: -1, Detail: err.Error()})
		v.purged = nil
		return
	}
	v.prefix = r
	v.roots[m.LastSeq] = r.Root()
}

// skipPurged leaves out segment files the manifest names as purged: a
// purge interrupted after its manifest was written leaves them, and the
// store deletes them when it next opens.
func (v *dirVerifier) skipPurged(nums []uint64) []uint64 {
	if v.purged == nil {
		return nums
	}
	i := 0
	for i < len(nums) && nums[i] <= v.purged.Through {
		i++
	}
	if i > 0 {
		v.rep.Warnings = append(v.rep.Warnings, fmt.Sprintf("segments %d to %d are still on disk although the retention manifest records them as purged (a purge was interrupted after it was anchored; the store deletes them when it next opens); not checked",
			nums[0], nums[i-1]))
	}
	return nums[i:]
}

// purgedEnd is where the purged segments end, for the first segment's
// link; nil when nothing was purged.
func (v *dirVerifier) purgedEnd() *layout.End {
	if v.purged == nil {
		return nil
	}
	return &layout.End{Number: v.purged.Through, LastSeq: v.purged.LastSeq, LastMAC: v.purged.LastMAC}
}

// startGap reports segments missing before the first one present: those a
// purge removed are fine, any other is a problem. It returns why the tree
// cannot be built from the start (and the first seq it lacks), or "".
func (v *dirVerifier) startGap(r *segResult) (string, uint64) {
	want := uint64(1)
	if v.purged != nil {
		want = v.purged.Through + 1
	}
	if r.num == want {
		return "", 0
	}
	from := uint64(1)
	if v.purged != nil {
		from = v.purged.LastSeq + 1
	}
	detail := fmt.Sprintf("segment %d is missing and no purge removed it (%s has no record of one): segments removed outside a purge", want, layout.PurgedName)
	if v.purged != nil {
		detail = fmt.Sprintf("segment %d is missing: purges removed segments 1 to %d (%s), so the store must continue there; a segment removed outside a purge", want, v.purged.Through, layout.PurgedName)
	}
	v.problem(rankSegment, &Problem{Check: CheckLink, File: segmentName(want), Offset: -1, Seq: from,
		Expected: fmt.Sprintf("segment %d", want), Found: fmt.Sprintf("segment %d", r.num), Detail: detail})
	if r.hdrOK && r.first > from {
		n := r.first - from
		v.rep.Missing += n
		v.rep.Damage = append(v.rep.Damage, Damage{State: StateMissing, Offset: -1, FirstSeq: from, LastSeq: r.first - 1, Records: n,
			Detail: fmt.Sprintf("no segment holds them: %s starts at seq %d", r.name, r.first)})
	}
	return fmt.Sprintf("segment %d is missing", want), from
}

// purgedCheckpoint says why checkpoint size cannot be compared with the
// data: it covers only purged records. "" when it can.
func (v *dirVerifier) purgedCheckpoint(size uint64) string {
	if v.purged == nil || size == 0 || size >= v.purged.LastSeq {
		return ""
	}
	return fmt.Sprintf("it covers only records that retention purged (seq 1..%d; the data starts at seq %d)", v.purged.LastSeq, v.purged.LastSeq+1)
}

// anchors lists the purged ranges in the report and checks that each
// purge's anchor record is in the data and names what the manifest says
// went. The anchor's content is proved like every other record (MAC chain,
// Merkle tree, checkpoints), so a manifest that agrees with it is
// authorized by the log itself.
func (v *dirVerifier) anchors() {
	m := v.purged
	if m == nil {
		return
	}
	var st *Store
	defer func() {
		if st != nil {
			st.Close()
		}
	}()
	for i, pg := range m.Purges {
		first, last := pg.Segments[0], pg.Segments[len(pg.Segments)-1]
		p := Purged{FirstSegment: first.Number, LastSegment: last.Number, FirstSeq: first.FirstSeq, LastSeq: last.LastSeq,
			FirstTime: first.FirstTime, LastTime: last.LastTime, PurgedAt: pg.Time, AnchorSeq: pg.AnchorSeq}
		bad := func(detail string) {
			v.problem(rankStore, &Problem{Check: CheckStore, File: layout.PurgedName, Offset: -1, Seq: pg.AnchorSeq,
				Detail: fmt.Sprintf("purge %d (segments %d-%d): %s", i+1, first.Number, last.Number, detail)})
			p.Anchor = "does not verify: " + detail
		}
		switch {
		case pg.AnchorSeq <= m.LastSeq:
			p.Anchor = fmt.Sprintf("seq %d, itself purged by a later purge (whose anchor is checked)", pg.AnchorSeq)
		case pg.AnchorSeq > v.dataSize:
			bad(fmt.Sprintf("its anchor record seq %d is not in the data (which ends at seq %d)", pg.AnchorSeq, v.dataSize))
		default:
			if st == nil {
				var err error
				if st, err = OpenStore(v.o.FS, v.dir); err != nil {
					bad("cannot read its anchor record: " + err.Error())
					break
				}
			}
			var rec *vellum.Record
			for sr, err := range st.Records(pg.AnchorSeq, pg.AnchorSeq) {
				if err == nil {
					rec = &sr.Record
				}
			}
			if rec == nil {
				bad(fmt.Sprintf("its anchor record seq %d cannot be read", pg.AnchorSeq))
				break
			}
			if why := anchorMismatch(rec, pg); why != "" {
				bad(fmt.Sprintf("anchor record seq %d %s", pg.AnchorSeq, why))
				break
			}
			p.Anchor = fmt.Sprintf("seq %d, a %s record by %q naming the same segments, seqs, last MACs and Merkle roots", pg.AnchorSeq, actionPurge, rec.UserID)
		}
		v.rep.Purged = append(v.rep.Purged, p)
	}
}

// anchorMismatch compares an anchor record with the manifest's purge.
func anchorMismatch(r *vellum.Record, pg layout.Purge) string {
	if r.Action != actionPurge {
		return fmt.Sprintf("is a %q record, not %s", r.Action, actionPurge)
	}
	first, last := pg.Segments[0], pg.Segments[len(pg.Segments)-1]
	var macs, roots []string
	for _, s := range pg.Segments {
		macs = append(macs, fmt.Sprintf("%d:%s", s.Number, s.LastMAC))
		roots = append(roots, fmt.Sprintf("%d:%x", s.Number, s.MerkleRoot[:]))
	}
	for _, f := range []struct{ key, want string }{
		{"retention.segments", fmt.Sprintf("%d-%d", first.Number, last.Number)},
		{"retention.first_seq", strconv.FormatUint(first.FirstSeq, 10)},
		{"retention.last_seq", strconv.FormatUint(last.LastSeq, 10)},
		{"retention.last_macs", strings.Join(macs, ",")},
		{"retention.merkle_roots", strings.Join(roots, ",")},
	} {
		if got := r.Attributes[f.key]; got != f.want {
			return fmt.Sprintf("says %s %q, the manifest %q", f.key, got, f.want)
		}
	}
	return ""
}
