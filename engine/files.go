package engine

// Segment readers: every segment keeps its identity (segInfo) for the life
// of the engine, but not an open file. Readers are opened on first use and
// kept in a least-recently-used list bounded by Options.MaxOpenSegments, so
// a store with thousands of segments holds a bounded number of file
// descriptors; a reader in use by a read is never closed under it.

import (
	"container/list"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

// segmentFiles opens segment readers for every segInfo of an engine, keeps
// at most max of them open (those in use by a read may briefly exceed it),
// and refuses to open more once the engine is closed. Safe for concurrent
// use.
type segmentFiles struct {
	fs     vfs.FS
	opts   *segment.Options
	max    int
	closed atomic.Bool

	mu  sync.Mutex
	lru list.List // of *segInfo with an open reader, most recently used first
}

func newSegmentFiles(fs vfs.FS, opts *segment.Options, max int) *segmentFiles {
	return &segmentFiles{fs: fs, opts: opts, max: max}
}

// acquire returns si's reader, opening it if needed, for one read; the
// caller must release it.
func (f *segmentFiles) acquire(si *segInfo) (*segment.Reader, error) {
	f.mu.Lock()
	if si.reader != nil {
		si.users++
		f.lru.MoveToFront(si.elem)
		r := si.reader
		f.mu.Unlock()
		return r, nil
	}
	purged := si.purged
	f.mu.Unlock()
	if purged {
		return nil, fmt.Errorf("%w: segment %d was purged by retention", ErrNotFound, si.num)
	}
	if f.closed.Load() {
		return nil, ErrClosed
	}
	r, err := f.openData(si) // outside the lock: it reads the header
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed.Load() { // closeAll ran meanwhile
		r.Close()
		return nil, ErrClosed
	}
	if si.purged { // retention removed it meanwhile
		r.Close()
		return nil, fmt.Errorf("%w: segment %d was purged by retention", ErrNotFound, si.num)
	}
	if si.reader != nil { // another read opened it meanwhile
		r.Close()
	} else {
		f.addLocked(si, r)
	}
	si.users++
	f.lru.MoveToFront(si.elem)
	return si.reader, nil
}

// openData opens si's file to read records at the spans readers know: the
// footer is si.footer, so it is not read again, and the file's length is
// not taken, since the segment may be the active one, sealed (its
// preallocated tail cut) while the file opens (segment.OpenData). The
// header must be the one si was opened with.
func (f *segmentFiles) openData(si *segInfo) (*segment.Reader, error) {
	r, err := segment.OpenData(f.fs, si.path, f.opts)
	if err != nil {
		return nil, err
	}
	if h := r.Header(); h.Number != si.hdr.Number || h.FirstSeq != si.hdr.FirstSeq || h.StoreID != si.hdr.StoreID ||
		h.KeyID != si.hdr.KeyID || h.PrevMAC != si.hdr.PrevMAC {
		r.Close()
		return nil, fmt.Errorf("%w: %s: header changed since the store opened it (segment %d, first seq %d; was %d, %d)",
			ErrCorrupt, si.path, h.Number, h.FirstSeq, si.hdr.Number, si.hdr.FirstSeq)
	}
	return r, nil
}

// release ends a read that acquire began.
func (f *segmentFiles) release(si *segInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	si.users--
	if si.purged && si.users == 0 {
		f.closeLocked(si)
	}
	f.evictLocked()
}

// adopt gives si a reader opened elsewhere (recovery, a new segment), as
// the most recently used.
func (f *segmentFiles) adopt(si *segInfo, r *segment.Reader) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if si.reader != nil {
		r.Close()
		return
	}
	f.addLocked(si, r)
}

func (f *segmentFiles) addLocked(si *segInfo, r *segment.Reader) {
	si.reader = r
	si.elem = f.lru.PushFront(si)
	f.evictLocked()
}

// evictLocked closes the least recently used readers no read is using
// until at most max are open.
func (f *segmentFiles) evictLocked() {
	for e := f.lru.Back(); e != nil && f.lru.Len() > f.max; {
		prev := e.Prev()
		if si := e.Value.(*segInfo); si.users == 0 {
			f.closeLocked(si)
		}
		e = prev
	}
}

func (f *segmentFiles) closeLocked(si *segInfo) {
	if si.reader == nil {
		return
	}
	si.reader.Close()
	si.reader = nil
	f.lru.Remove(si.elem)
	si.elem = nil
}

// purge marks si as removed by retention and closes its reader: reads in
// progress finish on the open file (Unix keeps a removed file readable),
// later ones fail with ErrNotFound.
func (f *segmentFiles) purge(si *segInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	si.purged = true
	if si.users == 0 {
		f.closeLocked(si)
	} // else the last read's release closes it
}

// closeAll refuses further opens and closes every open reader (Close).
func (f *segmentFiles) closeAll() {
	f.closed.Store(true)
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.lru.Len() > 0 {
		f.closeLocked(f.lru.Front().Value.(*segInfo))
	}
}

// open returns how many readers are open.
func (f *segmentFiles) open() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lru.Len()
}
