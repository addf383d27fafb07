package engine

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/index"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

// Engine is an open store: one data directory, one writer goroutine, any
// number of concurrent readers. All methods are safe for concurrent use.
type Engine struct {
	dir     string
	segDir  string
	opts    Options
	fs      vfs.FS
	log     *slog.Logger
	storeID [16]byte
	lock    io.Closer

	// snap is what readers see: the segments and the durable end of the
	// log. The writer goroutine replaces it after every commit.
	snap atomic.Pointer[snapshot]
	// imu guards idx, the time index of closed spans, and makes index
	// updates and snapshot swaps one step for queries.
	imu sync.RWMutex
	idx *index.Index
	// filesClosed stops readers from reopening segment files after Close.
	filesClosed atomic.Bool
	notify      notifier // wakes tailing readers at every publish (notify.go)

	// Queue shared by callers and the writer goroutine.
	mu      sync.Mutex
	space   *sync.Cond // signalled when the writer takes a group
	pending *group
	closed  bool
	failErr error // set once; the engine then accepts nothing

	wake chan struct{}
	quit chan struct{}
	done chan struct{}

	// wmu guards the writer's state below: held by the writer goroutine
	// while it works, or by a caller committing inline.
	wmu sync.Mutex

	// Owned by the holder of wmu (and by Open before the writer starts).
	w          *segment.Writer
	active     *segInfo
	hasher     *chain.Hasher
	nextSeq    uint64
	prev       vellum.MAC
	lastTime   int64
	dedup      *dedupWindow
	tree       tree          // Merkle tree and checkpoints (merkle.go, checkpoint.go)
	signedSize uint64        // records the latest signed checkpoint covers, read before recovery
	lastBatch  int           // records in the last group committed (commitInline)
	inflight   bool          // a batch is with the sync goroutine
	lastSync   time.Duration // how long the last fdatasync took (settle)
	syncCh     chan *job
	synced     chan struct{}

	// Owned by the sync goroutine while a batch is in flight, by the
	// writer goroutine otherwise (the synced channel orders the two).
	ix indexState
}

// segInfo is one segment as readers see it.
type segInfo struct {
	num    uint64
	path   string
	hdr    segment.Header
	footer *segment.Footer // nil while active

	rmu    sync.Mutex
	reader *segment.Reader
}

// snapshot is an immutable view of the log for readers.
type snapshot struct {
	sealed []*segInfo // in order; shared, append-only
	active *activeView
	// first and last seq the store holds (last is durable); first > last
	// when empty.
	first, last uint64
}

// activeView is the durable part of the active segment.
type activeView struct {
	seg     *segInfo
	state   segment.State
	spans   []segment.Span // closed spans: shared, never modified
	open    segment.Span
	hasOpen bool
}

// Open opens the store in dir, creating it if needed, recovers a torn tail
// of the active segment, checks the chain, and starts the writer.
func Open(dir string, opts *Options) (*Engine, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &Engine{
		dir:    dir,
		segDir: filepath.Join(dir, segmentsDir),
		opts:   o,
		fs:     o.FS,
		log:    o.Logger.With(slog.String("component", "engine"), slog.String("dir", dir)),
		wake:   make(chan struct{}, 1),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		idx:    index.New(),
	}
	e.space = sync.NewCond(&e.mu)
	e.syncCh = make(chan *job)
	e.synced = make(chan struct{}, 1)
	e.pending = &group{done: make(chan struct{})}
	if err := e.fs.MkdirAll(e.segDir, 0o750); err != nil {
		return nil, fmt.Errorf("engine: create %s: %w", e.segDir, err)
	}
	// Make the directories' own entries durable (a no-op cost once they
	// exist): segments synced into a directory whose entry is lost are lost.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := e.fs.SyncDir(d); err != nil {
			return nil, fmt.Errorf("engine: sync directory %s: %w", d, err)
		}
	}
	lock, err := e.fs.Lock(filepath.Join(dir, lockName))
	if err != nil {
		if errors.Is(err, vfs.ErrLocked) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("engine: lock %s: %w", dir, err)
	}
	e.lock = lock
	if err := e.recover(); err != nil {
		e.closeFiles()
		lock.Close()
		return nil, err
	}
	if err := e.startTree(); err != nil { // Merkle tree + checkpoints
		e.closeFiles()
		lock.Close()
		return nil, err
	}
	e.log.Info("store open", slog.Any("options", o), slog.Uint64("last_seq", e.nextSeq-1),
		slog.Int("segments", len(e.snap.Load().sealed)+1))
	go e.run()
	return e, nil
}

// recover reads the directory, checks every segment's links, recovers the
// active segment and leaves the engine ready to append.
func (e *Engine) recover() error {
	nums, err := ListSegments(e.fs, e.dir)
	if err != nil {
		return err
	}
	e.storeID, err = loadOrCreateStore(e.fs, e.dir, len(nums) > 0, e.opts.Now())
	if err != nil {
		return err
	}
	for i := 1; i < len(nums); i++ {
		if nums[i] != nums[i-1]+1 {
			return fmt.Errorf("%w: segment %d is missing (found %d then %d)", ErrCorrupt, nums[i-1]+1, nums[i-1], nums[i])
		}
	}
	e.signedSize = latestSignedSize(e.fs, e.dir)
	snap := &snapshot{}
	var prev *segInfo
	for i, n := range nums {
		last := i == len(nums)-1
		si, err := e.openSegment(n, prev, last)
		if err != nil {
			return err
		}
		if si == nil { // a segment whose creation never finished, removed
			break
		}
		if si.footer == nil {
			e.active = si
			break
		}
		snap.sealed = append(snap.sealed, si)
		prev = si
	}
	if len(snap.sealed) > 0 {
		snap.first = snap.sealed[0].hdr.FirstSeq
		e.nextSeq = lastSeqOf(snap.sealed[len(snap.sealed)-1]) + 1
		e.prev = snap.sealed[len(snap.sealed)-1].footer.LastMAC
		// The newest record's time, from the last non-empty segment (an
		// empty sealed one says 0), keeps receipt times increasing.
		for i := len(snap.sealed) - 1; i >= 0; i-- {
			if ft := snap.sealed[i].footer; ft.Count > 0 {
				e.lastTime = ft.LastTime
				break
			}
		}
	} else {
		snap.first = 1
		e.nextSeq = 1
	}
	if e.active != nil {
		st := e.w.State()
		e.nextSeq, e.prev = st.LastSeq+1, st.LastMAC
		if st.Count > 0 {
			e.lastTime = st.LastTime
		}
	}
	if err := e.openTree(snap.sealed); err != nil { // Merkle tree (merkle.go)
		return err
	}
	active := e.opts.Keys.Active()
	if e.active != nil && e.active.hdr.KeyID != active.ID() {
		// The key was rotated: seal the old key's segment, start a new one.
		e.log.Info("key rotated; sealing the active segment", slog.String("old_key_id", e.active.hdr.KeyID.String()),
			slog.String("new_key_id", active.ID().String()))
		ft, err := e.sealActive()
		if err != nil {
			return err
		}
		e.active.footer = ft
		snap.sealed = append(snap.sealed, e.active)
		e.active, e.w = nil, nil
	}
	if e.active == nil {
		num := uint64(1)
		if len(snap.sealed) > 0 {
			num = snap.sealed[len(snap.sealed)-1].num + 1
		} else {
			e.prev = chain.Genesis(e.storeID, active.ID())
		}
		if err := e.createSegment(num); err != nil {
			return err
		}
	}
	if snap.first > e.nextSeq-1 && len(snap.sealed) == 0 {
		snap.first = e.active.hdr.FirstSeq
	}
	e.hasher = active.NewHasher()
	for _, si := range snap.sealed {
		if si != e.active {
			e.indexSealed(si)
		}
	}
	e.snap.Store(snap)
	e.publish()
	return e.loadDedup()
}

func lastSeqOf(si *segInfo) uint64 {
	if si.footer.Count == 0 {
		return si.hdr.FirstSeq - 1
	}
	return si.footer.LastSeq
}

// openSegment opens segment n, checks its header and its link to prev, and,
// for the last segment, recovers it. It returns nil for a last segment that
// was never fully created (it is removed, keeping a .broken copy).
func (e *Engine) openSegment(n uint64, prev *segInfo, last bool) (*segInfo, error) {
	path := SegmentPath(e.dir, n)
	so := e.opts.segmentOptions()
	r, err := segment.Open(e.fs, path, so)
	if err != nil {
		if last && errors.Is(err, segment.ErrCorrupt) {
			if fi, serr := e.fs.Stat(path); serr == nil && fi.Size() <= segment.HeaderSize {
				// Created, but its header never became durable: nothing in
				// it was acknowledged.
				broken := fmt.Sprintf("%s%s%d", path, brokenMarker, time.Now().UnixNano())
				if rerr := e.fs.Rename(path, broken); rerr != nil {
					return nil, fmt.Errorf("engine: set aside incomplete segment %s: %w", path, rerr)
				}
				e.log.Warn("removed a segment whose creation did not finish", slog.String("segment", path), slog.String("kept_as", broken))
				return nil, e.fs.SyncDir(e.segDir)
			}
			// A seal cut short by a crash can leave a trailer whose footer
			// never became durable. The scan tells that torn tail (cut
			// back, and the segment continues as the active one) from
			// corruption (reported as it is).
			sr, serr := segment.Scan(e.fs, path, so, nil)
			if serr == nil && !sr.Sealed && sr.TornAt >= 0 {
				if err := e.cutTornTail(path, sr); err != nil {
					return nil, err
				}
				return e.openSegment(n, prev, last)
			}
		}
		if !errors.Is(err, segment.ErrCorrupt) && !errors.Is(err, segment.ErrVersion) {
			return nil, err // I/O trouble, not corruption
		}
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	si := &segInfo{num: n, path: path, hdr: r.Header(), footer: r.Footer(), reader: r}
	h := si.hdr
	switch {
	case h.Number != n:
		return nil, fmt.Errorf("%w: %s: header says segment %d", ErrCorrupt, path, h.Number)
	case h.StoreID != e.storeID:
		return nil, fmt.Errorf("%w: %s belongs to store %x, this directory is store %x", ErrCorrupt, path, h.StoreID, e.storeID)
	}
	if prev != nil {
		if h.FirstSeq != lastSeqOf(prev)+1 {
			return nil, fmt.Errorf("%w: %s starts at seq %d, but segment %d ends at %d", ErrCorrupt, path, h.FirstSeq, prev.num, lastSeqOf(prev))
		}
		if h.PrevMAC != prev.footer.LastMAC {
			return nil, fmt.Errorf("%w: %s: header's prev MAC does not match the last MAC of segment %d", ErrCorrupt, path, prev.num)
		}
	} else if n == 1 && h.PrevMAC != chain.Genesis(e.storeID, h.KeyID) {
		return nil, fmt.Errorf("%w: %s: prev MAC is not the store's genesis value", ErrCorrupt, path)
	}
	if si.footer != nil && !last && !e.opts.VerifyOnOpen {
		return si, nil
	}
	key, err := e.opts.Keys.Lookup(h.KeyID)
	if err != nil {
		return nil, fmt.Errorf("%w: segment %s was written with key id %s, but the configured key has id %s; configure that key (or list it as a retired key after a rotation)",
			ErrKeyMismatch, path, h.KeyID, e.opts.Keys.Active().ID())
	}
	if si.footer != nil && !e.opts.VerifyOnOpen {
		return si, nil
	}
	// Check every record's MAC: the active segment always, sealed ones
	// when asked to.
	hs := key.NewHasher()
	var f vellum.Fields
	// The active segment's spans get their summaries as the scan goes:
	// keys are kept for the current span only (a slice per record for a
	// whole segment cost more in page faults than all the rest of Open).
	var (
		sums     []index.Summary
		spanKeys []index.Keys
		curSpan  uint64
		rebuilt  index.Summarizer
	)
	sr, err := segment.Scan(e.fs, path, so, func(en segment.Entry) error {
		if _, err := hs.Check(en.Seq, en.PrevMAC, en.Record, en.MAC); err != nil {
			return fmt.Errorf("%w: %s block at offset %d: %w", ErrCorrupt, path, en.Offset, err)
		}
		if si.footer != nil { // VerifyOnOpen of a sealed segment
			if err := vellum.PeekFields(en.Record, &f); err != nil {
				return fmt.Errorf("%w: %s block at offset %d seq %d: %w", ErrCorrupt, path, en.Offset, en.Seq, err)
			}
			k := index.KeysOfFields(&f)
			rebuilt.Add(en.Span, &k)
		}
		if last && si.footer == nil {
			e.treeRecoverLeaf(en) // the active segment's leaves (merkle.go)
			if err := vellum.PeekFields(en.Record, &f); err != nil {
				return fmt.Errorf("%w: %s block at offset %d seq %d: %w", ErrCorrupt, path, en.Offset, en.Seq, err)
			}
			if en.Span != curSpan {
				if len(spanKeys) > 0 {
					sums = append(sums, buildSummary(spanKeys))
				}
				spanKeys, curSpan = spanKeys[:0], en.Span
			}
			spanKeys = append(spanKeys, index.KeysOfFields(&f))
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, segment.ErrCorrupt) && !errors.Is(err, ErrCorrupt) {
			err = fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return nil, err
	}
	if si.footer != nil {
		// Queries skip spans by the footer's summaries; forged ones would
		// hide records, so a full check compares them with the records.
		if sec, ok := si.footer.Sections[segment.SectionSummaries]; ok && !bytes.Equal(sec, index.MarshalSummaries(rebuilt.Finish())) {
			return nil, fmt.Errorf("%w: %s offset %d: the footer's span summaries differ from those the records give", ErrCorrupt, path, si.footer.Offset)
		}
		return si, nil
	}
	if !last {
		return nil, fmt.Errorf("%w: %s is not sealed but later segments exist", ErrCorrupt, path)
	}
	if sr.TornAt >= 0 {
		if err := e.cutTornTail(path, sr); err != nil {
			return nil, err
		}
	}
	w, err := segment.OpenAppend(e.fs, path, sr, so)
	if err != nil {
		return nil, err
	}
	e.w = w
	// Closed spans have their summaries; the open span's keys wait in
	// pend for the records still to come.
	if spans := sr.Spans(); len(spans) > 0 && len(spanKeys) > 0 {
		e.ix = indexState{sums: sums, pend: slices.Clone(spanKeys), pendFirst: spans[len(spans)-1].FirstSeq}
		for i, sum := range sums {
			e.idx.Add(&index.Entry{Seg: n, Span: spans[i], Sum: sum})
		}
	}
	return si, nil
}

func buildSummary(keys []index.Keys) index.Summary {
	var b index.Builder
	for i := range keys {
		b.Add(&keys[i])
	}
	return b.Build()
}

// cutTornTail cuts an incomplete final batch back, keeping a .broken copy,
// unless the latest signed checkpoint covers records the cut would remove:
// checkpoints are signed only over durable records, so such bytes were
// acknowledged and their damage is corruption, reported without changing
// anything.
func (e *Engine) cutTornTail(path string, sr *segment.ScanResult) error {
	if e.signedSize > sr.State.LastSeq {
		return fmt.Errorf("%w: %s offset %d (seq %d): %s; the latest signed checkpoint covers %d records, so these were acknowledged and are not a torn tail",
			ErrCorrupt, path, sr.TornAt, sr.State.LastSeq+1, sr.TornReason, e.signedSize)
	}
	broken, err := segment.Truncate(e.fs, path, sr)
	if err != nil {
		return err
	}
	e.log.Warn("cut back an incomplete final batch", slog.String("segment", path),
		slog.Int64("offset", sr.State.Size), slog.String("reason", sr.TornReason), slog.String("kept_as", broken))
	return nil
}

// createSegment starts segment num for appends at the current end of the
// chain.
func (e *Engine) createSegment(num uint64) error {
	path := SegmentPath(e.dir, num)
	h := segment.Header{
		Number:   num,
		StoreID:  e.storeID,
		FirstSeq: e.nextSeq,
		KeyID:    e.opts.Keys.Active().ID(),
		PrevMAC:  e.prev,
		Created:  e.opts.Now(),
	}
	w, err := segment.Create(e.fs, path, h, e.opts.segmentOptions())
	if err != nil {
		return err
	}
	r, err := segment.Open(e.fs, path, e.opts.segmentOptions())
	if err != nil {
		w.Close()
		return err
	}
	e.w = w
	e.active = &segInfo{num: num, path: path, hdr: w.Header(), reader: r}
	return nil
}

// publish makes the writer's durable state visible to readers: it indexes
// spans that closed and swaps the snapshot in one step under imu.
func (e *Engine) publish() {
	closed, open, hasOpen := e.w.SpanView()
	e.imu.Lock()
	defer e.imu.Unlock()
	e.indexClosedSpans(closed)
	old := e.snap.Load()
	ns := &snapshot{
		sealed: old.sealed,
		first:  old.first,
		last:   e.w.State().LastSeq,
		active: &activeView{seg: e.active, state: e.w.State(), spans: closed, open: open, hasOpen: hasOpen},
	}
	e.snap.Store(ns)
	e.notify.wake()
}

// Close stops accepting records, commits what callers already handed in,
// closes every file and releases the directory lock. It is safe to call
// more than once.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		<-e.done
		return nil
	}
	e.closed = true
	e.space.Broadcast()
	e.mu.Unlock()
	close(e.quit)
	<-e.done
	e.stopTree() // final checkpoint (checkpoint.go)
	err := e.closeFiles()
	if lerr := e.lock.Close(); err == nil {
		err = lerr
	}
	e.log.Info("store closed")
	return err
}

func (e *Engine) closeFiles() error {
	e.filesClosed.Store(true)
	var err error
	if e.w != nil {
		err = e.w.Close()
	}
	if s := e.snap.Load(); s != nil {
		for _, si := range s.sealed {
			si.closeReader()
		}
	}
	if e.active != nil {
		e.active.closeReader()
	}
	return err
}

func (si *segInfo) closeReader() {
	si.rmu.Lock()
	defer si.rmu.Unlock()
	if si.reader != nil {
		si.reader.Close()
		si.reader = nil
	}
}

// Err returns why the engine stopped accepting records, or nil while it is
// healthy.
func (e *Engine) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.failErr != nil {
		return e.failErr
	}
	if e.closed {
		return ErrClosed
	}
	return nil
}

// failed returns why the engine failed, or nil; unlike Err it ignores
// Close, so the writer still commits what callers handed in before it.
func (e *Engine) failed() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.failErr
}

// StoreID returns the store's identity.
func (e *Engine) StoreID() [16]byte { return e.storeID }

// Dir returns the data directory.
func (e *Engine) Dir() string { return e.dir }

// LastSeq returns the seq of the last durable record (0 when empty).
func (e *Engine) LastSeq() uint64 { return e.snap.Load().last }

// FirstSeq returns the seq of the oldest record the store still holds.
func (e *Engine) FirstSeq() uint64 { return e.snap.Load().first }

// latestSignedSize returns the tree size of the checkpoint log's last entry
// that parses, or 0. Problems with the log itself are reported later, when
// the tree starts; here it only guards recovery against cutting records a
// checkpoint vouches for.
func latestSignedSize(fs vfs.FS, dir string) uint64 {
	res, err := checkpoint.ReadLog(fs, filepath.Join(dir, checkpoint.LogName))
	if err != nil {
		return 0
	}
	for i := len(res.Entries) - 1; i >= 0; i-- {
		if s, err := checkpoint.ParseNote(res.Entries[i].Note); err == nil {
			return s.Size
		}
	}
	return 0
}
