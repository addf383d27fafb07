package segment

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

var (
	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder
	// zstdPool holds streaming decoders whose window is bounded, so a
	// hostile frame cannot make one allocate more than that.
	zstdPool = sync.Pool{New: func() any {
		d, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(8<<20))
		return d
	}}
)

func zstdEncoder() *zstd.Encoder {
	zstdOnce.Do(func() {
		// EncodeAll is safe for concurrent use.
		zstdEnc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	})
	return zstdEnc
}

// DictSize is how many raw bytes at the start of an S2-dictionary segment
// make its dictionary (s2.MaxDictSize, the most S2 can refer back to).
const DictSize = 64 << 10

// newDict returns the S2 dictionary of a segment whose raw payload starts
// with prefix (at least DictSize bytes): its first DictSize bytes, with the
// initial repeat offset at their start.
func newDict(prefix []byte) *s2.Dict {
	if len(prefix) < DictSize {
		return nil
	}
	d := make([]byte, DictSize, DictSize+16)
	copy(d, prefix)
	return s2.MakeDictManual(d, 0)
}

// compress appends the compressed form of raw to dst; block codec
// CodecS2Dict compresses with dict.
func compress(c Codec, dst, raw []byte, dict *s2.Dict) []byte {
	switch c {
	case CodecS2Dict:
		n := s2.MaxEncodedLen(len(raw))
		start := len(dst)
		dst = grow(dst, n)
		out := dict.Encode(dst[start:start+n], raw)
		if &out[0] != &dst[start] {
			// Encode allocated: it never should with room for MaxEncodedLen.
			copy(dst[start:], out)
		}
		return dst[:start+len(out)]
	case CodecS2:
		n := s2.MaxEncodedLen(len(raw))
		start := len(dst)
		dst = grow(dst, n)
		out := s2.Encode(dst[start:start+n], raw)
		return dst[:start+len(out)]
	case CodecZstd:
		return zstdEncoder().EncodeAll(raw, dst)
	default:
		return append(dst, raw...)
	}
}

// decompress returns the payload of a block whose header declares rawLen
// bytes, reusing buf when it is large enough. It never allocates more than
// rawLen bytes, which the caller has bounded. Block codec CodecS2Dict
// needs the segment's dictionary, dict (see FORMAT.md, "Dictionary
// blocks").
func decompress(c Codec, buf, stored []byte, rawLen int, dict *s2.Dict) ([]byte, error) {
	switch c {
	case CodecS2Dict:
		if dict == nil {
			return nil, fmt.Errorf("dictionary block before the segment's first %d raw bytes", DictSize)
		}
		n, err := s2.DecodedLen(stored)
		if err != nil {
			return nil, err
		}
		if n != rawLen {
			return nil, fmt.Errorf("s2 payload decodes to %d bytes, header says %d", n, rawLen)
		}
		if cap(buf) < rawLen {
			buf = make([]byte, rawLen)
		}
		return dict.Decode(buf[:rawLen], stored)
	case CodecNone:
		if len(stored) != rawLen {
			return nil, fmt.Errorf("stored %d bytes, raw length %d", len(stored), rawLen)
		}
		return stored, nil
	case CodecS2:
		n, err := s2.DecodedLen(stored)
		if err != nil {
			return nil, err // "s2: corrupt input"
		}
		if n != rawLen {
			return nil, fmt.Errorf("s2 payload decodes to %d bytes, header says %d", n, rawLen)
		}
		if cap(buf) < rawLen {
			buf = make([]byte, rawLen)
		}
		out, err := s2.Decode(buf[:rawLen], stored)
		if err != nil {
			return nil, err
		}
		return out, nil
	case CodecZstd:
		// A zstd payload may hold several frames, or none that declares
		// its size, and DecodeAll would grow its output to whatever they
		// expand to. Stream exactly rawLen bytes instead and require the
		// end right after, so a hostile block allocates nothing more.
		var h zstd.Header
		if err := h.Decode(stored); err != nil {
			return nil, fmt.Errorf("zstd: %v", err)
		}
		if h.HasFCS && h.FrameContentSize != uint64(rawLen) {
			return nil, fmt.Errorf("zstd frame declares %d bytes, the header %d", h.FrameContentSize, rawLen)
		}
		dec := zstdPool.Get().(*zstd.Decoder)
		defer zstdPool.Put(dec)
		if err := dec.Reset(bytes.NewReader(stored)); err != nil {
			return nil, fmt.Errorf("zstd: %v", err)
		}
		if cap(buf) < rawLen {
			buf = make([]byte, rawLen)
		}
		out := buf[:rawLen]
		if _, err := io.ReadFull(dec, out); err != nil {
			return nil, fmt.Errorf("zstd: %v", err)
		}
		var one [1]byte
		if n, _ := dec.Read(one[:]); n != 0 {
			return nil, fmt.Errorf("zstd payload decodes to more than the header's %d bytes", rawLen)
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

// s2DecodePrefix decodes a prefix of S2 block stored (rawLen bytes in all)
// holding at least its first want bytes, into buf (with dict, when not nil:
// a codec 3 block), and reports whether it did: a block whose elements do not parse, or whose prefix would be most
// of it, is left to decompress (which reports what is wrong). It rewrites
// the block's length header in stored for the decoder, and puts it back.
func s2DecodePrefix(buf, stored []byte, rawLen, want int, dict *s2.Dict) ([]byte, bool) {
	hdr, cut, out, ok := s2Cut(stored, want)
	if !ok || out >= rawLen || out > rawLen*7/8 {
		return nil, false
	}
	var saved, v [binary.MaxVarintLen32]byte
	nv := binary.PutUvarint(v[:], uint64(out)) // no longer than the header: out < rawLen
	if nv > hdr {
		return nil, false
	}
	copy(saved[:], stored[:hdr])
	start := hdr - nv
	copy(stored[start:], v[:nv])
	if cap(buf) < out {
		buf = make([]byte, rawLen)
	}
	var payload []byte
	var err error
	if dict != nil {
		payload, err = dict.Decode(buf[:out], stored[start:cut])
	} else {
		payload, err = s2.Decode(buf[:out], stored[start:cut])
	}
	copy(stored, saved[:hdr])
	if err != nil || len(payload) != out {
		return nil, false
	}
	return payload, true
}
