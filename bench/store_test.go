package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

// storeBytes is the size of a store's segment files, what bytes per
// record are quoted on (keys, STORE and the checkpoint log are a few KB).
func storeBytes(tb testing.TB, dir string) int64 {
	nums, err := layout.ListSegments(nil, dir)
	if err != nil {
		tb.Fatal(err)
	}
	var n int64
	for _, num := range nums {
		fi, err := os.Stat(layout.SegmentPath(dir, num))
		if err != nil {
			tb.Fatal(err)
		}
		n += fi.Size()
	}
	return n - unwrittenBytes(tb, dir)
}

// unwrittenBytes is the preallocated space in a store's segments
// directory that holds no records yet (segment/FORMAT.md, "Preallocated
// files"): the active segment's zero tail and any .prealloc file. Sizes
// per record leave it out.
func unwrittenBytes(tb testing.TB, dir string) int64 {
	nums, err := layout.ListSegments(nil, dir)
	if err != nil {
		tb.Fatal(err)
	}
	var n int64
	if len(nums) > 0 {
		sr, err := segment.Scan(vfs.Default, layout.SegmentPath(dir, nums[len(nums)-1]), nil, nil)
		if err != nil {
			tb.Fatal(err)
		}
		n += sr.ZeroTail
	}
	es, _ := os.ReadDir(layout.SegmentsPath(dir))
	for _, e := range es {
		if fi, err := e.Info(); err == nil && strings.HasSuffix(e.Name(), segment.PreallocSuffix) {
			n += fi.Size()
		}
	}
	return n
}

// reportBytesPerRecord reports a store's size on disk per record.
func reportBytesPerRecord(b *testing.B, bytes int64, records int) {
	if records > 0 {
		b.ReportMetric(float64(bytes)/float64(records), "B/record")
	}
}

// requireDisk fails the benchmark when dir is on a memory file system,
// where fsync costs nothing and the "disk" numbers would be fiction, and
// logs the file system it is on (statfs magic).
func requireDisk(b *testing.B, dir string) {
	fsType, err := FSType(dir)
	if err != nil {
		b.Fatal(err)
	}
	if mem, _ := InMemoryFS(dir); mem {
		b.Fatalf("%s is on %s, where fsync costs nothing; set TMPDIR to a directory on a disk", dir, fsType)
	}
	b.Logf("data on %s (%s)", fsType, dir)
}

// evictStore drops a store's files from the page cache, so the next read
// comes from the disk: each file is fsync'd (only clean pages can be
// dropped) and then POSIX_FADV_DONTNEED'd.
func evictStore(b *testing.B, dir string) {
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := f.Sync(); err != nil {
			return err
		}
		return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	})
	if err != nil {
		b.Fatal(err)
	}
}

// residentFraction is the share of dir's file pages in the page cache
// (mincore over a read-only mapping), to check that eviction worked.
func residentFraction(b *testing.B, dir string) float64 {
	var in, all int
	page := os.Getpagesize()
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return nil
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil || fi.Size() == 0 {
			return nil
		}
		m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return nil
		}
		defer unix.Munmap(m)
		vec := make([]byte, (len(m)+page-1)/page)
		if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e == 0 {
			for _, v := range vec {
				all++
				if v&1 != 0 {
					in++
				}
			}
		}
		return nil
	})
	if all == 0 {
		return 0
	}
	return float64(in) / float64(all)
}
