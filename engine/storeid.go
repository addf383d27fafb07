package engine

import (
	"encoding/hex"
	"os"
	"time"

	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/vfs"
)

// InitStore returns the store id of the data directory dir, creating its
// identity (the STORE file, as Open would) when it has none yet, so that a
// caller can name things after the store before opening it: vellum serve
// names the checkpoint signing key it generates after the store's origin,
// as C2SP tlog-checkpoint recommends. dir must exist.
func InitStore(dir string) ([16]byte, error) {
	var nums []uint64
	if _, err := os.Stat(layout.SegmentsPath(dir)); err == nil {
		if nums, err = layout.ListSegments(vfs.Default, dir); err != nil {
			return [16]byte{}, err
		}
	}
	id, err := layout.LoadOrCreateStore(vfs.Default, dir, len(nums) > 0, time.Now())
	return id, corruptOr(err)
}

// DefaultOrigin returns the checkpoint origin of a store whose
// Options.Origin is empty: "vellum/" and the store id in hex.
func DefaultOrigin(id [16]byte) string { return "vellum/" + hex.EncodeToString(id[:]) }
