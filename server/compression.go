package server

import (
	"fmt"

	"github.com/vellumlog/vellum/segment"
)

// DefaultCompression is audit.compression when unset.
const DefaultCompression = "s2"

// CompressionCodec returns the segment codec audit.compression names: "s2"
// (the default: S2 blocks of 8 KiB sharing a per-segment dictionary, about
// 155 bytes on disk per ~350-byte record, and a selective query
// decompresses only a few KiB per match; segment/FORMAT.md, "Dictionary
// blocks"), "s2-64k" (64 KiB S2 blocks without a dictionary, the layout
// before: the same bytes, less append CPU, slower selective reads) or
// "zstd" (about 120 bytes, several times the CPU to compress and to read;
// PERFORMANCE.md has the numbers). Existing segments keep the codec they
// were written with, so the setting can change between restarts.
func (a *AuditConfig) CompressionCodec() (segment.Codec, error) {
	switch a.Compression {
	case "", "s2":
		return segment.CodecS2Dict, nil
	case "s2-64k":
		return segment.CodecS2, nil
	case "zstd":
		return segment.CodecZstd, nil
	}
	return 0, fmt.Errorf("%w: audit.compression: %q is not s2, s2-64k or zstd", ErrConfig, a.Compression)
}
