package verify

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/index"
	"github.com/vellumlog/vellum/merkle"
	"github.com/vellumlog/vellum/segment"
)

// segResult is what a worker found in one segment, on its own.
type segResult struct {
	num  uint64
	name string
	size int64
	hdr  segment.Header
	// hdrOK: the header verifies, so its number, store id, first seq and
	// prev MAC can be trusted. Otherwise first and prevMAC come from the
	// first readable block.
	hdrOK bool
	// unreadable: nothing of the file could be read as a segment.
	unreadable bool
	first      uint64     // first seq of the segment (header, or first block)
	prevMAC    vellum.MAC // chain value before it
	count      uint64     // records read, damaged ones included
	firstRead  uint64     // first and last seq read (0 when none)
	lastRead   uint64
	lastMAC    vellum.MAC
	// lastKnown is the last seq the segment holds as far as known: its
	// last record read, or the last of its unreadable records when their
	// range is known; tailLost is set when its last records are
	// unreadable, so lastMAC is not the chain value at its end.
	lastKnown uint64
	tailLost  bool
	// sealed: the file ends in a footer (verified or not); footer is set
	// when it verifies and agrees with the records.
	sealed bool
	footer *segment.Footer
	// Torn tail of an unsealed segment (an incomplete final batch).
	tornAt     int64
	tornReason string
	tornSize   int64
	// complete: every record of the segment was read with seqs in order
	// from first, so its own tree and its piece of the log-wide tree are
	// known; otherwise the piece stops where breakWhy says.
	complete bool
	breakSeq uint64 // first seq the piece lacks, when !complete
	breakWhy string
	local    merkle.RootBuilder       // the segment's own tree
	piece    *merkle.Range            // its leaves in the log-wide tree, as far as known
	nodes    []merkle.Node            // stored-level nodes complete inside the piece
	snaps    map[uint64]*merkle.Range // the piece at checkpoint sizes inside it
	// summaryChecked: the footer's section 2 was compared with the
	// records; otherwise summaryWhy says why not.
	summaryChecked bool
	summaryWhy     string
	// postingsChecked: the footer's section 4 was compared with the
	// records; otherwise postingsWhy says why not.
	postingsChecked bool
	postingsWhy     string
	// MAC check: records whose MAC was checked, those that failed and the
	// first of them; macWhy says why the segment's MACs were not checked.
	macChecked, macBad uint64
	macFirstBad        uint64
	macWhy             string
	damage             []Damage // records damaged or unreadable, in file order
	probs              []*Problem
}

// segment checks one segment on its own: framing and CRCs, the MAC of every
// record from the MAC before it, its leaves and its span summaries. When
// the framing does not verify it reads every record that can still be read
// (segment.Salvage), so the report can say which records are damaged and
// which are fine. loaded is called once the segment's bytes are in memory.
func (v *dirVerifier) segment(num uint64, last bool, done *atomic.Int64, buf *[]byte, pool *hashPool, loaded func()) (r *segResult, err error) {
	path := v.segPath(num)
	name := filepath.Join("segments", segmentName(num))
	b, unmap, err := v.load(path, buf)
	if err != nil {
		return nil, fmt.Errorf("verify: read %s: %w", path, err)
	}
	defer unmap()
	loaded()
	// A mapped file that shrinks under us faults: report it, do not crash.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("verify: %s changed while it was being read (%v); verify a copy", path, p)
		}
	}()
	progress := &segProgress{done: done, last: segment.HeaderSize}
	done.Add(segment.HeaderSize)
	defer func() { done.Add(int64(len(b)) - progress.last) }()

	hdr, herr := segment.ParseHeader(path, b)
	r = &segResult{num: num, name: name, size: int64(len(b)), tornAt: -1}
	c := &segCheck{v: v, r: r, progress: progress}
	c.sizePostings(b)
	if pool != nil {
		c.q = &hashQueue{pool: pool, size: cmp.Or(v.o.hashBatch, hashBatchSize)}
	}
	if herr == nil {
		c.start(hdr, true)
	}
	sr, err := segment.ScanBytes(path, b, nil, c.entry)
	if err == nil && sr.TornAt >= 0 && !last && segment.EndsInTrailer(b) {
		// A sealed segment before the last whose footer does not verify:
		// not an interrupted write (a seal is never followed by another
		// segment unless it completed). Read it again to say what is
		// still known.
		err = &segment.CorruptError{Path: path, Offset: sr.TornAt, Reason: sr.TornReason}
	}
	if err == nil {
		r.sealed = sr.Sealed
		if sr.TornAt >= 0 {
			r.tornAt, r.tornReason, r.tornSize = sr.TornAt, sr.TornReason, sr.FileSize-sr.TornAt
		}
		c.finish()
		if sr.Footer != nil {
			// The query index trusts section 2 to skip spans: forged
			// summaries would hide records from filtered queries, so they
			// must be the ones the records give.
			if sec, ok := sr.Footer.Sections[segment.SectionSummaries]; ok {
				r.summaryChecked = true
				if !bytes.Equal(sec, index.MarshalSummaries(c.sum.Finish())) {
					r.probs = append(r.probs, &Problem{Check: CheckSummary, File: r.name, Offset: sr.Footer.Offset,
						Detail: "the footer's span summaries (section 2) differ from those the records give: filtered queries could skip records"})
				}
			} else {
				r.summaryWhy = "it has no span summaries (section 2): queries read all its spans"
			}
			c.checkPostings(sr.Footer)
			r.footer = cloneFooter(sr.Footer)
		}
		return r, nil
	}

	// The framing does not verify. Report what the scan found first, then
	// read again everything that can be read.
	first := frameProblem(r.name, path, err)
	r = &segResult{num: num, name: name, size: int64(len(b)), tornAt: -1, probs: []*Problem{first}}
	c = &segCheck{v: v, r: r, progress: progress}
	raw, haveRaw := segment.RawHeader(b)
	if herr == nil {
		c.start(hdr, true)
	}
	sv, err := segment.Salvage(path, b, nil, func(en segment.Entry, _ bool) error {
		if !c.started {
			// The header does not verify: the first readable block says
			// where the segment starts.
			raw.FirstSeq, raw.PrevMAC = en.Seq, en.PrevMAC
			c.start(raw, false)
		}
		return c.entry(en)
	})
	if err != nil {
		return nil, err
	}
	if !c.started {
		r.unreadable = !haveRaw
		c.start(raw, false)
		c.breakAt(0, r.name+" holds no readable record")
	}
	r.sealed, r.footer = sv.Sealed, cloneFooter(sv.Footer)
	if sv.Footer != nil && sv.Spans != nil {
		// Every byte read as a frame, so the spans are known: the
		// summaries can be compared with the records as they are.
		if sec, ok := sv.Footer.Sections[segment.SectionSummaries]; ok {
			r.summaryChecked = true
			if !bytes.Equal(sec, index.MarshalSummaries(c.sum.Finish())) {
				r.probs = append(r.probs, &Problem{Check: CheckSummary, File: r.name, Offset: sv.Footer.Offset,
					Detail: "the footer's span summaries (section 2) differ from those the records give: filtered queries could skip records"})
			}
		}
		c.checkPostings(sv.Footer)
	}
	if sv.TornAt >= 0 {
		r.tornAt, r.tornSize = sv.TornAt, sv.FileSize-sv.TornAt
		r.tornReason = fmt.Sprintf("%d records with no commit frame after them", sv.TornRecords)
	}
	r.summaryWhy = "bytes of it do not read as frames, so its spans are unknown"
	if !r.postingsChecked {
		r.postingsWhy = "bytes of it do not read as frames, so its records are not all known"
	}
	for _, d := range sv.Damage {
		if first.Offset < d.Offset || first.Offset >= d.Offset+max(d.Length, 1) {
			// Not the place the scan already reported.
			r.probs = append(r.probs, &Problem{Check: CheckFrame, File: r.name, Offset: d.Offset, Seq: d.FirstSeq, Detail: d.Kind.String() + ": " + d.Reason})
		}
		switch d.Kind {
		case segment.DamageBlock:
			r.damage = append(r.damage, Damage{State: StateDamaged, File: r.name, Offset: d.Offset, FirstSeq: d.FirstSeq,
				LastSeq: d.FirstSeq + d.Count - 1, Records: d.Count, Detail: "read, but the block holding them does not verify: " + d.Reason})
		case segment.DamageLost:
			dm := Damage{State: StateUnreadable, File: r.name, Offset: d.Offset, FirstSeq: d.FirstSeq, Records: d.Count, Detail: d.Reason}
			if d.Count > 0 && d.FirstSeq > 0 {
				dm.LastSeq = d.FirstSeq + d.Count - 1
			}
			r.damage = append(r.damage, dm)
			c.breakAt(d.FirstSeq, fmt.Sprintf("%s offset %d holds unreadable records", r.name, d.Offset))
		}
	}
	c.finish()
	for _, d := range r.damage {
		if d.State == StateUnreadable && d.LastSeq >= r.lastKnown && d.LastSeq > 0 {
			r.lastKnown, r.tailLost = d.LastSeq, true
		}
	}
	// Name the damaged records their MACs show changed.
	for i := range r.damage {
		d := &r.damage[i]
		if d.State != StateDamaged {
			continue
		}
		d.MACChecked = c.hasher != nil
		for _, bad := range c.badSeqs {
			if bad >= d.FirstSeq && bad <= d.LastSeq {
				if d.FirstBadMAC == 0 {
					d.FirstBadMAC = bad
				}
				d.BadMACs++
			}
		}
	}
	return r, nil
}

// segProgress reports the bytes of a segment checked so far.
type segProgress struct {
	done *atomic.Int64
	last int64
}

func (p *segProgress) at(off int64) {
	if off > p.last {
		p.done.Add(off - p.last)
		p.last = off
	}
}

func cloneFooter(ft *segment.Footer) *segment.Footer {
	if ft == nil {
		return nil
	}
	// Footer sections alias the file buffer, which the worker reuses.
	c := *ft
	c.Sections = make(map[uint16][]byte, len(ft.Sections))
	for k, s := range ft.Sections {
		c.Sections[k] = bytes.Clone(s)
	}
	return &c
}

// frameProblem turns a scan error into the segment's first problem.
func frameProblem(name, path string, err error) *Problem {
	var ce *segment.CorruptError
	p := &Problem{Check: CheckFrame, File: name, Offset: -1, Detail: err.Error()}
	if errors.As(err, &ce) {
		p.Offset, p.Seq, p.Detail = ce.Offset, ce.Seq, ce.Reason
		// A reason that quotes an inner error repeats the path and place;
		// keep only what it says.
		if i := strings.LastIndex(p.Detail, path); i >= 0 {
			if j := strings.Index(p.Detail[i:], ": "); j >= 0 {
				p.Detail = p.Detail[i+j+2:]
			}
		}
	}
	return p
}

// segCheck is the per-record work of a segment check.
type segCheck struct {
	v        *dirVerifier
	r        *segResult
	progress *segProgress
	started  bool
	hasher   *chain.Hasher
	key      *chain.Key // the key of hasher
	lh       merkle.Hasher
	// q, when set, hashes records on the pool (hashpool.go); otherwise
	// entry hashes them itself.
	q       *hashQueue
	sum     index.Summarizer
	post    index.PostingsBuilder
	fields  vellum.Fields
	snapAt  []uint64
	macProb *Problem
	badSeqs []uint64
}

// sizePostings gives the postings builder's lists of hashed values (one
// entry a record with a session or a trace) room for the records the
// trailer of segment b claims, so that they do not grow by copying. The
// count is not trusted: it is capped at one record per minPostingsHint
// bytes of the file, so a forged trailer costs no more memory than a
// segment of small records would; a wrong count only costs growth.
func (c *segCheck) sizePostings(b []byte) {
	if n, ok := segment.TrailerCount(b); ok {
		c.post = *index.NewPostingsBuilder(int(min(n, uint64(len(b)/minPostingsHint))))
	}
}

// minPostingsHint bounds the postings lists' initial room: one record per
// this many bytes of segment (records of the benchmarks take ~135 bytes).
const minPostingsHint = 64

// start fixes where the segment begins and which key chains it.
func (c *segCheck) start(h segment.Header, hdrOK bool) {
	r, v := c.r, c.v
	c.started = true
	r.hdr, r.hdrOK = h, hdrOK
	r.first, r.prevMAC = h.FirstSeq, h.PrevMAC
	r.complete = true
	if r.first == 0 {
		r.first = 1
	}
	r.piece = merkle.NewRange(r.first - 1)
	lo := sort.Search(len(v.sizes), func(i int) bool { return v.sizes[i] >= r.first })
	c.snapAt = v.sizes[lo:]
	if v.o.Keys == nil {
		return
	}
	if !hdrOK {
		// The key id field may be damaged: try the named key, else the
		// active one.
		if k, err := v.o.Keys.Lookup(h.KeyID); err == nil {
			c.key = k
		} else {
			c.key = v.o.Keys.Active()
		}
		c.hasher = c.key.NewHasher()
		return
	}
	if k, err := v.o.Keys.Lookup(h.KeyID); err != nil {
		r.probs = append(r.probs, &Problem{Check: CheckKey, File: r.name, Offset: segment.HeaderKeyIDOffset,
			Expected: "key id " + v.o.Keys.Active().ID().String(), Found: "key id " + h.KeyID.String(),
			Detail: "the segment was chained under an HMAC key that was not given (wrong key?)"})
		r.macWhy = fmt.Sprintf("chained under key id %s, which was not given", h.KeyID)
	} else {
		c.key, c.hasher = k, k.NewHasher()
	}
}

// breakAt records that the segment's piece of the tree stops at seq.
func (c *segCheck) breakAt(seq uint64, why string) {
	r := c.r
	if !r.complete {
		return
	}
	r.complete = false
	r.breakSeq, r.breakWhy = seq, why
}

// entry checks a record: its fields go into the summaries and postings at
// once; its hashes are computed (here, or on the pool) and folded into the
// chain and tree checks in order (fold).
func (c *segCheck) entry(en segment.Entry) error {
	if err := vellum.PeekFields(en.Record, &c.fields); err == nil {
		// The summary keys' hashes serve the postings' exact fields too
		// (AddKeyed), as the engine adds them: each value is hashed once.
		k := index.KeysOfFields(&c.fields)
		c.sum.Add(en.Span, &k)
		c.post.AddKeyed(&c.fields, &k)
	} else {
		c.post.AddFields(&vellum.Fields{}) // keeps the ordinals of the records after it
	}
	c.progress.at(en.Offset)
	if c.q != nil {
		if c.q.count == 0 {
			c.q.key = nil
			if c.hasher != nil {
				c.q.key = c.key
			}
		}
		c.q.add(&en, c.fold)
		return nil
	}
	// The chain value before a record is the MAC of the record read before
	// it; a block's own prev MAC only starts the chain (or resumes it after
	// unreadable bytes).
	h := hashRec{rec: en.Record, seq: en.Seq, offset: en.Offset, mac: en.MAC, prev: en.PrevMAC}
	if c.r.count > 0 && en.Seq == c.r.lastRead+1 {
		h.prev = c.r.lastMAC
	}
	h.compute(c.hasher, &c.lh)
	c.fold(&h)
	return nil
}

// fold adds a hashed record to the segment's chain and tree checks; the
// records of a segment are folded in the order they were read.
func (c *segCheck) fold(h *hashRec) {
	r := c.r
	follows := r.count > 0 && h.seq == r.lastRead+1
	if c.hasher != nil {
		r.macChecked++
		if h.bad {
			r.macBad++
			c.badSeqs = append(c.badSeqs, h.seq)
			if c.macProb == nil {
				r.macFirstBad = h.seq
				c.macProb = &Problem{Check: CheckMAC, File: r.name, Offset: h.offset, Seq: h.seq,
					Expected: h.want.String(), Found: h.mac.String(), Detail: "record MAC does not verify under the HMAC key (record altered, forged, moved or removed)"}
				r.probs = append(r.probs, c.macProb)
			}
		}
	}
	switch {
	case !r.complete:
	case r.count == 0 && h.seq != r.first:
		c.breakAt(r.first, fmt.Sprintf("%s starts at seq %d, its header says %d", r.name, h.seq, r.first))
	case r.count > 0 && h.seq > r.lastRead+1:
		c.breakAt(r.lastRead+1, fmt.Sprintf("seq %d..%d in %s cannot be read", r.lastRead+1, h.seq-1, r.name))
	case r.count > 0 && !follows:
		c.breakAt(r.lastRead+1, fmt.Sprintf("%s holds seq %d after seq %d", r.name, h.seq, r.lastRead))
	}
	if r.complete {
		l := h.leaf
		r.local.Append(l)
		r.piece.AppendStored(l, func(n merkle.Node) { r.nodes = append(r.nodes, n) })
		if len(c.snapAt) > 0 && r.piece.End() == c.snapAt[0] {
			if r.snaps == nil {
				r.snaps = map[uint64]*merkle.Range{}
			}
			r.snaps[c.snapAt[0]] = r.piece.Clone()
			c.snapAt = c.snapAt[1:]
		}
	}
	if r.count == 0 {
		r.firstRead = h.seq
	}
	r.count++
	r.lastRead, r.lastMAC = h.seq, h.mac
}

// finish completes the segment's result once every record was seen.
func (c *segCheck) finish() {
	if c.q != nil {
		c.q.flush(c.fold)
	}
	r := c.r
	if c.macProb != nil && r.macBad > 1 {
		c.macProb.Detail += fmt.Sprintf("; %d records of this segment fail their MAC", r.macBad)
	}
	if r.count == 0 && r.lastMAC == (vellum.MAC{}) {
		r.lastMAC = r.prevMAC
	}
	r.lastKnown = r.first - 1
	if r.count > 0 {
		r.lastKnown = r.lastRead
	}
}

// checkPostings compares a sealed footer's postings (section 4) with those
// the segment's records give. Queries and counts trust them to find every
// matching record, so a forged or truncated section would hide records.
func (c *segCheck) checkPostings(ft *segment.Footer) {
	r := c.r
	sec, ok := ft.Sections[index.SectionPostings]
	if !ok {
		r.postingsWhy = "it has no postings (section 4): queries read its spans"
		return
	}
	r.postingsChecked = true
	if uint64(c.post.Len()) != ft.Count || !bytes.Equal(sec, c.post.MarshalVersion(index.VersionOf(sec))) {
		r.probs = append(r.probs, &Problem{Check: CheckPostings, File: r.name, Offset: ft.SectionOffsets[index.SectionPostings],
			Detail: "the footer's postings (section 4) differ from those the records give: queries and counts could miss records"})
	}
}
