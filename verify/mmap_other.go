//go:build !linux

package verify

import "github.com/vellumlog/vellum/vfs"

// mapFile maps segments on Linux only (see mmap_linux.go); elsewhere the
// verifier reads each file into a reused buffer.
func mapFile(vfs.File, int64) ([]byte, func(), bool) { return nil, nil, false }

// prefetchFile does nothing where segments are not mapped.
func prefetchFile(vfs.File, int64) {}
