package layout

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vellumlog/vellum/vfs"
)

// Names inside a data directory (segment/FORMAT.md, "Directory layout").
// Wire constants: do not change.
const (
	// LockName is the file the writing process holds an flock on.
	LockName = "LOCK"
	// StoreName is the file that holds the store's identity.
	StoreName = "STORE"
	// SegmentsDir is the directory of segment files.
	SegmentsDir = "segments"
	// BrokenMarker joins a file's name and a Unix-nanosecond time in the
	// name of the copy recovery keeps before it changes the file.
	BrokenMarker = ".broken-"

	segPrefix = "seg-"
	segSuffix = ".vseg"
	segDigits = 20
)

// SegmentName returns the file name of segment n: 20 decimal digits, so
// names sort in log order.
func SegmentName(n uint64) string { return fmt.Sprintf("%s%0*d%s", segPrefix, segDigits, n, segSuffix) }

// ParseSegmentName returns the number in a segment file name, or false for
// any other name (.broken copies, temporaries).
func ParseSegmentName(name string) (uint64, bool) {
	if !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) {
		return 0, false
	}
	digits := name[len(segPrefix) : len(name)-len(segSuffix)]
	if len(digits) != segDigits {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || n == 0 {
		return 0, false
	}
	return n, true
}

// SegmentPath returns the path of segment n in data directory dir.
func SegmentPath(dir string, n uint64) string {
	return filepath.Join(dir, SegmentsDir, SegmentName(n))
}

// SegmentsPath returns the path of dir's segment directory.
func SegmentsPath(dir string) string { return filepath.Join(dir, SegmentsDir) }

// LockPath returns the path of dir's lock file.
func LockPath(dir string) string { return filepath.Join(dir, LockName) }

// BrokenPath returns the name under which recovery keeps a copy of path
// made at t.
func BrokenPath(path string, t time.Time) string {
	return path + BrokenMarker + strconv.FormatInt(t.UnixNano(), 10)
}

// ListSegments returns the segment numbers in dir's segment directory, in
// order, ignoring every other file. fs nil means vfs.Default.
func ListSegments(fs vfs.FS, dir string) ([]uint64, error) {
	if fs == nil {
		fs = vfs.Default
	}
	names, err := fs.ReadDir(SegmentsPath(dir))
	if err != nil {
		return nil, fmt.Errorf("layout: list segments: %w", err)
	}
	var nums []uint64
	for _, name := range names {
		if n, ok := ParseSegmentName(name); ok {
			nums = append(nums, n)
		}
	}
	return nums, nil
}

// FirstGap returns the index i of the first number in nums (sorted) that
// does not follow nums[i-1] by one, or -1 when they run without gaps.
// Retention removes whole segments from the start only, so a gap is a
// missing segment.
func FirstGap(nums []uint64) int {
	for i := 1; i < len(nums); i++ {
		if nums[i] != nums[i-1]+1 {
			return i
		}
	}
	return -1
}
