package engine

import (
	"os"
	"sync"
	"testing"
	"time"

	"github.com/vellumlog/vellum/vfs"
)

// statStallFS is the real file system, except that the Size of one
// read-only open of the armed path returns the length the file had and
// then waits until the file is shorter than that (at most 10 s): the
// scheduling delay between a reader's fstat and its next read, made
// deterministic.
type statStallFS struct {
	vfs.FS
	mu      sync.Mutex
	path    string        // armed; "" when not
	stalled chan struct{} // closed when a Size call stalls
}

func (s *statStallFS) arm(path string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.path, s.stalled = path, make(chan struct{})
	return s.stalled
}

func (s *statStallFS) Open(name string) (vfs.File, error) {
	f, err := s.FS.Open(name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if name != s.path {
		return f, nil
	}
	s.path = "" // once
	return &stallFile{File: f, stalled: s.stalled}, nil
}

type stallFile struct {
	vfs.File
	stalled chan struct{}
	once    sync.Once
}

func (f *stallFile) Size() (int64, error) {
	n, err := f.File.Size()
	if err != nil {
		return n, err
	}
	f.once.Do(func() {
		close(f.stalled)
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if fi, err := os.Stat(f.Name()); err == nil && fi.Size() < n {
				return
			}
		}
	})
	return n, nil
}

// TestReadWhileSealingPreallocated reads a record of the active segment,
// written into a preallocated file, whose reader the LRU had closed, while
// the segment is sealed: the read's open of the file sees its preallocated
// length, then the seal cuts the zero tail and writes the footer. The read
// must succeed and the engine stay healthy (the soak of issue 14 failed the
// engine: "refusing to sign a checkpoint: segment: read … at offset
// <preallocated size - 128>: unexpected EOF", a consistency proof reading
// the sealing segment's leaves).
func TestReadWhileSealingPreallocated(t *testing.T) {
	fs := &statStallFS{FS: vfs.Default}
	dir := t.TempDir()
	o := testOpts(t)
	o.FS = fs
	o.NoPreallocate = false // the default, stated: the test needs it
	o.SegmentSize = 16 << 10
	o.BlockSize = 1 << 10
	o.MaxOpenSegments = 1
	o.CheckpointInterval = -1
	e := open(t, dir, o)
	defer e.Close()
	next := 0
	fillUntilPreallocated(t, e, &next)
	acked := map[uint64]string{}
	appendIDs(t, e, &next, 3, acked) // durable records in the active segment
	seq := e.LastSeq()
	snap := e.index.snapshot()
	active := snap.active.seg
	if e.Stats().Preallocated == 0 {
		t.Fatal("the active segment is not in a preallocated file")
	}
	if _, err := e.Get(ctx, 1); err != nil { // MaxOpenSegments 1: closes the active segment's reader
		t.Fatal(err)
	}
	if got := e.files.open(); got != 1 || active.reader != nil {
		t.Fatalf("the active segment's reader is still open (%d open)", got)
	}

	stalled := fs.arm(active.path)
	got := make(chan error, 1)
	go func() {
		r, err := e.Get(ctx, seq)
		if err == nil && r.Attributes["id"] != acked[seq] {
			t.Errorf("seq %d has id %q, want %q", seq, r.Attributes["id"], acked[seq])
		}
		got <- err
	}()
	var err error
	select {
	case <-stalled: // the read is between its stat and its reads: seal now
	case err = <-got: // the read did not need the file's length
		got <- err
	}
	sealed := e.Stats().SealedSegments
	for deadline := time.Now().Add(10 * time.Second); e.Stats().SealedSegments == sealed; {
		if time.Now().After(deadline) {
			t.Fatal("the active segment was not sealed")
		}
		appendIDs(t, e, &next, 3, acked)
	}
	if err := <-got; err != nil {
		t.Fatalf("read of seq %d while its segment was sealed: %v", seq, err)
	}
	if err := e.Err(); err != nil {
		t.Fatalf("engine failed: %v", err)
	}
	if _, err := e.Get(ctx, seq); err != nil {
		t.Fatalf("read of seq %d after the seal: %v", seq, err)
	}
}
