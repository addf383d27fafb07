package layout

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vellumlog/vellum/vfs"
)

// StoreFormat is the format number the STORE file carries. Wire constant.
const StoreFormat = 1

// storeMeta is the content of the STORE file.
type storeMeta struct {
	Format  int       `json:"format"`
	StoreID string    `json:"store_id"`
	Created time.Time `json:"created"`
}

// ReadStoreID returns the store id recorded in dir's STORE file. An
// unreadable file is an error naming it; a malformed one wraps ErrCorrupt.
// fs nil means vfs.Default.
func ReadStoreID(fs vfs.FS, dir string) ([16]byte, error) {
	if fs == nil {
		fs = vfs.Default
	}
	path := filepath.Join(dir, StoreName)
	b, err := vfs.ReadFile(fs, path)
	if err != nil {
		return [16]byte{}, fmt.Errorf("layout: read %s: %w", path, err)
	}
	return parseStore(path, b)
}

func parseStore(path string, b []byte) ([16]byte, error) {
	var id [16]byte
	var m storeMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return id, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	if m.Format != StoreFormat {
		return id, fmt.Errorf("%w: %s has format %d, this build reads %d", ErrCorrupt, path, m.Format, StoreFormat)
	}
	raw, err := hex.DecodeString(m.StoreID)
	if err != nil || len(raw) != len(id) {
		return id, fmt.Errorf("%w: %s: store_id %q is not 32 hex characters", ErrCorrupt, path, m.StoreID)
	}
	copy(id[:], raw)
	return id, nil
}

// LoadOrCreateStore returns the store id in dir's STORE file, or, when the
// file does not exist and the directory holds no segments yet, chooses a
// new random id and writes the file atomically. A directory with segments
// but no STORE file is corrupt: a new identity would break the chain's
// genesis.
func LoadOrCreateStore(fs vfs.FS, dir string, haveSegments bool, now time.Time) ([16]byte, error) {
	var id [16]byte
	path := filepath.Join(dir, StoreName)
	b, err := vfs.ReadFile(fs, path)
	switch {
	case err == nil:
		return parseStore(path, b)
	case !errors.Is(err, os.ErrNotExist):
		return id, fmt.Errorf("layout: read %s: %w", path, err)
	case haveSegments:
		return id, fmt.Errorf("%w: %s is missing but segments exist; restore it from a backup", ErrCorrupt, path)
	}
	if _, err := rand.Read(id[:]); err != nil {
		return id, fmt.Errorf("layout: generate store id: %w", err)
	}
	m, _ := json.MarshalIndent(storeMeta{Format: StoreFormat, StoreID: hex.EncodeToString(id[:]), Created: now.UTC()}, "", "  ")
	if err := vfs.WriteFileAtomic(fs, dir, path, append(m, '\n')); err != nil {
		return id, fmt.Errorf("layout: write %s: %w", path, err)
	}
	return id, nil
}
