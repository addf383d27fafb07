package engine

import (
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/merkle"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

// tree is the log-wide Merkle tree (segment/FORMAT.md, "Merkle trees") and
// the checkpointer that signs it (checkpoint.go).
//
// Who owns what:
//   - The tree goroutine (loop) takes each durable batch from the
//     committer (hand, through in), hashes its leaves into merkle, gives
//     the committer a segment's root and footer section when it seals,
//     and signs checkpoints. Hashing so overlaps the committer's next
//     fsync instead of lengthening it.
//   - mu guards merkle and secs, which proofs read from any goroutine.
//   - cp belongs to the tree goroutine; cp.latest is atomic for readers.
//   - Before start and after stop (in Open and Close) its methods run on
//     the caller, which is then the only user.
type tree struct {
	opts  *Options
	fs    vfs.FS
	dir   string
	log   *slog.Logger
	index *indexer          // snapshots, to read leaves for proofs
	fail  func(error) error // fails the engine (committer.fail)

	in      chan treeMsg
	done    chan struct{}
	running bool // between start and stop; set and read by Open, Close and the committer
	// queued counts the batches handed to the tree goroutine and not yet
	// hashed: while it is 0, the committer hashes a small batch itself
	// (hand).
	queued atomic.Int32
	// leafHasher is hashBatch's; its buffer spares an allocation per
	// leaf.
	leafHasher merkle.Hasher

	mu     sync.Mutex
	merkle *merkle.Log                // the log-wide tree; guarded by mu
	secs   map[uint64]*merkle.Section // parsed footer sections by segment number; guarded by mu

	cp cpState // checkpoints (checkpoint.go)

	// pruned is the compact range of the leaves retention purged (nil
	// when none were): set by recovery and by a purge before readers stop
	// seeing the segments (purged.go).
	pruned atomic.Pointer[merkle.Range]
}

// treeQueue bounds the batches waiting for the tree goroutine; a full
// queue makes the committer wait, which bounds memory.
const treeQueue = 64

// treeInline is the most records of a batch the committer hashes itself
// when the tree goroutine has nothing queued (hand). A serial caller's
// record then costs one leaf hash (well under a microsecond with SHA-NI)
// instead of waking the tree goroutine, which on a two-core machine cost
// the caller more than the hash: a futex wake-up and a thread that
// competes for the cores around the next fsync (PERFORMANCE.md, serial
// appends). Larger batches still overlap the next fsync.
const treeInline = 16

// leafBatch is the records of one durable batch: their encodings and MACs.
// The encodings are the appended records' own buffers, not copies (copying
// ~350 bytes per record cost the committer more than everything else
// here), so a record's encoding must not be reused before the tree has
// hashed it (it is garbage-collected after).
type leafBatch struct {
	encs [][]byte
	macs []vellum.MAC
}

type treeMsg struct {
	batch *leafBatch
	seal  chan sealResult // seal the current segment's tree
	sign  chan signResult // sign a checkpoint now
	stop  chan struct{}   // final checkpoint, then exit
}

type sealResult struct {
	root merkle.Hash
	sec  []byte
	err  error
}

func newTree(opts *Options, fs vfs.FS, dir string, log *slog.Logger, index *indexer, fail func(error) error) *tree {
	return &tree{
		opts: opts, fs: fs, dir: dir, log: log, index: index, fail: fail,
		in:   make(chan treeMsg, treeQueue),
		done: make(chan struct{}),
		secs: map[uint64]*merkle.Section{},
	}
}

// restore rebuilds the log-wide tree when the store opens: the compact
// range at the end of the last sealed segment comes from its footer
// section, and only the active segment's records are hashed again (leaves,
// which recovery hashed while it checked their MACs). activeFirst is the
// active segment's first seq (0 without one); size is the number of
// records the log holds, which the tree must match.
func (t *tree) restore(sealed []*segInfo, activeFirst uint64, leaves []merkle.Hash, size uint64) error {
	global := merkle.NewRange(0)
	if n := len(sealed); n > 0 {
		last := sealed[n-1]
		sec, err := t.sectionOf(last)
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
			t.log.Warn("sealed segments carry no Merkle section; hashing their records to rebuild the tree", slog.Int("segments", n))
			for _, si := range sealed {
				if err := t.hashSegment(si.path, global); err != nil {
					return err
				}
			}
		}
		if want := lastSeqOf(last); global.End() != want {
			return fmt.Errorf("%w: %s: Merkle section covers %d records, the log holds %d", ErrCorrupt, last.path, global.End(), want)
		}
	} else if p := t.pruned.Load(); activeFirst > 1 && p != nil && p.End() == activeFirst-1 {
		global = p.Clone() // every sealed segment was purged
	} else if activeFirst > 1 {
		return fmt.Errorf("%w: the first segment starts at seq %d and no sealed segment carries the tree before it", ErrCorrupt, activeFirst)
	}
	t.merkle = merkle.NewLog(global)
	for _, l := range leaves {
		t.merkle.Append(l)
	}
	if got := t.merkle.Size(); got != size {
		return fmt.Errorf("%w: Merkle tree holds %d records, the log %d", ErrCorrupt, got, size)
	}
	return nil
}

// hashSegment appends the leaves of every record of a segment to r.
func (t *tree) hashSegment(path string, r *merkle.Range) error {
	var h merkle.Hasher
	_, err := segment.Scan(t.fs, path, t.opts.segmentOptions(), func(en segment.Entry) error {
		r.Append(h.Leaf(en.Record, en.MAC), nil)
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return nil
}

// hand gives the tree a batch the committer made durable and published,
// so every leaf the tree holds is readable (proofs read leaves).
//
// A small batch is hashed here, on the committer, when every batch handed
// before it is hashed (queued is 0, so the tree goroutine appends nothing
// meanwhile and the leaves keep seq order) and it does not reach the
// checkpoint's record count (that batch goes to the goroutine, which
// signs). Seals and the final checkpoint come from the committer's side
// too, so they follow the batches it hashed; a checkpoint asked for
// meanwhile signs the tree as far as it is hashed, as it always did.
func (t *tree) hand(b *leafBatch) {
	n := len(b.encs)
	if n == 0 {
		return
	}
	if !t.running {
		t.hashBatch(b)
		return
	}
	if n <= treeInline && t.queued.Load() == 0 &&
		(t.opts.Signer == nil || t.opts.CheckpointRecords <= 0 || t.cp.since.Load()+uint64(n) < uint64(t.opts.CheckpointRecords)) {
		t.hashBatch(b)
		t.cp.since.Add(uint64(n))
		return
	}
	t.queued.Add(1)
	t.in <- treeMsg{batch: b}
}

// loop is the tree goroutine.
func (t *tree) loop() {
	defer close(t.done)
	var tick <-chan time.Time
	if t.opts.Signer != nil && t.opts.CheckpointInterval > 0 {
		tk := time.NewTicker(min(t.opts.CheckpointInterval, time.Second))
		defer tk.Stop()
		tick = tk.C
	}
	for {
		select {
		case m := <-t.in:
			switch {
			case m.batch != nil:
				t.hashBatch(m.batch)
				since := t.cp.since.Add(uint64(len(m.batch.encs)))
				t.queued.Add(-1)
				if t.opts.CheckpointRecords > 0 && since >= uint64(t.opts.CheckpointRecords) {
					t.signNow()
				}
			case m.seal != nil:
				m.seal <- t.sealTree()
				t.signNow() // the checkpoint of every seal
			case m.sign != nil:
				s, err := t.signNow()
				m.sign <- signResult{s, err}
			case m.stop != nil:
				t.signNow()
				t.cp.close()
				close(m.stop)
				return
			}
		case <-tick:
			// Only while the log grows: an idle log is not signed again.
			if t.cp.since.Load() > 0 && t.opts.Now().Sub(t.cp.lastTime) >= t.opts.CheckpointInterval {
				t.signNow()
			}
		}
	}
}

// hashBatch appends a batch's leaves to the tree. Whoever hashes the
// batches in turn calls it (hand): the tree goroutine, or the committer
// while nothing is queued for it; so they share leafHasher's buffer.
func (t *tree) hashBatch(b *leafBatch) {
	var small [treeInline]merkle.Hash
	leaves := small[:0]
	if len(b.encs) > len(small) {
		leaves = make([]merkle.Hash, 0, len(b.encs))
	}
	for i, enc := range b.encs {
		leaves = append(leaves, t.leafHasher.Leaf(enc, b.macs[i]))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range leaves {
		t.merkle.Append(l)
	}
}

// seal puts the Merkle root and footer section of segment seg, the active
// one, into so for its seal, once every durable record is hashed.
func (t *tree) seal(seg uint64, so *segment.SealOptions) error {
	var r sealResult
	if t.running {
		c := make(chan sealResult, 1)
		t.in <- treeMsg{seal: c}
		r = <-c
	} else {
		r = t.sealTree()
	}
	if r.err != nil {
		return fmt.Errorf("engine: Merkle tree of segment %d: %w", seg, r.err)
	}
	root := [32]byte(r.root)
	so.MerkleRoot = &root
	if so.Sections == nil {
		so.Sections = map[uint16][]byte{}
	}
	so.Sections[merkle.SectionType] = r.sec
	return nil
}

func (t *tree) sealTree() sealResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	root, sec, err := t.merkle.Seal()
	if err != nil {
		return sealResult{err: err}
	}
	b, _ := sec.MarshalBinary()
	return sealResult{root: root, sec: b}
}

// head returns the size and root of the tree as far as it is hashed.
func (t *tree) head() (uint64, merkle.Hash) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.merkle.Size(), t.merkle.Root()
}

// sectionOf returns the parsed Merkle section of a sealed segment, or nil
// when it has none.
func (t *tree) sectionOf(si *segInfo) (*merkle.Section, error) {
	t.mu.Lock()
	sec, ok := t.secs[si.num]
	t.mu.Unlock()
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
	t.mu.Lock()
	t.secs[si.num] = sec
	t.mu.Unlock()
	return sec, nil
}

// source serves the prover: stored nodes from memory and from sealed
// segments' footers, leaves by reading and hashing records.
func (t *tree) source() merkle.Source { return treeSource{t} }

type treeSource struct{ t *tree }

var _ merkle.Source = treeSource{}

func (s treeSource) StoredNode(level uint, index uint64) (merkle.Hash, bool, error) {
	t := s.t
	t.mu.Lock()
	h, ok := t.merkle.Node(level, index)
	t.mu.Unlock()
	if ok {
		return h, true, nil
	}
	seq := (index + 1) << level // the node's last leaf is seq-1
	snap := t.index.snapshot()
	i := sort.Search(len(snap.sealed), func(i int) bool { return lastSeqOf(snap.sealed[i]) >= seq })
	if i == len(snap.sealed) || snap.sealed[i].hdr.FirstSeq > seq {
		return merkle.Hash{}, false, nil
	}
	sec, err := t.sectionOf(snap.sealed[i])
	if err != nil || sec == nil {
		return merkle.Hash{}, false, err
	}
	h, ok = sec.Node(level, index)
	return h, ok, nil
}

func (s treeSource) Leaves(from, to uint64) ([]merkle.Hash, error) {
	snap := s.t.index.snapshot()
	if to <= from {
		return nil, nil
	}
	if to > snap.last || from+1 < snap.first {
		return nil, fmt.Errorf("%w: leaves %d..%d, the store holds seq %d..%d", merkle.ErrSize, from, to, snap.first, snap.last)
	}
	out := make([]merkle.Hash, 0, to-from)
	var h merkle.Hasher
	for _, en := range scanEntries(snap, from+1, to) {
		if en.Record == nil {
			return nil, en.err
		}
		out = append(out, h.Leaf(en.Record, en.MAC))
	}
	if uint64(len(out)) != to-from {
		return nil, fmt.Errorf("%w: read %d leaves for seq %d..%d", ErrCorrupt, len(out), from+1, to)
	}
	return out, nil
}
