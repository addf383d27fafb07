package engine

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vellumlog/vellum/vfs"
)

// Names inside a data directory (segment/FORMAT.md, "Directory layout").
const (
	lockName     = "LOCK"
	storeName    = "STORE"
	segmentsDir  = "segments"
	segPrefix    = "seg-"
	segSuffix    = ".vseg"
	storeFormat  = 1
	brokenMarker = ".broken-"
)

// SegmentName returns the file name of segment n.
func SegmentName(n uint64) string { return fmt.Sprintf("%s%020d%s", segPrefix, n, segSuffix) }

// parseSegmentName returns the number in a segment file name, or false.
func parseSegmentName(name string) (uint64, bool) {
	if !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) {
		return 0, false
	}
	digits := name[len(segPrefix) : len(name)-len(segSuffix)]
	if len(digits) != 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || n == 0 {
		return 0, false
	}
	return n, true
}

// storeMeta is the content of the STORE file.
type storeMeta struct {
	Format  int       `json:"format"`
	StoreID string    `json:"store_id"`
	Created time.Time `json:"created"`
}

// loadOrCreateStore reads DIR/STORE, or creates it when the directory holds
// no segments yet. A directory with segments but no STORE is an error: a new
// identity would break the chain's genesis.
func loadOrCreateStore(fs vfs.FS, dir string, haveSegments bool, now time.Time) ([16]byte, error) {
	var id [16]byte
	path := filepath.Join(dir, storeName)
	b, err := vfs.ReadFile(fs, path)
	switch {
	case err == nil:
		var m storeMeta
		if err := json.Unmarshal(b, &m); err != nil {
			return id, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
		}
		if m.Format != storeFormat {
			return id, fmt.Errorf("%w: %s has format %d, this build reads %d", ErrCorrupt, path, m.Format, storeFormat)
		}
		raw, err := hex.DecodeString(m.StoreID)
		if err != nil || len(raw) != len(id) {
			return id, fmt.Errorf("%w: %s: store_id %q is not 32 hex characters", ErrCorrupt, path, m.StoreID)
		}
		copy(id[:], raw)
		return id, nil
	case errors.Is(err, os.ErrNotExist):
		if haveSegments {
			return id, fmt.Errorf("%w: %s is missing but segments exist; restore it from a backup", ErrCorrupt, path)
		}
		if _, err := rand.Read(id[:]); err != nil {
			return id, fmt.Errorf("engine: generate store id: %w", err)
		}
		m, _ := json.MarshalIndent(storeMeta{Format: storeFormat, StoreID: hex.EncodeToString(id[:]), Created: now.UTC()}, "", "  ")
		if err := vfs.WriteFileAtomic(fs, dir, path, append(m, '\n')); err != nil {
			return id, fmt.Errorf("engine: write %s: %w", path, err)
		}
		return id, nil
	default:
		return id, fmt.Errorf("engine: read %s: %w", path, err)
	}
}

// ReadStoreID returns the store id recorded in a data directory, for tools
// that read a store without opening it.
func ReadStoreID(fs vfs.FS, dir string) ([16]byte, error) {
	var id [16]byte
	if fs == nil {
		fs = vfs.Default
	}
	b, err := vfs.ReadFile(fs, filepath.Join(dir, storeName))
	if err != nil {
		return id, fmt.Errorf("engine: %w", err)
	}
	var m storeMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return id, fmt.Errorf("%w: %s: %v", ErrCorrupt, storeName, err)
	}
	raw, err := hex.DecodeString(m.StoreID)
	if err != nil || len(raw) != len(id) {
		return id, fmt.Errorf("%w: %s: bad store_id", ErrCorrupt, storeName)
	}
	copy(id[:], raw)
	return id, nil
}

// ListSegments returns the segment numbers in DIR/segments in order,
// ignoring other files (.broken copies, temporaries).
func ListSegments(fs vfs.FS, dir string) ([]uint64, error) {
	if fs == nil {
		fs = vfs.Default
	}
	names, err := fs.ReadDir(filepath.Join(dir, segmentsDir))
	if err != nil {
		return nil, fmt.Errorf("engine: list segments: %w", err)
	}
	var nums []uint64
	for _, name := range names {
		if n, ok := parseSegmentName(name); ok {
			nums = append(nums, n)
		}
	}
	return nums, nil
}

// SegmentPath returns the path of segment n in data directory dir.
func SegmentPath(dir string, n uint64) string {
	return filepath.Join(dir, segmentsDir, SegmentName(n))
}
