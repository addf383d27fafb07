package engine

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/vellumlog/vellum/index"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/vfs"
)

// Engine is an open store: one data directory, any number of concurrent
// appenders and readers. All methods are safe for concurrent use.
//
// It is a facade over the parts that own the store's state, each with its
// own goroutine or lock (see doc.go and ARCHITECTURE.md):
//   - commit, the committer (committer.go, rotate.go): batching, write,
//     fsync, acknowledgement, and the active segment's life;
//   - tree, the log-wide Merkle tree and checkpointer (tree.go,
//     checkpoint.go), on its own goroutine;
//   - index, the indexer (indexer.go): the snapshot readers see and the
//     time index queries walk;
//   - recovery (recovery.go), which runs once in Open and hands what it
//     found to the three above.
//
// Before them, on each appending goroutine, prep (append.go) validates,
// redacts and encodes the records.
type Engine struct {
	dir     string
	opts    Options
	log     *slog.Logger
	storeID [16]byte
	lock    io.Closer
	files   *segmentFiles

	prep   preparer
	commit *committer
	tree   *tree
	index  *indexer
	ret    Retainer // retention.go, holds.go

	closeOnce sync.Once
	closeErr  error
	tornCuts  int // torn tails Open cut back, for Options.Observer (observer.go)
}

// Open opens the store in dir, creating it if needed, recovers a torn tail
// of the active segment, checks the chain, and starts the committer and
// the tree goroutine.
func Open(dir string, opts *Options) (_ *Engine, err error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &Engine{
		dir:   dir,
		opts:  o,
		log:   o.Logger.With(slog.String("component", "engine"), slog.String("dir", dir)),
		files: newSegmentFiles(o.FS, o.segmentOptions(), o.MaxOpenSegments),
		prep:  newPreparer(&o),
	}
	e.ret.e = e
	start := time.Now()
	defer func() { observeOpen(&e.opts, start, e.tornCuts, e.index, err) }() // metrics (observer.go)
	if e.lock, err = lockDir(o.FS, dir); err != nil {
		return nil, err
	}
	if err := e.open(); err != nil {
		e.lock.Close()
		return nil, err
	}
	e.log.Info("store open", slog.Any("options", o), slog.Uint64("last_seq", e.LastSeq()),
		slog.Int("segments", len(e.index.snapshot().sealed)+1))
	return e, nil
}

// lockDir creates dir and its segment directory, makes their entries
// durable, and takes the directory's lock.
func lockDir(fs vfs.FS, dir string) (io.Closer, error) {
	segDir := layout.SegmentsPath(dir)
	if err := fs.MkdirAll(segDir, 0o750); err != nil {
		return nil, fmt.Errorf("engine: create %s: %w", segDir, err)
	}
	// A no-op cost once they exist: segments synced into a directory
	// whose entry is lost are lost.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := fs.SyncDir(d); err != nil {
			return nil, fmt.Errorf("engine: sync directory %s: %w", d, err)
		}
	}
	lock, err := fs.Lock(layout.LockPath(dir))
	if errors.Is(err, vfs.ErrLocked) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("engine: lock %s: %w", dir, err)
	}
	return lock, nil
}

// open recovers the directory and builds the parts from what recovery
// found, in the order each needs the others: readers' view, tree,
// committer, then the goroutines.
func (e *Engine) open() (err error) {
	o := &e.opts
	r := &recovery{fs: o.FS, dir: e.dir, opts: o, log: e.log, files: e.files}
	e.index = newIndexer(e.log)
	e.index.noPostings, e.index.postHook = e.opts.NoPostings, e.opts.postingsHook
	e.index.cache = index.NewCache(int(max(0, e.opts.PostingsCache)))
	e.index.post = index.NewPostingsBuilder(int(min(o.SegmentSize/256, 1<<20))) // a guess at a segment's records; Next sizes the later ones
	e.tree = newTree(o, o.FS, e.dir, e.log, e.index, func(err error) error { return e.commit.fail(err) })
	defer func() {
		if err != nil {
			r.closeFiles()
			if e.commit != nil && e.commit.writer != nil {
				// The segment committer.open started (or recovery's, closed
				// already: a no-op); the flush loop that would close it
				// never ran.
				e.commit.writer.Close()
			}
			e.files.closeAll()
		}
	}()
	err = r.run()
	e.tornCuts = r.tornCuts
	if err != nil {
		return err
	}
	e.storeID = r.storeID
	e.ret.purged = r.purged
	if r.pruned != nil {
		e.tree.pruned.Store(r.pruned)
	}
	if e.ret.holds, err = layout.ReadHolds(o.FS, e.dir); err != nil {
		return corruptOr(err)
	}
	e.commit = newCommitter(o, e.log, e.dir, r.storeID, e.files, e.index, e.tree)
	var seg, first uint64
	if r.active != nil {
		seg, first = r.active.num, r.active.hdr.FirstSeq
	}
	e.index.restore(r.sealed, seg, r.index)
	if err := e.tree.restore(r.sealed, first, r.leaves, r.size()); err != nil {
		return err
	}
	if err := e.commit.open(r); err != nil {
		return err
	}
	if err := e.commit.dedup.load(e.index.snapshot()); err != nil {
		return err
	}
	if err := e.tree.start(e.Origin()); err != nil {
		return err
	}
	e.index.startPostings() // postings.go
	go e.commit.flushLoop()
	e.ret.start()
	return nil
}

// Close stops accepting records, commits what callers already handed in,
// signs a final checkpoint, closes every file and releases the directory
// lock. It is safe to call more than once; later calls wait for the first
// and return nil.
func (e *Engine) Close() error {
	first := false
	e.closeOnce.Do(func() {
		first = true
		e.ret.stop()
		e.closeErr = e.commit.close()
		e.index.stopPostings()
		e.tree.stop()
		e.files.closeAll() // every segment reader
		if err := e.lock.Close(); e.closeErr == nil {
			e.closeErr = err
		}
		e.log.Info("store closed")
	})
	if !first {
		return nil
	}
	return e.closeErr
}

// Err returns why the engine stopped accepting records, or nil while it is
// healthy.
func (e *Engine) Err() error { return e.commit.err() }

// StoreID returns the store's identity.
func (e *Engine) StoreID() [16]byte { return e.storeID }

// Dir returns the data directory.
func (e *Engine) Dir() string { return e.dir }

// LastSeq returns the seq of the last durable record (0 when empty).
func (e *Engine) LastSeq() uint64 { return e.index.snapshot().last }

// FirstSeq returns the seq of the oldest record the store still holds.
func (e *Engine) FirstSeq() uint64 { return e.index.snapshot().first }

// Origin returns the origin line of the store's checkpoints.
func (e *Engine) Origin() string {
	if e.opts.Origin != "" {
		return e.opts.Origin
	}
	return DefaultOrigin(e.storeID)
}
