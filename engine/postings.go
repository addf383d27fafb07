package engine

// Record-level postings (segment/FORMAT.md, "Postings"; package index):
// the active segment's are built in memory as its records become durable,
// written into its footer (section 4) at seal and rebuilt from its records
// on open; a sealed segment's are parsed from its footer on open, and only
// their key tables stay in memory: lists are read from the file when a
// query needs them (plan.go).

import (
	"bytes"
	"log/slog"
	"maps"

	"github.com/vellumlog/vellum/index"
	"github.com/vellumlog/vellum/segment"
)

// addPostings adds the postings values of a durable batch's new records,
// which start at seq first, to the active segment seg's postings. Flush
// loop only; it takes mu, since queries read the builder.
func (ix *indexer) addPostings(seg *segInfo, first uint64, vals []*index.Values) {
	if len(vals) == 0 {
		return
	}
	if ix.noPostings {
		return
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.post == nil {
		return
	}
	if want := seg.hdr.FirstSeq + uint64(ix.post.Len()); first != want {
		// Cannot happen unless a bug: without postings, queries read the
		// segment's spans, which is always correct, only slower.
		ix.log.Warn("active segment postings out of step; queries will read its spans", slog.String("segment", seg.path),
			slog.Uint64("seq", first), slog.Uint64("expected", want))
		ix.post = nil
		return
	}
	for _, v := range vals {
		ix.post.Add(v)
	}
}

// postingsSection returns footer section 4 for the active segment's seal,
// or nil when its postings do not cover exactly its count records. Flush
// loop only (the one writer of the builder).
func (ix *indexer) postingsSection(count uint64) []byte {
	if ix.noPostings || ix.post == nil || uint64(ix.post.Len()) != count {
		return nil
	}
	return ix.post.Marshal()
}

// attachPostings parses a sealed segment's section 4 into si.post, and
// replaces si.footer by a copy without it whose other sections no longer
// share the footer's buffer: the postings' lists stay on disk. A section
// that does not parse is logged and left unused: queries then read the
// segment's spans (vellum verify reports it).
func attachPostings(si *segInfo, log *slog.Logger) {
	ft := *si.footer
	sec, ok := ft.Sections[index.SectionPostings]
	if ok {
		p, err := index.ParsePostings(sec, ft.Count)
		if err != nil {
			log.Warn("segment postings unusable; queries will read its spans", slog.String("segment", si.path), slog.String("error", err.Error()))
		} else {
			p.SetBase(ft.SectionOffsets[index.SectionPostings])
			si.post = p
		}
	}
	ft.Sections = make(map[uint16][]byte, len(si.footer.Sections))
	for typ, b := range si.footer.Sections {
		if typ != index.SectionPostings {
			ft.Sections[typ] = bytes.Clone(b)
		}
	}
	ft.SectionOffsets = maps.Clone(si.footer.SectionOffsets)
	si.footer = &ft
	si.mu.Lock()
	if si.reader != nil {
		si.reader.DropSections() // its footer buffer holds the postings
	}
	si.mu.Unlock()
}

// readAt returns a ReadAt on the segment's file, for its postings.
func (si *segInfo) readAt() index.ReadAt {
	return func(b []byte, off int64) error {
		r, err := si.open()
		if err != nil {
			return err
		}
		return r.ReadAt(b, off)
	}
}

// readBlocks reads the blocks of span sp that hold seqs, with sc's buffers.
func (si *segInfo) readBlocks(sp segment.Span, seqs []uint64, sc *segment.Scratch) ([]segment.Entry, error) {
	r, err := si.open()
	if err != nil {
		return nil, err
	}
	entries, err := r.ReadBlocks(sp, seqs, sc)
	if err != nil {
		return nil, corruptOr(err)
	}
	return entries, nil
}
