package segment

import (
	"fmt"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

var (
	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder
	zstdDec  *zstd.Decoder
)

func zstdCodecs() (*zstd.Encoder, *zstd.Decoder) {
	zstdOnce.Do(func() {
		// EncodeAll and DecodeAll are safe for concurrent use.
		zstdEnc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		zstdDec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<30))
	})
	return zstdEnc, zstdDec
}

// compress appends the compressed form of raw to dst.
func compress(c Codec, dst, raw []byte) []byte {
	switch c {
	case CodecS2:
		n := s2.MaxEncodedLen(len(raw))
		start := len(dst)
		dst = grow(dst, n)
		out := s2.Encode(dst[start:start+n], raw)
		return dst[:start+len(out)]
	case CodecZstd:
		enc, _ := zstdCodecs()
		return enc.EncodeAll(raw, dst)
	default:
		return append(dst, raw...)
	}
}

// decompress returns the payload of a block whose header declares rawLen
// bytes, reusing buf when it is large enough. It never allocates more than
// rawLen bytes, which the caller has bounded.
func decompress(c Codec, buf, stored []byte, rawLen int) ([]byte, error) {
	switch c {
	case CodecNone:
		if len(stored) != rawLen {
			return nil, fmt.Errorf("stored %d bytes, raw length %d", len(stored), rawLen)
		}
		return stored, nil
	case CodecS2:
		n, err := s2.DecodedLen(stored)
		if err != nil {
			return nil, fmt.Errorf("s2: %v", err)
		}
		if n != rawLen {
			return nil, fmt.Errorf("s2 payload decodes to %d bytes, header says %d", n, rawLen)
		}
		if cap(buf) < rawLen {
			buf = make([]byte, rawLen)
		}
		out, err := s2.Decode(buf[:rawLen], stored)
		if err != nil {
			return nil, fmt.Errorf("s2: %v", err)
		}
		return out, nil
	case CodecZstd:
		_, dec := zstdCodecs()
		if cap(buf) < rawLen {
			buf = make([]byte, 0, rawLen)
		}
		// DecodeAll appends and would grow past rawLen on a lying frame;
		// a frame header that declares more is rejected first.
		var h zstd.Header
		if err := h.Decode(stored); err != nil {
			return nil, fmt.Errorf("zstd: %v", err)
		}
		if h.HasFCS && h.FrameContentSize != uint64(rawLen) {
			return nil, fmt.Errorf("zstd payload declares %d bytes, header says %d", h.FrameContentSize, rawLen)
		}
		out, err := dec.DecodeAll(stored, buf[:0])
		if err != nil {
			return nil, fmt.Errorf("zstd: %v", err)
		}
		if len(out) != rawLen {
			return nil, fmt.Errorf("zstd payload decoded to %d bytes, header says %d", len(out), rawLen)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown codec %d", c)
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), 2*cap(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}
