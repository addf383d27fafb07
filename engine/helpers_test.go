package engine

import (
	"encoding/binary"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// requireDictBlocks fails t unless some sealed segment in dir holds
// dictionary blocks (block codec 3) and a block index (footer section 5):
// a test meant to cover them did.
func requireDictBlocks(t *testing.T, dir string) {
	t.Helper()
	nums, err := layout.ListSegments(nil, dir)
	if err != nil {
		t.Error(err)
		return
	}
	for _, n := range nums {
		r, err := segment.Open(vfs.Default, layout.SegmentPath(dir, n), nil)
		if err != nil {
			t.Error(err)
			return
		}
		ft := r.Footer()
		r.Close()
		if ft == nil || ft.Sections[segment.SectionBlocks] == nil {
			continue
		}
		b, err := os.ReadFile(layout.SegmentPath(dir, n))
		if err != nil {
			t.Error(err)
			return
		}
		for off := segment.HeaderSize; off < int(ft.Offset); {
			switch b[off] {
			case 'C':
				off += segment.CommitSize
			case 'B':
				if segment.Codec(b[off+1]) == segment.CodecS2Dict {
					return
				}
				off += segment.BlockHeaderSize + int(binary.LittleEndian.Uint32(b[off+36:]))
			default:
				t.Errorf("segment %d: frame %#x at %d", n, b[off], off)
				return
			}
		}
	}
	t.Error("no sealed segment holds dictionary blocks and a block index")
}
