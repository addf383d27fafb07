package verify

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/index"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/merkle"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

// Options configure Dir. The zero value checks framing, links and Merkle
// roots only.
type Options struct {
	// FS is the file system; vfs.Default when nil.
	FS vfs.FS
	// Keys, when set, checks every record's MAC: proof of integrity to
	// key holders.
	Keys *chain.Keyring
	// Verifier is the checkpoint signing public key; when set, every
	// checkpoint's signature is checked.
	Verifier note.Verifier
	// Trusted is a signed checkpoint the caller holds from earlier (say, one
	// handed to an auditor); the data must still contain what it
	// describes. Requires Verifier.
	Trusted []byte
	// Origin is the expected checkpoint origin; "vellum/<store id>" by
	// default.
	Origin string
	// Workers is how many segments are checked at once; GOMAXPROCS by
	// default.
	Workers int
	// Progress, when set, is called about ten times a second and once at
	// the end with the segment bytes checked so far and the total.
	Progress func(done, total int64)
}

// Dir verifies the Vellum data directory dir without changing it. It
// returns an error only when dir cannot be read or the options are
// unusable; everything that does not verify is a Problem in the Report.
func Dir(dir string, opts *Options) (*Report, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if len(o.Trusted) > 0 && o.Verifier == nil {
		return nil, errors.New("verify: a trusted checkpoint needs the public key to check it")
	}
	v := &dirVerifier{o: o, dir: dir, rep: &Report{Dir: dir}}
	if err := v.run(); err != nil {
		return nil, err
	}
	return v.rep, nil
}

type dirVerifier struct {
	o       Options
	dir     string
	rep     *Report
	storeID [16]byte
	seq     uint64 // discovery counter for problem order

	cps     []cpEntry
	trusted *checkpoint.Signed
	sizes   []uint64 // checkpoint sizes whose roots are computed, sorted
	roots   map[uint64]merkle.Hash

	treeOK   bool   // the log-wide tree of all the data is known
	dataSize uint64 // records the data holds (last seq)
}

type cpEntry struct {
	offset int64
	s      checkpoint.Signed
	ok     bool // parsed (and, with a verifier, signature valid)
}

// file ranks for problem order.
const (
	rankStore = iota
	rankSegment
	rankCheckpoints = 1 << 62
	rankTrusted     = 1<<62 + 1
)

func (v *dirVerifier) problem(rank uint64, p *Problem) {
	v.seq++
	p.order = [3]uint64{rank, uint64(max(p.Offset, 0)), v.seq}
	v.rep.Problems = append(v.rep.Problems, p)
}

func (v *dirVerifier) run() error {
	fs := v.o.FS
	// The checkpoint log first: when a live directory is verified, the
	// segments listed and read after it hold at least what it covers.
	if err := v.readCheckpoints(); err != nil {
		return err
	}
	nums, err := layout.ListSegments(fs, v.dir)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	v.storeID, err = layout.ReadStoreID(fs, v.dir)
	if err != nil {
		if len(nums) == 0 {
			return fmt.Errorf("verify: %s is not a Vellum data directory: %w", v.dir, err)
		}
		v.problem(rankStore, &Problem{Check: CheckStore, File: "STORE", Offset: -1, Detail: "store identity unreadable: " + err.Error()})
	}
	v.rep.StoreID = hex.EncodeToString(v.storeID[:])
	if v.o.Origin == "" {
		v.o.Origin = "vellum/" + v.rep.StoreID
	}
	v.rep.Segments = len(nums)
	v.note()
	results, err := v.segments(nums)
	if err != nil {
		return err
	}
	v.links(nums, results)
	v.checkpoints()
	slices.SortStableFunc(v.rep.Problems, func(a, b *Problem) int {
		return slices.Compare(a.order[:], b.order[:])
	})
	return nil
}

// note records which checks run.
func (v *dirVerifier) note() {
	r := v.rep
	r.Checked = append(r.Checked, "segment framing and CRCs", "links between segments", "Merkle roots and sections")
	if v.o.Keys != nil {
		r.Checked = append(r.Checked, "HMAC chain of every record")
	} else {
		r.Skipped = append(r.Skipped, "HMAC chain (no --key): integrity against the key holder is not checked")
	}
	if v.o.Verifier != nil {
		r.Checked = append(r.Checked, "checkpoint signatures")
	} else {
		r.Skipped = append(r.Skipped, "checkpoint signatures (no --pubkey): checkpoints are only compared with the data")
	}
	r.Checked = append(r.Checked, "checkpoints against the data and each other")
	if len(v.o.Trusted) > 0 {
		r.Checked = append(r.Checked, "the trusted checkpoint")
	}
}

// readCheckpoints loads the checkpoint log and the trusted checkpoint, so
// the segment workers know at which tree sizes to take roots.
func (v *dirVerifier) readCheckpoints() error {
	path := filepath.Join(v.dir, checkpoint.LogName)
	res, err := checkpoint.ReadLog(v.o.FS, path)
	var ce *checkpoint.CorruptError
	switch {
	case errors.As(err, &ce):
		v.problem(rankCheckpoints, &Problem{Check: CheckCheckpoint, File: checkpoint.LogName, Offset: ce.Offset, Detail: ce.Reason})
		res = &checkpoint.ReadResult{TornAt: -1}
	case err != nil:
		return fmt.Errorf("verify: %w", err)
	}
	if res.TornAt >= 0 {
		v.rep.Warnings = append(v.rep.Warnings, fmt.Sprintf("%s: incomplete final entry at offset %d (%s); it was never a complete checkpoint", checkpoint.LogName, res.TornAt, res.TornReason))
	}
	v.roots = map[uint64]merkle.Hash{}
	for _, en := range res.Entries {
		var s checkpoint.Signed
		var err error
		if v.o.Verifier != nil {
			s, err = checkpoint.Open(en.Note, v.o.Verifier)
		} else {
			s, err = checkpoint.ParseNote(en.Note)
		}
		e := cpEntry{offset: en.Offset, s: s, ok: err == nil}
		if err != nil {
			check := CheckCheckpoint
			if errors.Is(err, checkpoint.ErrSignature) {
				check = CheckSignature
			}
			v.problem(rankCheckpoints, &Problem{Check: check, File: checkpoint.LogName, Offset: en.Offset, Detail: err.Error()})
		} else {
			v.sizes = append(v.sizes, s.Size)
		}
		v.cps = append(v.cps, e)
	}
	v.rep.Checkpoints = len(v.cps)
	if len(v.o.Trusted) > 0 {
		s, err := checkpoint.Open(v.o.Trusted, v.o.Verifier)
		if err != nil {
			check := CheckCheckpoint
			if errors.Is(err, checkpoint.ErrSignature) {
				check = CheckSignature
			}
			v.problem(rankTrusted, &Problem{Check: check, File: "trusted checkpoint", Offset: -1, Detail: err.Error()})
		} else {
			v.trusted = &s
			v.sizes = append(v.sizes, s.Size)
		}
	}
	slices.Sort(v.sizes)
	v.sizes = slices.Compact(v.sizes)
	return nil
}

// segResult is what a worker found in one segment.
type segResult struct {
	num   uint64
	name  string
	size  int64
	hdr   segment.Header
	scan  *segment.ScanResult
	bad   bool // framing did not verify: the segment's tree is unknown
	first uint64
	count uint64
	local merkle.RootBuilder       // the segment's own tree
	piece *merkle.Range            // its leaves in the log-wide tree
	nodes []merkle.Node            // stored-level nodes complete inside the piece
	snaps map[uint64]*merkle.Range // the piece at checkpoint sizes inside it
	probs []*Problem
}

func (v *dirVerifier) segments(nums []uint64) ([]*segResult, error) {
	results := make([]*segResult, len(nums))
	var total int64
	sizes := make([]int64, len(nums))
	for i, n := range nums {
		fi, err := v.o.FS.Stat(layout.SegmentPath(v.dir, n))
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		sizes[i] = fi.Size()
		total += sizes[i]
	}
	v.rep.Bytes = total
	var done atomic.Int64
	stop := make(chan struct{})
	var pwg sync.WaitGroup
	if v.o.Progress != nil {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					v.o.Progress(done.Load(), total)
				case <-stop:
					v.o.Progress(done.Load(), total)
					return
				}
			}
		}()
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var ioErr error
	var mu sync.Mutex
	for w := 0; w < min(v.o.Workers, max(len(nums), 1)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte // one file buffer per worker, reused
			for {
				i := int(next.Add(1) - 1)
				if i >= len(nums) {
					return
				}
				r, err := v.segment(nums[i], &done, &buf)
				if err != nil {
					mu.Lock()
					ioErr = err
					mu.Unlock()
					return
				}
				results[i] = r
			}
		}()
	}
	wg.Wait()
	close(stop)
	pwg.Wait()
	if ioErr != nil {
		return nil, ioErr
	}
	return results, nil
}

// segment checks one segment on its own: framing and CRCs, the MAC of every
// record from the block's prev MAC, and its leaves.
func (v *dirVerifier) segment(num uint64, done *atomic.Int64, buf *[]byte) (r *segResult, err error) {
	path := layout.SegmentPath(v.dir, num)
	r = &segResult{num: num, name: filepath.Join("segments", layout.SegmentName(num))}
	b, unmap, err := v.load(path, buf)
	if err != nil {
		return nil, fmt.Errorf("verify: read %s: %w", path, err)
	}
	defer unmap()
	// A mapped file that shrinks under us faults: report it, do not crash.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("verify: %s changed while it was being read (%v); verify a copy", path, p)
		}
	}()
	r.size = int64(len(b))
	bad := func(err error) {
		var ce *segment.CorruptError
		p := &Problem{Check: CheckFrame, File: r.name, Offset: -1, Detail: err.Error()}
		if errors.As(err, &ce) {
			p.Offset, p.Seq, p.Detail = ce.Offset, ce.Seq, ce.Reason
			// A reason that quotes an inner error repeats the path and
			// place; keep only what it says.
			if i := strings.LastIndex(p.Detail, path); i >= 0 {
				if j := strings.Index(p.Detail[i:], ": "); j >= 0 {
					p.Detail = p.Detail[i+j+2:]
				}
			}
		}
		r.probs = append(r.probs, p)
		r.bad = true
	}
	rd, err := segment.Open(memFS{path: path, b: b}, path, nil)
	if err != nil {
		bad(err)
		done.Add(r.size)
		return r, nil
	}
	r.hdr = rd.Header()
	rd.Close()
	r.first = r.hdr.FirstSeq
	var hasher *chain.Hasher
	if v.o.Keys != nil {
		if k, err := v.o.Keys.Lookup(r.hdr.KeyID); err != nil {
			r.probs = append(r.probs, &Problem{Check: CheckKey, File: r.name, Offset: segment.HeaderKeyIDOffset,
				Expected: "key id " + v.o.Keys.Active().ID().String(), Found: "key id " + r.hdr.KeyID.String(),
				Detail: "the segment was chained under an HMAC key that was not given (wrong key?)"})
		} else {
			hasher = k.NewHasher()
		}
	}
	r.piece = merkle.NewRange(r.first - 1)
	visit := func(n merkle.Node) { r.nodes = append(r.nodes, n) }
	// Checkpoint sizes inside this segment, in order.
	lo := sort.Search(len(v.sizes), func(i int) bool { return v.sizes[i] >= r.first })
	snapAt := v.sizes[lo:]
	var lh merkle.Hasher
	var lastOff int64 = segment.HeaderSize
	done.Add(lastOff)
	macBad := false
	var sum index.Summarizer
	var fields vellum.Fields
	sr, err := segment.ScanBytes(path, b, nil, func(en segment.Entry) error {
		if err := vellum.PeekFields(en.Record, &fields); err == nil {
			k := index.KeysOfFields(&fields)
			sum.Add(en.Span, &k)
		}
		if en.Offset != lastOff {
			done.Add(en.Offset - lastOff)
			lastOff = en.Offset
		}
		if hasher != nil && !macBad {
			if want, err := hasher.Check(en.Seq, en.PrevMAC, en.Record, en.MAC); err != nil {
				macBad = true
				r.probs = append(r.probs, &Problem{Check: CheckMAC, File: r.name, Offset: en.Offset, Seq: en.Seq,
					Expected: want.String(), Found: en.MAC.String(), Detail: "record MAC does not verify under the HMAC key (record altered, forged, moved or removed)"})
			}
		}
		l := lh.Leaf(en.Record, en.MAC)
		r.local.Append(l)
		r.piece.AppendStored(l, visit)
		r.count++
		if len(snapAt) > 0 && r.piece.End() == snapAt[0] {
			if r.snaps == nil {
				r.snaps = map[uint64]*merkle.Range{}
			}
			r.snaps[snapAt[0]] = r.piece.Clone()
			snapAt = snapAt[1:]
		}
		return nil
	})
	done.Add(r.size - lastOff)
	if err != nil {
		bad(err)
		return r, nil
	}
	if sr.Footer != nil {
		// The query index trusts section 2 to skip spans: forged summaries
		// would hide records from filtered queries, so they must be the
		// ones the records give.
		if sec, ok := sr.Footer.Sections[segment.SectionSummaries]; ok && !bytes.Equal(sec, index.MarshalSummaries(sum.Finish())) {
			r.probs = append(r.probs, &Problem{Check: CheckSummary, File: r.name, Offset: sr.Footer.Offset,
				Detail: "the footer's span summaries (section 2) differ from those the records give: filtered queries could skip records"})
		}
		// Footer sections alias the file buffer, which the worker reuses.
		secs := make(map[uint16][]byte, len(sr.Footer.Sections))
		for k, s := range sr.Footer.Sections {
			secs[k] = bytes.Clone(s)
		}
		sr.Footer.Sections = secs
	}
	r.scan = sr
	return r, nil
}

// load returns a segment's bytes: mapped when possible, else read into
// *buf (grown as needed and reused by the worker).
func (v *dirVerifier) load(path string, buf *[]byte) ([]byte, func(), error) {
	f, err := v.o.FS.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		return nil, nil, err
	}
	if b, unmap, ok := mapFile(f, n); ok {
		return b, unmap, nil
	}
	b, err := readInto(v.o.FS, path, buf)
	return b, func() {}, err
}

// readInto reads a whole file into *buf, growing it as needed.
func readInto(fs vfs.FS, path string, buf *[]byte) ([]byte, error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		return nil, err
	}
	if int64(cap(*buf)) < n {
		*buf = make([]byte, n+n/4)
	}
	b := (*buf)[:n]
	if m, err := f.ReadAt(b, 0); int64(m) != n {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

// links checks what joins segments, grows the log-wide tree segment by
// segment, and checks every segment's Merkle root and section.
func (v *dirVerifier) links(nums []uint64, results []*segResult) {
	global := merkle.NewRange(0)
	treeOK := true // the log-wide tree so far is known
	var prev *segResult
	var prevLast uint64
	var prevMAC vellum.MAC
	for i, r := range results {
		rank := uint64(rankSegment + i)
		for _, p := range r.probs {
			v.problem(rank, p)
		}
		if r.scan == nil {
			treeOK, prev = false, nil
			continue
		}
		st := r.scan.State
		v.rep.Records += st.Count
		h := r.hdr
		link := func(off int64, expected, found, detail string) {
			v.problem(rank, &Problem{Check: CheckLink, File: r.name, Offset: off, Seq: h.FirstSeq, Expected: expected, Found: found, Detail: detail})
		}
		// The header's ties to the store and to the segment before it:
		// the engine's rules (package layout), each failure reported.
		var prevEnd *layout.End
		if prev != nil {
			prevEnd = &layout.End{Number: prev.num, LastSeq: prevLast, LastMAC: prevMAC}
		}
		for _, le := range layout.CheckLink(r.num, v.storeID, &h, prevEnd) {
			link(le.Offset, le.Expected, le.Found, le.Reason)
			if le.Field == layout.FieldNumber || le.Field == layout.FieldFirstSeq {
				treeOK = false // the records are not where the tree expects them
			}
		}
		switch {
		case i > 0 && nums[i] != nums[i-1]+1:
			link(-1, fmt.Sprintf("segment %d", nums[i-1]+1), fmt.Sprintf("segment %d", nums[i]), "a segment is missing")
			treeOK = false
		case i == 0 && r.num != 1:
			v.rep.Warnings = append(v.rep.Warnings, fmt.Sprintf("the store starts at segment %d (earlier segments expired): the chain and the tree are checked from seq %d", r.num, h.FirstSeq))
		}
		if prev != nil && !prev.scan.Sealed {
			v.problem(uint64(rankSegment+i-1), &Problem{Check: CheckLink, File: prev.name, Offset: prev.scan.State.Size,
				Detail: "segment is not sealed but later segments exist (replaced by an older copy, or truncated)"})
		}
		if prev == nil && r.num != 1 {
			treeOK = false // no tree before an expired prefix
		}
		if r.scan.TornAt >= 0 {
			// A checkpoint is signed only over durable records: damage to
			// records one covers is tampering, not a torn tail.
			covered := len(v.sizes) > 0 && v.sizes[len(v.sizes)-1] > r.scan.State.LastSeq
			if i == len(results)-1 && covered {
				v.problem(rank, &Problem{Check: CheckFrame, File: r.name, Offset: r.scan.TornAt, Seq: r.scan.State.LastSeq + 1,
					Detail: fmt.Sprintf("damaged bytes that a signed checkpoint (%d records) covers, so they were acknowledged: %s", v.sizes[len(v.sizes)-1], r.scan.TornReason)})
			} else if i == len(results)-1 {
				v.rep.Warnings = append(v.rep.Warnings, fmt.Sprintf("%s: %d bytes after offset %d are an incomplete final batch that was never acknowledged (%s)", r.name, r.scan.FileSize-r.scan.TornAt, r.scan.TornAt, r.scan.TornReason))
			} else {
				v.problem(rank, &Problem{Check: CheckFrame, File: r.name, Offset: r.scan.TornAt, Detail: "damaged bytes after the last commit frame: " + r.scan.TornReason})
			}
		}
		// The log-wide tree and this segment's root.
		if treeOK && !r.bad {
			before := global.Clone()
			var joined []merkle.Node
			if err := global.AppendRange(r.piece, func(n merkle.Node) {
				if merkle.StoredLevel(n.Level) {
					joined = append(joined, n)
				}
			}); err != nil {
				treeOK = false
			} else {
				for size, snap := range r.snaps {
					g := before.Clone()
					if err := g.AppendRange(snap, nil); err == nil {
						v.roots[size] = g.Root()
					}
				}
				if r.first == 1 && st.Count == 0 {
					v.roots[0] = merkle.EmptyRoot
				}
				v.checkMerkle(rank, r, global, append(r.nodes, joined...))
			}
		} else {
			treeOK = false
		}
		prev, prevLast, prevMAC = r, st.LastSeq, st.LastMAC
		if st.Count == 0 {
			prevLast = h.FirstSeq - 1
		}
	}
	if treeOK {
		v.rep.TreeSize = global.End()
		v.rep.Root = global.Root()
		v.roots[global.End()] = v.rep.Root
	}
	v.rep.TreeSize = max(v.rep.TreeSize, prevLast)
	v.treeOK = treeOK
	v.dataSize = prevLast
}

// checkMerkle compares a sealed segment's trailer root and Merkle section
// with the data.
func (v *dirVerifier) checkMerkle(rank uint64, r *segResult, global *merkle.Range, nodes []merkle.Node) {
	ft := r.scan.Footer
	if ft == nil {
		return
	}
	trailer := r.size - segment.TrailerSize
	if !ft.HasRoot {
		v.rep.Warnings = append(v.rep.Warnings, r.name+": sealed without a Merkle root")
	} else if calc := r.local.Root(); calc != merkle.Hash(ft.MerkleRoot) {
		v.problem(rank, &Problem{Check: CheckMerkle, File: r.name, Offset: trailer + 80, Seq: ft.LastSeq,
			Expected: merkle.Hash(ft.MerkleRoot).String(), Found: calc.String(),
			Detail: "the trailer's Merkle root differs from the root of the segment's records"})
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
	want, err := merkle.NewSection(r.first-1, global, nodes)
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

// memFS serves one file's bytes already read, so segment.Open does not
// read it again.
type memFS struct {
	vfs.FS
	path string
	b    []byte
}

func (m memFS) Open(name string) (vfs.File, error) {
	if name != m.path {
		return nil, fmt.Errorf("verify: unexpected open of %s", name)
	}
	return &memFile{b: m.b, name: name}, nil
}

type memFile struct {
	vfs.File
	b    []byte
	name string
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(f.b)) {
		return 0, io.EOF
	}
	n := copy(p, f.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (f *memFile) Size() (int64, error) { return int64(len(f.b)), nil }
func (f *memFile) Close() error         { return nil }
func (f *memFile) Name() string         { return f.name }
