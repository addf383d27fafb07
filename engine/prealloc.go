package engine

// Preallocated segment files (segment/FORMAT.md, "Preallocated files"):
// while a segment fills, the next one's file is zero-filled and synced in
// the background (from the moment it is half full or half its age), so
// that when the flush loop rotates, the new segment's
// batches are written into allocated, written blocks and a commit's
// fdatasync need not commit a size change. The file is prepared once per
// segment number; a rotation that finds it not ready creates the segment
// as before (a growing file) and drops the unfinished one.

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

// preallocator prepares at most one segment file at a time, on its own
// goroutine. Its methods are safe for concurrent use, its fields guarded
// by mu: the flusher (writeBatch) and the flush loop (rotateIfOld) ask for
// files, the flush loop (and Open) takes them, Close stops it.
type preallocator struct {
	fs   vfs.FS
	dir  string
	log  *slog.Logger
	size int64 // bytes per file; 0: preallocation is off

	mu     sync.Mutex
	asked  uint64 // the last segment number start was asked for
	num    uint64 // the segment number being or been prepared; 0: none
	ready  bool   // the file for num is complete and synced
	done   chan struct{}
	stop   *atomic.Bool // tells the running preparation to give up
	closed bool
}

// preallocSize is how much of the next segment is zero-filled: the segment
// size plus room for the batch that crosses it, in whole 4 KiB pages.
func preallocSize(o *Options) int64 {
	if o.NoPreallocate {
		return 0
	}
	n := o.SegmentSize + min(o.SegmentSize/8, int64(o.MaxBatchBytes))
	return (n + 4095) &^ 4095
}

func newPreallocator(fs vfs.FS, dir string, log *slog.Logger, size int64) *preallocator {
	return &preallocator{fs: fs, dir: dir, log: log, size: size}
}

func preallocPath(dir string, num uint64) string {
	return layout.SegmentPath(dir, num) + segment.PreallocSuffix
}

// removeLeftovers removes prepared files a previous process left behind:
// they hold nothing (FORMAT.md), and the next one is prepared afresh.
func (p *preallocator) removeLeftovers() error {
	segDir := layout.SegmentsPath(p.dir)
	names, err := p.fs.ReadDir(segDir)
	if err != nil {
		return err
	}
	for _, name := range names {
		if strings.HasSuffix(name, segment.PreallocSuffix) {
			if err := p.fs.Remove(segDir + "/" + name); err != nil {
				return err
			}
		}
	}
	return nil
}

// start begins preparing the file of segment num, unless preallocation is
// off, the preallocator is closed, or num was asked for already: the
// committer asks once its active segment is half full (every batch from
// then on) or half its age (rotateIfOld), early enough for the file to be
// ready at the rotation, and never for a store that stays small, such as
// a test's.
func (p *preallocator) start(num uint64) {
	if p.size <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.asked == num {
		return
	}
	p.asked = num
	if p.stop != nil {
		p.stop.Store(true) // an older one, no longer wanted
	}
	p.num, p.ready = num, false
	done, stop := make(chan struct{}), new(atomic.Bool)
	p.done, p.stop = done, stop
	path := preallocPath(p.dir, num)
	go func() {
		defer close(done)
		err := segment.Preallocate(p.fs, path, p.size, stop.Load)
		p.mu.Lock()
		defer p.mu.Unlock()
		if err == nil && p.num == num && !p.closed {
			p.ready = true
			return
		}
		if err == nil {
			p.fs.Remove(path) // no longer wanted
		} else if !errors.Is(err, segment.ErrStopped) {
			// Not fatal: the segment is then created as a growing file.
			p.log.Warn("could not preallocate the next segment", slog.String("error", err.Error()))
		}
	}()
}

// take returns the prepared file of segment num if it is ready, for
// segment.CreateIn, and forgets it. Otherwise it stops a preparation that
// is still running and reports false: the caller creates the segment
// without it.
func (p *preallocator) take(num uint64) (string, bool) {
	p.mu.Lock()
	if p.num == num && p.ready {
		p.num, p.ready = 0, false
		p.mu.Unlock()
		return preallocPath(p.dir, num), true
	}
	done, stop := p.done, p.stop
	p.num = 0
	p.mu.Unlock()
	if done != nil {
		stop.Store(true)
		<-done // at most one 1 MiB write
	}
	return "", false
}

// isReady reports whether the file of segment num is prepared.
func (p *preallocator) isReady(num uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.num == num && p.ready
}

// close stops a preparation that is running, waits for it, and removes a
// prepared file nobody took, so that a closed store holds none.
func (p *preallocator) close() {
	p.mu.Lock()
	p.closed = true
	done, stop, num, ready := p.done, p.stop, p.num, p.ready
	p.mu.Unlock()
	if done == nil {
		return
	}
	stop.Store(true)
	<-done
	if ready {
		p.fs.Remove(preallocPath(p.dir, num))
	}
}
