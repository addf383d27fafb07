package verify

import (
	"fmt"
	"io"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/merkle"
)

// ExportBundleFunc is ExportBundle for the records keep accepts (nil: all):
// a bundle of some records of a seq range, such as one tenant's approvals
// (vellum export --proof with query filters). Each record's proof stands
// on its own, so a bundle need not hold a contiguous range.
func ExportBundleFunc(s *Store, w io.Writer, cp checkpoint.Signed, from, to uint64, keep func(*vellum.Record) bool) (int, error) {
	if to == 0 || to > cp.Size {
		to = cp.Size
	}
	from = max(from, s.FirstSeq())
	src := s.Source()
	root, err := merkle.RootAt(src, cp.Size)
	if err != nil {
		return 0, fmt.Errorf("verify: tree at the checkpoint's size %d: %w", cp.Size, err)
	}
	if root != cp.Root {
		return 0, fmt.Errorf("verify: the store does not match its checkpoint of size %d: %w", cp.Size, &merkle.RootMismatchError{Expected: cp.Root, Calculated: root})
	}
	bw, err := NewBundleWriter(w, cp)
	if err != nil {
		return 0, err
	}
	n := 0
	for sr, err := range s.Records(from, to) {
		if err != nil {
			return n, err
		}
		if keep != nil && !keep(&sr.Record) {
			continue
		}
		p, err := merkle.ProveInclusion(src, sr.Record.Seq-1, cp.Size)
		if err != nil {
			return n, fmt.Errorf("verify: proof of seq %d: %w", sr.Record.Seq, err)
		}
		if err := bw.Add(sr.Record, sr.Encoding, p); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
