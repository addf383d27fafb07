package segment

import (
	"bytes"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vellumlog/vellum/vfs"
)

// TestReadBlocksAndSectionOffsets: ReadBlocks returns exactly the entries
// of the blocks holding the seqs asked for, as ReadSpan has them, and a
// sealed footer says where each extra section's bytes lie in the file.
func TestReadBlocksAndSectionOffsets(t *testing.T) {
	fs := vfs.Default
	path := filepath.Join(t.TempDir(), "seg.vseg")
	g := newGen(t)
	// Small batches of small blocks: spans of many blocks.
	w := writeBatches(t, fs, path, g, &Options{BlockSize: 4 << 10}, 3, 1, 7, 2, 9, 1, 1, 4, 30, 2, 5)
	sec := []byte("section four bytes")
	ft, err := w.Seal(&SealOptions{Sections: map[uint16][]byte{4: sec, 7: []byte("x")}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(fs, path, &Options{BlockSize: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, f := range []*Footer{ft, r.Footer()} {
		b := make([]byte, len(sec))
		if err := r.ReadAt(b, f.SectionOffsets[4]); err != nil || !bytes.Equal(b, sec) {
			t.Fatalf("section 4 at %d reads %q (%v)", f.SectionOffsets[4], b, err)
		}
	}
	for _, sp := range r.Footer().Spans {
		all, err := r.ReadSpan(sp)
		if err != nil {
			t.Fatal(err)
		}
		all = slices.Clone(all)
		for _, want := range [][]uint64{{sp.FirstSeq}, {sp.LastSeq()}, {sp.FirstSeq, sp.LastSeq()}, {sp.FirstSeq + uint64(sp.Count)/2}} {
			got, err := r.ReadBlocks(sp, want, &Scratch{})
			if err != nil {
				t.Fatal(err)
			}
			// Every wanted seq is there, and the entries are ReadSpan's.
			for _, s := range want {
				i := slices.IndexFunc(got, func(e Entry) bool { return e.Seq == s })
				if i < 0 {
					t.Fatalf("span %d: seq %d missing", sp.FirstSeq, s)
				}
				j := int(s - sp.FirstSeq)
				if !bytes.Equal(got[i].Record, all[j].Record) || got[i].MAC != all[j].MAC || got[i].PrevMAC != all[j].PrevMAC {
					t.Fatalf("seq %d differs from ReadSpan", s)
				}
			}
			if len(got) > len(all) {
				t.Fatal("more entries than the span")
			}
		}
	}
}
