package server

import (
	"fmt"

	"github.com/vellumlog/vellum/segment"
)

// DefaultCompression is audit.compression when unset.
const DefaultCompression = "s2"

// CompressionCodec returns the segment codec audit.compression names: "s2"
// (the default: 64 KiB S2 blocks, about 155 bytes on disk per ~350-byte
// record, the least append CPU), "s2dict" (S2 blocks of 8 KiB sharing a
// per-segment dictionary: about the same bytes, and a selective query
// decompresses only a few KiB per match, 2-12x faster first pages, for
// ~36% more append CPU and slower sequential reads; segment/FORMAT.md,
// "Dictionary blocks") or "zstd" (about 120 bytes, several times the CPU
// to compress and to read; PERFORMANCE.md has the numbers). Existing segments keep the codec they
// were written with, so the setting can change between restarts.
func (a *AuditConfig) CompressionCodec() (segment.Codec, error) {
	switch a.Compression {
	case "", "s2":
		return segment.CodecS2, nil
	case "s2dict":
		return segment.CodecS2Dict, nil
	case "zstd":
		return segment.CodecZstd, nil
	}
	return 0, fmt.Errorf("%w: audit.compression: %q is not s2, s2dict or zstd", ErrConfig, a.Compression)
}
