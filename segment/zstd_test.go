package segment

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestZstdBombBounded feeds a block whose zstd payload expands far past the
// raw length its header declares: decoding must fail without inflating it.
func TestZstdBombBounded(t *testing.T) {
	enc, _ := zstd.NewWriter(nil)
	bomb := enc.EncodeAll(bytes.Repeat([]byte{0}, 64<<20), nil)
	bomb = append(bomb, bomb...) // two frames
	if _, err := decompress(CodecZstd, nil, bomb, 95, nil); err == nil {
		t.Fatal("a payload larger than its raw length was accepted")
	}
	// Without a declared size in the frame, the stream stops at the raw
	// length: memory stays bounded by the decoder's window.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	decompress(CodecZstd, nil, bomb, 95, nil)
	runtime.ReadMemStats(&after)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 32<<20 {
		t.Fatalf("decoding allocated %d MiB", grown>>20)
	}
}

// TestZstdLargeBlockReadable: a block larger than the readers' 8 MiB
// window bound (block sizes go up to 32 MiB) must still be written with a
// window they accept.
func TestZstdLargeBlockReadable(t *testing.T) {
	raw := make([]byte, 20<<20)
	for i := range raw {
		raw[i] = byte(i*7 + i>>13)
	}
	stored := compress(CodecZstd, nil, raw, nil)
	out, err := decompress(CodecZstd, nil, stored, len(raw), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, raw) {
		t.Fatal("round trip changed the block")
	}
}
