package verify

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"math/rand/v2"

	"github.com/klauspost/compress/s2"

	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

// segLayout is what a fixture segment holds.
type segLayout struct {
	first, last, count uint64
	blocks             []blockAt
}

type blockAt struct {
	off, payload, n int // frame offset, payload offset, frame length
	first, last     uint64
}

// layoutOf reads the fixture's segments and checkpoint sizes.
func layoutOf(t *testing.T, dir string) (map[uint64]segLayout, []uint64) {
	t.Helper()
	out := map[uint64]segLayout{}
	for n := uint64(1); ; n++ {
		b, err := os.ReadFile(segPath(dir, n))
		if err != nil {
			break
		}
		sr, err := segment.ScanBytes("x", b, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		l := segLayout{first: sr.State.FirstSeq, last: sr.State.LastSeq, count: sr.State.Count}
		le := binary.LittleEndian
		for off := segment.HeaderSize; off < int(sr.State.Size); {
			if b[off] == 'C' {
				off += segment.CommitSize
				continue
			}
			n := segment.BlockHeaderSize + int(le.Uint32(b[off+36:]))
			first := le.Uint64(b[off+8:])
			l.blocks = append(l.blocks, blockAt{off, off + segment.BlockHeaderSize, n, first, first + uint64(le.Uint32(b[off+4:])) - 1})
			off += n
		}
		out[n] = l
	}
	res, err := checkpoint.ReadLog(nil, filepath.Join(dir, checkpoint.LogName))
	if err != nil {
		t.Fatal(err)
	}
	var sizes []uint64
	for _, e := range res.Entries {
		s, err := checkpoint.ParseNote(e.Note)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, s.Size)
	}
	return out, sizes
}

// recordAt returns the seq of the record whose bytes hold payload offset
// p of an uncompressed block.
func recordAt(t *testing.T, b []byte, blk blockAt, p int) uint64 {
	t.Helper()
	seq := blk.first
	for q := blk.payload; q < blk.off+blk.n; seq++ {
		n, k := binary.Uvarint(b[q:])
		end := q + k + int(n) + 32
		if p < end {
			return seq
		}
		q = end
	}
	t.Fatalf("offset %d is not in the block at %d", p, blk.off)
	return 0
}

// matrixCase is one way of damaging a store, and what a true report of it
// says.
type matrixCase struct {
	name   string
	s2     bool // damage the S2-compressed fixture
	tamper func(t *testing.T, dir string, lay map[uint64]segLayout) any
	opts   func(o *Options)
	// modes: "full" (HMAC key and public key), "auditor" (public key only).
	modes []string
	check func(t *testing.T, c *matrixCtx)
}

type matrixCtx struct {
	rep     *Report
	mode    string
	lay     map[uint64]segLayout
	cps     []uint64
	total   uint64
	intact  *Tree
	info    any
	full    bool
	statusT *testing.T
}

// status asserts each check's status; checks not named must be fully
// checked (the HMAC chain: not checked without the key).
func (c *matrixCtx) status(want map[string]string) {
	t := c.statusT
	t.Helper()
	for _, cv := range c.rep.Checks {
		w, ok := want[cv.Check]
		if !ok {
			w = StatusChecked
			if cv.Check == CheckMAC && !c.full {
				w = StatusNotChecked
			}
		}
		if cv.Status != w {
			t.Errorf("%s: %s is %q (scope %q, why %q), want %q", c.mode, cv.What, cv.Status, cv.Scope, cv.Why, w)
		}
		if cv.Status != StatusChecked && cv.Why == "" {
			t.Errorf("%s: %s is %s without saying why", c.mode, cv.What, cv.Status)
		}
	}
}

// why asserts that check's reason mentions every fragment.
func (c *matrixCtx) why(check string, frags ...string) {
	t := c.statusT
	t.Helper()
	cv := c.rep.Coverage(check)
	if cv == nil {
		t.Fatalf("%s: no coverage for %s", c.mode, check)
	}
	for _, f := range frags {
		if !strings.Contains(cv.Why, f) {
			t.Errorf("%s: %s: why %q does not mention %q", c.mode, cv.What, cv.Why, f)
		}
	}
}

// counts asserts what the report says the data holds.
func (c *matrixCtx) counts(records, unreadable, missing uint64) {
	t := c.statusT
	t.Helper()
	r := c.rep
	if r.Records != records || r.Unreadable != unreadable || r.Missing != missing {
		t.Errorf("%s: %d records read, %d unreadable, %d missing; want %d, %d, %d (damage %+v)", c.mode, r.Records, r.Unreadable, r.Missing, records, unreadable, missing, r.Damage)
	}
}

// problems returns the problems of one check.
func (c *matrixCtx) problems(check string) []*Problem {
	var out []*Problem
	for _, p := range c.rep.Problems {
		if p.Check == check {
			out = append(out, p)
		}
	}
	return out
}

// TestReportMatrix damages a copy of a fixture store in each way an
// auditor may meet and checks that the report tells the truth about it:
// how many records were read, are unreadable or are missing, which ranges,
// the record a damaged block changed (with the HMAC key), whether the
// log-wide tree is known, and for every check whether it ran over
// everything, over part (and what not, and why), or not at all (and why).
// The text and JSON forms must say the same.
func TestReportMatrix(t *testing.T) {
	flipAt := func(dir string, n uint64, off int) {
		b, _ := os.ReadFile(segPath(dir, n))
		b[off] ^= 0x10
		os.WriteFile(segPath(dir, n), b, 0o644)
	}
	cases := []matrixCase{
		{
			name: "byte flipped in a record of an uncompressed block",
			tamper: func(t *testing.T, dir string, lay map[uint64]segLayout) any {
				blk := lay[2].blocks[1]
				b, _ := os.ReadFile(segPath(dir, 2))
				off := blk.payload + (blk.n-segment.BlockHeaderSize)/2
				flipAt(dir, 2, off)
				return [2]uint64{recordAt(t, b, blk, off), blk.first<<32 | blk.last}
			},
			check: func(t *testing.T, c *matrixCtx) {
				bad, rng := c.info.([2]uint64)[0], c.info.([2]uint64)[1]
				first, last := rng>>32, rng&(1<<32-1)
				c.counts(c.total, 0, 0)
				c.status(nil)
				d := c.rep.Damage
				if len(d) != 1 || d[0].State != StateDamaged || d[0].FirstSeq != first || d[0].LastSeq != last {
					t.Fatalf("%s: damage %+v, want the block seq %d..%d", c.mode, d, first, last)
				}
				if c.full && (d[0].FirstBadMAC != bad || d[0].BadMACs != 1) {
					t.Errorf("full: first bad MAC %d (%d), want seq %d", d[0].FirstBadMAC, d[0].BadMACs, bad)
				}
				if !c.full && (d[0].FirstBadMAC != 0 || d[0].MACChecked) {
					t.Errorf("auditor: a record named without the key: %+v", d[0])
				}
				if c.rep.Tree == nil || c.rep.Tree.Root == c.intact.Root {
					t.Errorf("%s: tree %v: the tree of the data as it is differs from the intact one", c.mode, c.rep.Tree)
				}
				// Every checkpoint from the damaged record on disagrees with
				// the data, and none before it.
				for _, p := range c.problems(CheckCheckpoint) {
					if p.Seq > bad {
						t.Errorf("%s: checkpoint problem located after the damaged record: %v", c.mode, p)
					}
				}
				if got, want := len(c.problems(CheckCheckpoint)), countAtLeast(c.cps, bad); got != want {
					t.Errorf("%s: %d checkpoint problems, want %d (those covering seq %d)", c.mode, got, want, bad)
				}
			},
		},
		{
			name: "byte flipped in an S2 block so that it no longer decodes",
			s2:   true,
			tamper: func(t *testing.T, dir string, lay map[uint64]segLayout) any {
				blk := lay[2].blocks[1]
				b, _ := os.ReadFile(segPath(dir, 2))
				stored := b[blk.payload : blk.off+blk.n]
				for p := len(stored) / 3; p < len(stored); p++ {
					x := bytes.Clone(stored)
					x[p] ^= 0x10
					if _, err := s2.Decode(nil, x); err != nil {
						flipAt(dir, 2, blk.payload+p)
						return blk
					}
				}
				t.Fatal("no flip breaks the block")
				return nil
			},
			check: func(t *testing.T, c *matrixCtx) {
				blk := c.info.(blockAt)
				var u *Damage
				for i := range c.rep.Damage {
					if c.rep.Damage[i].State == StateUnreadable {
						u = &c.rep.Damage[i]
					}
				}
				if u == nil || u.LastSeq != blk.last || u.FirstSeq < blk.first || u.Records != u.LastSeq-u.FirstSeq+1 {
					t.Fatalf("%s: damage %+v, want an unreadable end of the block seq %d..%d", c.mode, c.rep.Damage, blk.first, blk.last)
				}
				c.counts(c.total-u.Records, u.Records, 0)
				if c.rep.Tree != nil || !strings.Contains(c.rep.TreeUnknown, fmt.Sprintf("seq %d", u.FirstSeq)) {
					t.Errorf("%s: tree %v (%q) with seq %d unreadable", c.mode, c.rep.Tree, c.rep.TreeUnknown, u.FirstSeq)
				}
				want := map[string]string{CheckCheckpoint: StatusPartly, CheckMerkle: StatusPartly, CheckSummary: StatusPartly, CheckPostings: StatusPartly}
				if c.full {
					want[CheckMAC] = StatusPartly
					c.why(CheckMAC, fmt.Sprintf("seq %d..%d", u.FirstSeq, u.LastSeq))
				}
				c.status(want)
				c.why(CheckCheckpoint, fmt.Sprintf("unknown from seq %d", u.FirstSeq))
				if n := len(c.problems(CheckCheckpoint)); n != 0 {
					t.Errorf("%s: %d checkpoint problems for checkpoints that could not be checked", c.mode, n)
				}
			},
		},
		{
			name: "byte flipped in a commit frame",
			tamper: func(t *testing.T, dir string, lay map[uint64]segLayout) any {
				flipAt(dir, 2, firstFrame(readSeg(t, dir, 2), 'C').off+9)
				return nil
			},
			check: func(t *testing.T, c *matrixCtx) {
				c.counts(c.total, 0, 0)
				c.status(nil)
				if len(c.rep.Damage) != 0 || len(c.rep.Problems) != 1 || c.rep.Problems[0].Check != CheckFrame {
					t.Errorf("%s: damage %v, problems %v: want one frame problem and every record intact", c.mode, c.rep.Damage, c.rep.Problems)
				}
				if c.rep.Tree == nil || *c.rep.Tree != *c.intact {
					t.Errorf("%s: tree %v, want the intact %v", c.mode, c.rep.Tree, c.intact)
				}
			},
		},
		{
			name: "byte flipped in a footer",
			tamper: func(t *testing.T, dir string, lay map[uint64]segLayout) any {
				b, _ := os.ReadFile(segPath(dir, 2))
				flipAt(dir, 2, len(b)-segment.TrailerSize-20)
				return nil
			},
			check: func(t *testing.T, c *matrixCtx) {
				c.counts(c.total, 0, 0)
				c.status(map[string]string{CheckMerkle: StatusPartly, CheckSummary: StatusPartly, CheckPostings: StatusPartly})
				c.why(CheckMerkle, segName(2), "footer")
				if len(c.rep.Damage) != 0 || len(c.rep.Problems) != 1 || c.rep.Problems[0].File != segName(2) {
					t.Errorf("%s: damage %v, problems %v", c.mode, c.rep.Damage, c.rep.Problems)
				}
				if c.rep.Tree == nil || *c.rep.Tree != *c.intact {
					t.Errorf("%s: tree %v, want the intact %v", c.mode, c.rep.Tree, c.intact)
				}
			},
		},
		{
			name:   "byte flipped in a header",
			tamper: func(t *testing.T, dir string, lay map[uint64]segLayout) any { flipAt(dir, 2, 20); return nil },
			check: func(t *testing.T, c *matrixCtx) {
				c.counts(c.total, 0, 0)
				c.status(nil)
				if len(c.rep.Damage) != 0 || len(c.rep.Problems) != 1 || c.rep.Problems[0].Offset != 124 {
					t.Errorf("%s: damage %v, problems %v", c.mode, c.rep.Damage, c.rep.Problems)
				}
				if c.rep.Tree == nil || *c.rep.Tree != *c.intact {
					t.Errorf("%s: tree %v, want the intact %v", c.mode, c.rep.Tree, c.intact)
				}
			},
		},
		{
			name: "last segment truncated after its first batch",
			tamper: func(t *testing.T, dir string, lay map[uint64]segLayout) any {
				n := uint64(len(lay))
				b := readSeg(t, dir, n)
				for _, x := range frames(b) {
					if x.typ == 'C' {
						writeSeg(t, dir, n, b[:x.off+x.n])
						break
					}
				}
				sr, err := segment.Scan(vfs.Default, segPath(dir, n), nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				return sr.State.LastSeq
			},
			check: func(t *testing.T, c *matrixCtx) {
				last := c.info.(uint64)
				c.counts(last, 0, c.total-last)
				c.status(nil)
				d := c.rep.Damage
				if len(d) != 1 || d[0].State != StateMissing || d[0].FirstSeq != last+1 || d[0].LastSeq != c.total {
					t.Errorf("%s: damage %+v, want seq %d..%d missing", c.mode, d, last+1, c.total)
				}
				if c.rep.Tree == nil || c.rep.Tree.Size != last {
					t.Errorf("%s: tree %v, want the tree of %d records", c.mode, c.rep.Tree, last)
				}
				if got, want := len(c.problems(CheckCheckpoint)), countAtLeast(c.cps, last+1); got != want {
					t.Errorf("%s: %d checkpoint problems, want %d", c.mode, got, want)
				}
			},
		},
		{
			name:   "middle segment missing",
			tamper: func(t *testing.T, dir string, lay map[uint64]segLayout) any { os.Remove(segPath(dir, 3)); return nil },
			check: func(t *testing.T, c *matrixCtx) {
				s3 := c.lay[3]
				c.counts(c.total-s3.count, 0, s3.count)
				d := c.rep.Damage
				if len(d) != 1 || d[0].State != StateMissing || d[0].FirstSeq != s3.first || d[0].LastSeq != s3.last {
					t.Errorf("%s: damage %+v, want seq %d..%d missing", c.mode, d, s3.first, s3.last)
				}
				// The HMAC chain of every record the files hold is checked;
				// the missing ones are problems of their own.
				c.status(map[string]string{CheckCheckpoint: StatusPartly, CheckMerkle: StatusPartly})
				c.why(CheckCheckpoint, "segment 3 is missing")
				if cv := c.rep.Coverage(CheckCheckpoint); !strings.HasPrefix(cv.Scope, fmt.Sprintf("%d checkpoints", countBelow(c.cps, s3.first))) {
					t.Errorf("%s: checkpoints checked: %q, want the %d before seq %d", c.mode, cv.Scope, countBelow(c.cps, s3.first), s3.first)
				}
				if c.rep.Tree != nil || !strings.Contains(c.rep.TreeUnknown, fmt.Sprintf("seq %d", s3.first)) {
					t.Errorf("%s: tree %v (%q)", c.mode, c.rep.Tree, c.rep.TreeUnknown)
				}
				if n := len(c.problems(CheckCheckpoint)); n != 0 {
					t.Errorf("%s: %d checkpoint problems: a checkpoint that cannot be checked is not a mismatch", c.mode, n)
				}
			},
		},
		{
			name: "checkpoint log missing",
			tamper: func(t *testing.T, dir string, lay map[uint64]segLayout) any {
				os.Remove(filepath.Join(dir, checkpoint.LogName))
				return nil
			},
			check: func(t *testing.T, c *matrixCtx) {
				c.counts(c.total, 0, 0)
				c.status(map[string]string{CheckSignature: StatusNotChecked, CheckCheckpoint: StatusNotChecked, CheckConsistency: StatusNotChecked})
				c.why(CheckCheckpoint, "missing")
				if ps := c.problems(CheckCheckpoint); len(ps) != 1 || !strings.Contains(ps[0].Detail, "missing") || c.rep.Checkpoints != 0 {
					t.Errorf("%s: problems %v", c.mode, c.rep.Problems)
				}
				if c.rep.Tree == nil || *c.rep.Tree != *c.intact {
					t.Errorf("%s: tree %v", c.mode, c.rep.Tree)
				}
			},
		},
		{
			name:   "wrong HMAC key",
			tamper: func(t *testing.T, dir string, lay map[uint64]segLayout) any { return nil },
			opts:   func(o *Options) { o.Keys = chain.NewKeyring(testKey(9)) },
			modes:  []string{"full"},
			check: func(t *testing.T, c *matrixCtx) {
				c.counts(c.total, 0, 0)
				c.status(map[string]string{CheckMAC: StatusNotChecked})
				c.why(CheckMAC, "key id", "was not given")
				if n := len(c.problems(CheckKey)); n != len(c.lay) || len(c.rep.Problems) != n {
					t.Errorf("key problems %d for %d segments; all problems %v", n, len(c.lay), c.rep.Problems)
				}
			},
		},
		{
			name: "segment files swapped",
			tamper: func(t *testing.T, dir string, lay map[uint64]segLayout) any {
				a, b := readSeg(t, dir, 2), readSeg(t, dir, 3)
				writeSeg(t, dir, 2, b)
				writeSeg(t, dir, 3, a)
				return nil
			},
			check: func(t *testing.T, c *matrixCtx) {
				// Every record is still there: nothing is missing.
				c.counts(c.total, 0, 0)
				c.status(map[string]string{CheckCheckpoint: StatusPartly, CheckMerkle: StatusPartly})
				if c.rep.Tree != nil || !strings.Contains(c.rep.TreeUnknown, "swapped") {
					t.Errorf("%s: tree %v (%q)", c.mode, c.rep.Tree, c.rep.TreeUnknown)
				}
				if len(c.problems(CheckLink)) == 0 || len(c.rep.Damage) != 0 {
					t.Errorf("%s: problems %v, damage %v", c.mode, c.rep.Problems, c.rep.Damage)
				}
			},
		},
		{
			name: "two records swapped by a forger who fixes CRCs",
			tamper: func(t *testing.T, dir string, lay map[uint64]segLayout) any {
				forge(t, dir, 2, func(es []entry) []entry { es[5], es[6] = es[6], es[5]; return es })
				return lay[2].first + 5
			},
			check: func(t *testing.T, c *matrixCtx) {
				at := c.info.(uint64)
				c.counts(c.total, 0, 0)
				c.status(nil)
				if len(c.rep.Damage) != 0 {
					t.Errorf("%s: damage %v: the bytes verify, only MACs and roots tell", c.mode, c.rep.Damage)
				}
				// The two swapped records fail, and the one after them,
				// whose MAC chains from the MAC now before it.
				if ps := c.problems(CheckMAC); c.full && (len(ps) != 1 || ps[0].Seq != at || !strings.Contains(ps[0].Detail, "3 records")) {
					t.Errorf("full: MAC problems %v, want seq %d and 3 records failing", ps, at)
				}
				if got, want := len(c.problems(CheckCheckpoint)), countAtLeast(c.cps, at); got != want {
					t.Errorf("%s: %d checkpoint problems, want %d", c.mode, got, want)
				}
			},
		},
		{
			name: "checkpoint log entry damaged in the middle",
			tamper: func(t *testing.T, dir string, lay map[uint64]segLayout) any {
				p := filepath.Join(dir, checkpoint.LogName)
				res, _ := checkpoint.ReadLog(nil, p)
				b, _ := os.ReadFile(p)
				b[res.Entries[3].Offset+20] ^= 1
				os.WriteFile(p, b, 0o644)
				return nil
			},
			check: func(t *testing.T, c *matrixCtx) {
				c.counts(c.total, 0, 0)
				c.status(map[string]string{CheckCheckpoint: StatusPartly})
				c.why(CheckCheckpoint, "damaged")
				if cv := c.rep.Coverage(CheckCheckpoint); !strings.HasPrefix(cv.Scope, fmt.Sprintf("%d checkpoints", len(c.cps)-1)) || c.rep.Checkpoints != len(c.cps)-1 {
					t.Errorf("%s: %q, %d checkpoints read", c.mode, cv.Scope, c.rep.Checkpoints)
				}
				if ps := c.problems(CheckCheckpoint); len(ps) != 1 || len(c.rep.Problems) != 1 {
					t.Errorf("%s: problems %v", c.mode, c.rep.Problems)
				}
			},
		},
		{
			name:   "checkpoints checked with another public key",
			tamper: func(t *testing.T, dir string, lay map[uint64]segLayout) any { return nil },
			opts: func(o *Options) {
				_, v := signerPair("vellum-test")
				o.Verifier = v
			},
			check: func(t *testing.T, c *matrixCtx) {
				c.counts(c.total, 0, 0)
				c.status(map[string]string{CheckCheckpoint: StatusNotChecked, CheckConsistency: StatusNotChecked})
				c.why(CheckCheckpoint, "signature does not verify")
				if n := len(c.problems(CheckSignature)); n != len(c.cps) || len(c.rep.Problems) != n {
					t.Errorf("%s: %d signature problems for %d checkpoints; all %v", c.mode, n, len(c.cps), c.rep.Problems)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := getFixture(t)
			if tc.s2 {
				f = getFixtureS2(t)
			}
			lay, cps := layoutOf(t, f.dir)
			intactRep, err := Dir(f.copyOf(t), &Options{Verifier: f.verifier})
			if err != nil || !intactRep.OK() || intactRep.Tree == nil {
				t.Fatalf("intact copy: %v %v", err, intactRep.Problems)
			}
			dir := f.copyOf(t)
			info := tc.tamper(t, dir, lay)
			modes := tc.modes
			if modes == nil {
				modes = []string{"full", "auditor"}
			}
			for _, mode := range modes {
				o := &Options{Keys: chain.NewKeyring(f.key), Verifier: f.verifier}
				if mode == "auditor" {
					o.Keys = nil
				}
				if tc.opts != nil {
					tc.opts(o)
				}
				rep, err := Dir(dir, o)
				if err != nil {
					t.Fatalf("%s: %v", mode, err)
				}
				if rep.OK() {
					t.Fatalf("%s: damage not reported", mode)
				}
				c := &matrixCtx{rep: rep, mode: mode, lay: lay, cps: cps, total: uint64(f.records), intact: intactRep.Tree, info: info, full: o.Keys != nil, statusT: t}
				tc.check(t, c)
				reportInvariants(t, mode, rep)
				if t.Failed() || os.Getenv("VELLUM_SHOW_REPORTS") != "" {
					var b strings.Builder
					rep.WriteText(&b, false)
					t.Logf("%s report:\n%s", mode, b.String())
				}
			}
		})
	}
}

// reportInvariants holds for every report: the damage list adds up to the
// counts, the tree is there exactly when no reason says it is not, and the
// text and JSON forms say what Checks say.
func reportInvariants(t *testing.T, mode string, rep *Report) {
	t.Helper()
	var unreadable, missing uint64
	for _, d := range rep.Damage {
		switch d.State {
		case StateUnreadable:
			unreadable += d.Records
		case StateMissing:
			missing += d.Records
		}
	}
	if unreadable != rep.Unreadable || missing != rep.Missing {
		t.Errorf("%s: damage adds up to %d unreadable and %d missing, the report says %d and %d", mode, unreadable, missing, rep.Unreadable, rep.Missing)
	}
	// Read, unreadable and missing account for every seq between the
	// first and the last known, unless the extent of a damage is unknown.
	lo, hi, open := rep.FirstSeq, rep.LastSeq, false
	for _, d := range rep.Damage {
		switch {
		case d.State == StateDamaged:
		case d.FirstSeq == 0 || d.LastSeq == 0:
			open = true
		default:
			if lo == 0 || d.FirstSeq < lo {
				lo = d.FirstSeq
			}
			hi = max(hi, d.LastSeq)
		}
	}
	if !open && hi > 0 && rep.Records+rep.Unreadable+rep.Missing != hi-lo+1 {
		t.Errorf("%s: %d read + %d unreadable + %d missing do not account for seq %d..%d", mode, rep.Records, rep.Unreadable, rep.Missing, lo, hi)
	}
	if (rep.Tree == nil) == (rep.TreeUnknown == "") {
		t.Errorf("%s: tree %v, reason %q", mode, rep.Tree, rep.TreeUnknown)
	}
	var b strings.Builder
	rep.WriteText(&b, false)
	text := b.String()
	if !strings.HasPrefix(text, "NOT INTACT") || !strings.Contains(text, fmt.Sprintf("records: %d read", rep.Records)) {
		t.Errorf("%s: text report:\n%s", mode, text)
	}
	for _, cv := range rep.Checks {
		line := map[string]string{StatusChecked: "  checked: ", StatusPartly: "  partly checked: ", StatusNotChecked: "  not checked: "}[cv.Status] + cv.What + ": "
		if !strings.Contains(text, line) {
			t.Errorf("%s: text report lacks %q:\n%s", mode, line, text)
		}
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js, &back); err != nil || len(back.Checks) != len(rep.Checks) || back.Records != rep.Records || back.Missing != rep.Missing ||
		back.Unreadable != rep.Unreadable || (back.Tree == nil) != (rep.Tree == nil) {
		t.Errorf("%s: JSON report does not round-trip: %v\n%s", mode, err, js)
	}
}

func countAtLeast(sizes []uint64, seq uint64) int {
	n := 0
	for _, s := range sizes {
		if s >= seq {
			n++
		}
	}
	return n
}

func countBelow(sizes []uint64, seq uint64) int {
	n := 0
	for _, s := range sizes {
		if s < seq {
			n++
		}
	}
	return n
}

// TestRandomDamageReportsAddUp damages copies of both fixtures in larger
// ways than a bit flip (a stretch of bytes zeroed or overwritten, a file
// cut short, a segment removed) and checks that the report stays true to
// itself: the counts add up, every check has its line, the tree is there
// exactly when no reason says it is not. VELLUM_FLIPS raises the count.
func TestRandomDamageReportsAddUp(t *testing.T) {
	rng := rand.New(rand.NewPCG(0xda7a, 2))
	for _, f := range []*fixture{getFixture(t), getFixtureS2(t)} {
		lay, _ := layoutOf(t, f.dir)
		for i := 0; i < flips()/2; i++ {
			dir := f.copyOf(t)
			n := uint64(1 + rng.IntN(len(lay)))
			p := segPath(dir, n)
			b, _ := os.ReadFile(p)
			what := ""
			switch k := rng.IntN(4); k {
			case 0, 1:
				off, m := rng.IntN(liveLen(p, b)), 1+rng.IntN(4096)
				end := min(len(b), off+m)
				for j := off; j < end; j++ {
					if k == 0 {
						b[j] = 0
					} else {
						b[j] = byte(rng.IntN(256))
					}
				}
				what = fmt.Sprintf("bytes %d..%d of segment %d %s", off, end, n, map[int]string{0: "zeroed", 1: "overwritten"}[k])
			case 2:
				cut := rng.IntN(liveLen(p, b))
				b = b[:cut]
				what = fmt.Sprintf("segment %d cut at %d", n, cut)
			case 3:
				os.Remove(p)
				b = nil
				what = fmt.Sprintf("segment %d removed", n)
			}
			if b != nil {
				os.WriteFile(p, b, 0o644)
			}
			rep, err := Dir(dir, &Options{Verifier: f.verifier, Keys: chain.NewKeyring(f.key)})
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if rep.OK() {
				t.Fatalf("%s: not detected", what)
			}
			reportInvariants(t, what, rep)
			if t.Failed() {
				var sb strings.Builder
				rep.WriteText(&sb, false)
				t.Fatalf("%s:\n%s", what, sb.String())
			}
		}
	}
}

// liveLen returns how many of a store file's bytes carry data: the zero
// tail of a preallocated active segment (segment/FORMAT.md, "Preallocated
// files") carries none, so damage there is at most a torn tail, reported
// as a warning (TestZeroTailDamage), never lost data.
func liveLen(name string, b []byte) int {
	if strings.HasSuffix(name, ".vseg") {
		if sr, err := segment.ScanBytes(name, b, nil, nil); err == nil {
			return len(b) - int(sr.ZeroTail)
		}
	}
	return len(b)
}

// TestZeroTailDamage pins what verify says of the zero tail of a
// preallocated active segment (segment/FORMAT.md, "Preallocated files"):
// the tail is not a problem, cutting it changes nothing, and a stray
// non-zero byte in it is an incomplete final batch (a warning, as any torn
// tail), since no data was acknowledged there.
func TestZeroTailDamage(t *testing.T) {
	f := getFixture(t)
	lay, _ := layoutOf(t, f.dir)
	last := uint64(len(lay))
	b, err := os.ReadFile(segPath(f.dir, last))
	if err != nil {
		t.Fatal(err)
	}
	live := liveLen(segPath(f.dir, last), b)
	if live == len(b) {
		t.Skip("the fixture's active segment has no zero tail")
	}
	for _, tc := range []struct {
		name    string
		change  func(b []byte) []byte
		warning string
	}{
		{"untouched", func(b []byte) []byte { return b }, ""},
		{"tail cut", func(b []byte) []byte { return b[:live] }, ""},
		{"part of the tail cut", func(b []byte) []byte { return b[:live+(len(b)-live)/2] }, ""},
		{"stray byte in the tail", func(b []byte) []byte { b[len(b)-100] = 7; return b }, "incomplete final batch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := f.copyOf(t)
			p := segPath(dir, last)
			if err := os.WriteFile(p, tc.change(bytes.Clone(b)), 0o644); err != nil {
				t.Fatal(err)
			}
			rep, err := Dir(dir, &Options{Verifier: f.verifier, Keys: chain.NewKeyring(f.key)})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() {
				var sb strings.Builder
				rep.WriteText(&sb, false)
				t.Fatalf("not intact:\n%s", sb.String())
			}
			got := strings.Join(rep.Warnings, "; ")
			if tc.warning == "" && got != "" || tc.warning != "" && !strings.Contains(got, tc.warning) {
				t.Fatalf("warnings %q, want %q", got, tc.warning)
			}
		})
	}
}
