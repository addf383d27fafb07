package segment

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vellumlog/vellum/vfs"
)

// TestPreallocated writes a segment into a preallocated file on the real
// file system: batches go into the zeros without growing the file, a scan
// of the unsealed file finds the zero tail and nothing torn, OpenAppend
// continues inside it, and Seal cuts the tail so the sealed file ends with
// its trailer and reads back like any other.
func TestPreallocated(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seg")
	const size = 256 << 10
	if err := Preallocate(vfs.Default, path+PreallocSuffix, size, nil); err != nil {
		t.Fatal(err)
	}
	g := newGen(t)
	w, err := CreateIn(vfs.Default, path+PreallocSuffix, path, g.header(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + PreallocSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("preallocated name still exists: %v", err)
	}
	commit := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			e := g.next(120)
			if err := w.Add(e.Seq, e.Time, e.Record, e.MAC); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	commit(3)
	commit(1)
	if fi, _ := os.Stat(path); fi.Size() != size {
		t.Fatalf("file is %d bytes after commits, want the preallocated %d", fi.Size(), size)
	}
	if got := w.Preallocated(); got != size-w.State().Size {
		t.Fatalf("Preallocated = %d, want %d", got, size-w.State().Size)
	}
	st := w.State()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	sr, err := Scan(vfs.Default, path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sr.TornAt != -1 || sr.Sealed || sr.State != st || sr.ZeroTail != size-st.Size {
		t.Fatalf("scan: torn %d sealed %v state %+v zero tail %d; want no tear, state %+v, zero tail %d", sr.TornAt, sr.Sealed, sr.State, sr.ZeroTail, st, size-st.Size)
	}
	r, err := Open(vfs.Default, path, nil)
	if err != nil || r.Footer() != nil {
		t.Fatalf("Open of the unsealed preallocated file: footer %v, %v", r.Footer(), err)
	}
	r.Close()

	if w, err = OpenAppend(vfs.Default, path, sr, nil); err != nil {
		t.Fatal(err)
	}
	commit(2)
	if fi, _ := os.Stat(path); fi.Size() != size {
		t.Fatalf("file is %d bytes after reopening, want %d", fi.Size(), size)
	}
	st = w.State()
	ft, err := w.Seal(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if ft.Offset != st.Size || int64(len(b)) <= st.Size || !bytes.Equal(b[len(b)-8:], []byte("VELLUMFT")) {
		t.Fatalf("sealed file is %d bytes ending %q; want the footer at %d and the trailer last", len(b), b[len(b)-8:], st.Size)
	}
	sr, err = ScanBytes(path, b, nil, nil)
	if err != nil || !sr.Sealed || sr.ZeroTail != 0 || sr.State.Count != 6 {
		t.Fatalf("sealed scan: %+v, %v", sr, err)
	}
	if r, err = Open(vfs.Default, path, nil); err != nil || r.Footer() == nil {
		t.Fatalf("Open sealed: %v", err)
	}
	entries, err := r.ReadSpan(r.Footer().Spans[0])
	if err != nil || len(entries) != 6 {
		t.Fatalf("ReadSpan: %d entries, %v", len(entries), err)
	}
	r.Close()
}

// TestZeroTail pins the zero-tail rules of FORMAT.md ("Preallocated
// files") on a segment's bytes: zeros to the end after a commit frame end
// the log; zeros with anything after them, a batch cut off by zeros, and
// zeros before a commit frame that verifies are judged as before (torn, or
// corruption).
func TestZeroTail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s")
	g := newGen(t)
	w := writeBatches(t, vfs.Default, path, g, nil, 3, 2)
	committed := w.State()
	w.Close()
	base, _ := os.ReadFile(path)
	// One more batch, to cut up.
	w2 := writeBatches(t, vfs.Default, filepath.Join(dir, "t"), newGen(t), nil, 3, 2, 2)
	w2.Close()
	more, _ := os.ReadFile(filepath.Join(dir, "t"))
	batch := more[len(base):]
	zeros := func(n int) []byte { return make([]byte, n) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name     string
		b        []byte
		zeroTail int64
		torn     bool
		corrupt  bool
	}{
		{name: "zero tail", b: cat(base, zeros(4096)), zeroTail: 4096},
		{name: "one zero byte", b: cat(base, zeros(1)), zeroTail: 1},
		{name: "no tail", b: base},
		{name: "header then zeros", b: cat(base[:HeaderSize], zeros(1000)), zeroTail: 1000},
		{name: "zeros then garbage", b: cat(base, zeros(600), []byte{7}), torn: true},
		{name: "half a batch then zeros", b: cat(base, batch[:len(batch)/2], zeros(len(batch))), torn: true},
		{name: "batch with a zeroed sector then zeros", b: cat(base, zeros(len(batch)/2), batch[len(batch)/2:], zeros(512)), torn: true},
		{name: "zeros then a verifying batch", b: cat(base[:len(base)-CommitSize-40], zeros(40+CommitSize), batch), corrupt: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sr, err := ScanBytes(path, tc.b, nil, nil)
			if tc.corrupt {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("err %v, want corruption", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sr.ZeroTail != tc.zeroTail || (sr.TornAt >= 0) != tc.torn {
				t.Fatalf("zero tail %d torn at %d; want %d, torn %v", sr.ZeroTail, sr.TornAt, tc.zeroTail, tc.torn)
			}
			if tc.name != "header then zeros" && sr.State != committed {
				t.Fatalf("state %+v, want %+v", sr.State, committed)
			}
		})
	}
}

// TestOpenDataAcrossSeal opens a reader with OpenData on a segment being
// written into a preallocated file, and keeps reading through it while
// the writer seals the file (cutting its zero tail, adding the footer):
// OpenData never takes the file's length, so the reader it returned
// before the seal reads every span after it, like one opened after.
func TestOpenDataAcrossSeal(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seg")
	if err := Preallocate(vfs.Default, path+PreallocSuffix, 256<<10, nil); err != nil {
		t.Fatal(err)
	}
	g := newGen(t)
	h := g.header(1)
	w, err := CreateIn(vfs.Default, path+PreallocSuffix, path, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	for b := 0; b < 20; b++ {
		for i := 0; i < 10; i++ {
			e := g.next(300)
			if err := w.Add(e.Seq, e.Time, e.Record, e.MAC); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	r, err := OpenData(vfs.Default, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Footer() != nil || r.Size() != 0 || r.Header().FirstSeq != h.FirstSeq {
		t.Fatalf("OpenData: footer %v, size %d, header %+v", r.Footer(), r.Size(), r.Header())
	}
	ft, err := w.Seal(nil)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Size() >= 256<<10 {
		t.Fatalf("sealed file is %d bytes: the zero tail was not cut", fi.Size())
	}
	n := 0
	for _, sp := range ft.Spans {
		es, err := r.ReadSpan(sp)
		if err != nil {
			t.Fatalf("span at %d after the seal: %v", sp.Offset, err)
		}
		n += len(es)
	}
	if uint64(n) != ft.Count || n != 200 {
		t.Fatalf("read %d records, the footer says %d", n, ft.Count)
	}
	past := Span{Offset: ft.Offset + 4096, Length: 512, FirstSeq: ft.LastSeq + 1, Count: 1}
	if _, err := r.ReadSpan(past); err == nil {
		t.Fatal("a span past the end of the sealed file read without error")
	}
}

// stallFS is the real file system, except that the first Size of a file
// it opens returns the file's length and then waits until the file is
// shorter than that (at most 10 s): the scheduling delay between a
// reader's fstat and its reads, made deterministic.
type stallFS struct {
	vfs.FS
	stalled chan struct{} // closed when the Size call stalls
}

func (s *stallFS) Open(name string) (vfs.File, error) {
	f, err := s.FS.Open(name)
	if err != nil {
		return nil, err
	}
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

// TestOpenAndScanAcrossSeal runs Open and Scan on a segment written into
// a preallocated file (as `vellum report` and `vellum verify` may beside
// a running server), each stalled between taking the file's length and
// reading, while the writer seals the file: the seal cuts the zero tail,
// so the length they took is past the end. Both must start again with
// the new length and see every record, not fail with a short read.
func TestOpenAndScanAcrossSeal(t *testing.T) {
	for _, op := range []string{"Open", "Scan"} {
		t.Run(op, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "seg")
			if err := Preallocate(vfs.Default, path+PreallocSuffix, 256<<10, nil); err != nil {
				t.Fatal(err)
			}
			g := newGen(t)
			w, err := CreateIn(vfs.Default, path+PreallocSuffix, path, g.header(1), nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 50; i++ {
				e := g.next(300)
				if err := w.Add(e.Seq, e.Time, e.Record, e.MAC); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			fs := &stallFS{FS: vfs.Default, stalled: make(chan struct{})}
			type result struct {
				count  uint64
				sealed bool
				err    error
			}
			got := make(chan result, 1)
			go func() {
				if op == "Open" {
					r, err := Open(fs, path, nil)
					if err != nil {
						got <- result{err: err}
						return
					}
					defer r.Close()
					if ft := r.Footer(); ft != nil {
						got <- result{count: ft.Count, sealed: true}
						return
					}
					got <- result{count: 50} // not sealed yet when it read: the records are the writer's
					return
				}
				n := uint64(0)
				sr, err := Scan(fs, path, nil, func(Entry) error { n++; return nil })
				if err != nil {
					got <- result{err: err}
					return
				}
				got <- result{count: n, sealed: sr.Sealed}
			}()
			<-fs.stalled // it took the preallocated length: seal now
			ft, err := w.Seal(nil)
			if err != nil {
				t.Fatal(err)
			}
			r := <-got
			if r.err != nil {
				t.Fatalf("%s while the segment was sealed: %v", op, r.err)
			}
			// It read the file after the zero tail was cut, with or
			// without the footer yet: either way every record.
			if r.count != ft.Count || ft.Count != 50 {
				t.Fatalf("%s saw sealed %v, %d records; the footer says %d", op, r.sealed, r.count, ft.Count)
			}
		})
	}
}
