package engine

// The log-wide Merkle tree (segment/FORMAT.md, "Merkle trees"). The writer
// goroutine only copies each committed record's encoding and MAC into a
// batch and hands the batch to the tree goroutine after the commit is
// durable and published; the tree goroutine hashes the leaves, grows the
// tree, and signs checkpoints (checkpoint.go). Sealing a segment asks the
// tree goroutine for the segment's root and footer section, which waits
// for the batches before it. So leaf hashing overlaps the next batch's
// fsync instead of lengthening the writer's critical path.

import (
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/merkle"
	"github.com/vellumlog/vellum/segment"
)

// treeQueue bounds the batches waiting for the tree goroutine; a full
// queue makes the writer wait, which bounds memory.
const treeQueue = 64

// leafBatch is the records of one group: their encodings and MACs. The
// encodings are the items' own buffers (item.enc), not copies: copying
// ~350 bytes per record cost the writer more than everything else here.
// So an item's enc must not be recycled before the tree goroutine has
// hashed it (it is garbage-collected after).
type leafBatch struct {
	encs [][]byte
	macs []vellum.MAC
}

type treeMsg struct {
	batch *leafBatch
	seal  chan sealResult // seal the current segment
	sign  chan signResult // sign a checkpoint now
	stop  chan struct{}   // final checkpoint, then exit
}

type sealResult struct {
	root merkle.Hash
	sec  []byte
	err  error
}

// tree is the engine's Merkle state.
type tree struct {
	in      chan treeMsg
	done    chan struct{}
	running bool // the goroutine was started (writer goroutine only)

	// Owned by the writer goroutine: the batch being collected, and the
	// size of the last one (to size the next without regrowing).
	cur      *leafBatch
	lastRecs int

	mu   sync.Mutex
	log  *merkle.Log                // the log-wide tree; guarded by mu
	secs map[uint64]*merkle.Section // parsed footer sections by segment number; guarded by mu

	cp cpState // checkpoints; owned by the tree goroutine (and Open)

	// Open only: leaves of the active segment found by recovery's scan.
	recovered []merkle.Hash
	rh        merkle.Hasher
}

// treeAdd adds one record the writer is committing to the batch. (Hook
// called from commit in append.go.)
func (e *Engine) treeAdd(enc []byte, mac vellum.MAC) {
	b := e.tree.cur
	if b == nil {
		n := max(e.tree.lastRecs, 16)
		b = &leafBatch{encs: make([][]byte, 0, n), macs: make([]vellum.MAC, 0, n)}
		e.tree.cur = b
	}
	b.encs = append(b.encs, enc)
	b.macs = append(b.macs, mac)
}

// treeDiscard drops the batch of a commit that failed.
func (e *Engine) treeDiscard() { e.tree.cur = nil }

// treeTake detaches the leaves added since the last call, as one batch, on
// the writer goroutine.
func (e *Engine) treeTake() *leafBatch {
	b := e.tree.cur
	e.tree.cur = nil
	if b != nil {
		e.tree.lastRecs = len(b.encs)
	}
	return b
}

// treeHand hands a committed batch to the tree goroutine. It is called on
// the sync goroutine after publish, so every leaf the tree goroutine holds
// is readable.
func (e *Engine) treeHand(b *leafBatch) {
	if b == nil {
		return
	}
	if e.tree.running {
		e.tree.in <- treeMsg{batch: b}
		return
	}
	e.tree.hashBatch(b)
}

func (t *tree) hashBatch(b *leafBatch) {
	var h merkle.Hasher
	leaves := make([]merkle.Hash, len(b.encs))
	for i, enc := range b.encs {
		leaves[i] = h.Leaf(enc, b.macs[i])
	}
	t.mu.Lock()
	for _, l := range leaves {
		t.log.Append(l)
	}
	t.mu.Unlock()
}

// treeSeal returns the Merkle root and footer section of the active
// segment for its seal, waiting for the tree goroutine to hash every
// committed record. (Hook called from sealActive in indexing.go.)
func (e *Engine) treeSeal(so *segment.SealOptions) error {
	var r sealResult
	if e.tree.running {
		c := make(chan sealResult, 1)
		e.tree.in <- treeMsg{seal: c}
		r = <-c
	} else {
		r = e.tree.seal()
	}
	if r.err != nil {
		return fmt.Errorf("engine: Merkle tree of segment %d: %w", e.active.num, r.err)
	}
	root := [32]byte(r.root)
	so.MerkleRoot = &root
	if so.Sections == nil {
		so.Sections = map[uint16][]byte{}
	}
	so.Sections[merkle.SectionType] = r.sec
	return nil
}

func (t *tree) seal() sealResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	root, sec, err := t.log.Seal()
	if err != nil {
		return sealResult{err: err}
	}
	b, _ := sec.MarshalBinary()
	return sealResult{root: root, sec: b}
}

// openTree restores the log-wide tree when the store opens: the compact
// range at the end of the last sealed segment comes from its footer
// section, and only the active segment's records are hashed again. (Hook
// called from recover in engine.go, before the active segment may be
// sealed.)
func (e *Engine) openTree(sealed []*segInfo) error {
	e.tree.in = make(chan treeMsg, treeQueue)
	e.tree.done = make(chan struct{})
	e.tree.secs = map[uint64]*merkle.Section{}
	global := merkle.NewRange(0)
	if n := len(sealed); n > 0 {
		last := sealed[n-1]
		sec, err := e.sectionOf(last)
		switch {
		case err != nil:
			return err
		case sec != nil:
			if global, err = merkle.RangeFrom(0, sec.Size, sec.Range); err != nil {
				return fmt.Errorf("%w: %s: %w", ErrCorrupt, last.path, err)
			}
		default:
			// Segments sealed without a Merkle section: rebuild from
			// their records, once.
			e.log.Warn("sealed segments carry no Merkle section; hashing their records to rebuild the tree", slog.Int("segments", n))
			for _, si := range sealed {
				if err := e.hashSegment(si.path, global); err != nil {
					return err
				}
			}
		}
		if want := lastSeqOf(last); global.End() != want {
			return fmt.Errorf("%w: %s: Merkle section covers %d records, the log holds %d", ErrCorrupt, last.path, global.End(), want)
		}
	} else if e.active != nil {
		global = merkle.NewRange(e.active.hdr.FirstSeq - 1)
		if global.Begin() != 0 {
			return fmt.Errorf("%w: the first segment starts at seq %d and no sealed segment carries the tree before it", ErrCorrupt, e.active.hdr.FirstSeq)
		}
	}
	e.tree.log = merkle.NewLog(global)
	// The active segment's leaves were hashed while recovery scanned it
	// for MACs (treeRecoverLeaf); its records are read once on open.
	for _, l := range e.tree.recovered {
		e.tree.log.Append(l)
	}
	e.tree.recovered = nil
	if got, want := e.tree.log.Size(), e.nextSeq-1; got != want {
		return fmt.Errorf("%w: Merkle tree holds %d records, the log %d", ErrCorrupt, got, want)
	}
	return nil
}

// treeRecoverLeaf hashes one committed record of the active segment while
// recovery scans it. (Hook called from openSegment in engine.go.)
func (e *Engine) treeRecoverLeaf(en segment.Entry) {
	e.tree.recovered = append(e.tree.recovered, e.tree.rh.Leaf(en.Record, en.MAC))
}

// hashSegment appends the leaves of every record of a segment to r.
func (e *Engine) hashSegment(path string, r *merkle.Range) error {
	var h merkle.Hasher
	_, err := segment.Scan(e.fs, path, e.opts.segmentOptions(), func(en segment.Entry) error {
		r.Append(h.Leaf(en.Record, en.MAC), nil)
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return nil
}

// sectionOf returns the parsed Merkle section of a sealed segment, or nil
// when it has none.
func (e *Engine) sectionOf(si *segInfo) (*merkle.Section, error) {
	e.tree.mu.Lock()
	sec, ok := e.tree.secs[si.num]
	e.tree.mu.Unlock()
	if ok {
		return sec, nil
	}
	b, ok := si.footer.Sections[merkle.SectionType]
	if !ok {
		return nil, nil
	}
	sec, err := merkle.ParseSection(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, si.path, err)
	}
	if sec.Size != lastSeqOf(si) {
		return nil, fmt.Errorf("%w: %s: Merkle section ends at %d records, the segment at seq %d", ErrCorrupt, si.path, sec.Size, lastSeqOf(si))
	}
	e.tree.mu.Lock()
	e.tree.secs[si.num] = sec
	e.tree.mu.Unlock()
	return sec, nil
}

// treeSource serves the prover: stored nodes from memory and from sealed
// segments' footers, leaves by reading and hashing records.
type treeSource struct{ e *Engine }

var _ merkle.Source = treeSource{}

func (s treeSource) StoredNode(level uint, index uint64) (merkle.Hash, bool, error) {
	e := s.e
	e.tree.mu.Lock()
	h, ok := e.tree.log.Node(level, index)
	e.tree.mu.Unlock()
	if ok {
		return h, true, nil
	}
	seq := (index + 1) << level // the node's last leaf is seq-1
	snap := e.snap.Load()
	i := sort.Search(len(snap.sealed), func(i int) bool { return lastSeqOf(snap.sealed[i]) >= seq })
	if i == len(snap.sealed) || snap.sealed[i].hdr.FirstSeq > seq {
		return merkle.Hash{}, false, nil
	}
	sec, err := e.sectionOf(snap.sealed[i])
	if err != nil || sec == nil {
		return merkle.Hash{}, false, err
	}
	h, ok = sec.Node(level, index)
	return h, ok, nil
}

func (s treeSource) Leaves(from, to uint64) ([]merkle.Hash, error) {
	e := s.e
	snap := e.snap.Load()
	if to > snap.last || from+1 < snap.first {
		return nil, fmt.Errorf("%w: leaves %d..%d, the store holds seq %d..%d", merkle.ErrSize, from, to, snap.first, snap.last)
	}
	out := make([]merkle.Hash, 0, to-from)
	var h merkle.Hasher
	for seq := from + 1; seq <= to; {
		si, spans := snap.locate(seq)
		i := sort.Search(len(spans), func(i int) bool { return spans[i].LastSeq() >= seq })
		if si == nil || i == len(spans) {
			return nil, fmt.Errorf("%w: seq %d is in no segment's index", ErrCorrupt, seq)
		}
		for ; i < len(spans) && seq <= to; i++ {
			entries, err := si.readSpan(e, spans[i])
			if err != nil {
				return nil, err
			}
			for _, en := range entries {
				if en.Seq == seq && seq <= to {
					out = append(out, h.Leaf(en.Record, en.MAC))
					seq++
				}
			}
		}
	}
	return out, nil
}
