package verify

import (
	"golang.org/x/sys/unix"

	"github.com/vellumlog/vellum/vfs"
)

// mapFile maps an open segment read-only when the file system hands out a
// real descriptor (vfs.Default does). Reading a 64 MiB segment into a
// fresh buffer costs a zeroed allocation and a copy that mapping the page
// cache avoids. A file truncated while mapped faults; the worker turns the
// fault into an error (see segment), so corrupt or vanishing files never
// crash the verifier.
func mapFile(f vfs.File, size int64) ([]byte, func(), bool) {
	fd, ok := f.(interface{ Fd() uintptr })
	if !ok || size <= 0 || size > 1<<40 {
		return nil, nil, false
	}
	b, err := unix.Mmap(int(fd.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, nil, false
	}
	_ = unix.Madvise(b, unix.MADV_SEQUENTIAL)
	return b, func() { unix.Munmap(b) }, true
}

// prefetchFile asks the kernel to read a segment into the page cache ahead
// of its worker (POSIX_FADV_WILLNEED starts the reads and returns), so
// that a cold store's reads overlap the hashing of the segments before
// it. Mapping a file whose pages are cached is then fast; faulting in a
// mapping while its readahead is still under way is not (PERFORMANCE.md),
// so the hint goes a whole segment ahead. Best effort: errors are ignored.
func prefetchFile(f vfs.File, size int64) {
	if fd, ok := f.(interface{ Fd() uintptr }); ok && size > 0 {
		_ = unix.Fadvise(int(fd.Fd()), 0, size, unix.FADV_WILLNEED)
	}
}
