package layout

import (
	"encoding/hex"
	"fmt"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/segment"
)

// End is where a segment's part of the chain ends: the next segment's
// header must start at LastSeq+1 and chain from LastMAC.
type End struct {
	Number  uint64
	LastSeq uint64 // the header's first seq - 1 when the segment is empty
	LastMAC vellum.MAC
}

// SealedEnd returns the end of a sealed segment from its header and footer.
func SealedEnd(h *segment.Header, ft *segment.Footer) End {
	last := ft.LastSeq
	if ft.Count == 0 {
		last = h.FirstSeq - 1
	}
	return End{Number: h.Number, LastSeq: last, LastMAC: ft.LastMAC}
}

// StateEnd returns the end of a segment's committed records as a scan or a
// writer reports them (segment.State already says first seq - 1 and the
// header's prev MAC when it is empty).
func StateEnd(h *segment.Header, st segment.State) End {
	return End{Number: h.Number, LastSeq: st.LastSeq, LastMAC: st.LastMAC}
}

// CheckLink checks the header h of the file for segment num against the
// store storeID and against prev, the end of the segment before it (nil
// when there is none: then a segment numbered 1 must start the chain at
// seq 1 from the store's genesis value, and a later one follows segments
// that retention removed, which nothing here can check). It returns every
// field that does not link, in header order, or nil.
func CheckLink(num uint64, storeID [16]byte, h *segment.Header, prev *End) []*LinkError {
	var errs []*LinkError
	bad := func(field string, off int64, expected, found, reason string) {
		errs = append(errs, &LinkError{Segment: num, Field: field, Offset: off, Expected: expected, Found: found, Reason: reason})
	}
	if h.Number != num {
		bad(FieldNumber, segment.HeaderNumberOffset, fmt.Sprintf("segment %d", num), fmt.Sprintf("segment %d", h.Number),
			"the header names another segment number than the file (segments renamed, swapped or moved)")
	}
	if h.StoreID != storeID {
		bad(FieldStoreID, segment.HeaderStoreIDOffset, "store "+hex.EncodeToString(storeID[:]), "store "+hex.EncodeToString(h.StoreID[:]),
			"the segment belongs to another store")
	}
	switch {
	case prev != nil:
		if h.FirstSeq != prev.LastSeq+1 {
			bad(FieldFirstSeq, segment.HeaderFirstSeqOffset, fmt.Sprintf("first seq %d", prev.LastSeq+1), fmt.Sprintf("first seq %d", h.FirstSeq),
				fmt.Sprintf("seqs are not contiguous with segment %d, which ends at seq %d (records removed, inserted or reordered)", prev.Number, prev.LastSeq))
		}
		if h.PrevMAC != prev.LastMAC {
			bad(FieldPrevMAC, segment.HeaderPrevMACOffset, prev.LastMAC.String(), h.PrevMAC.String(),
				fmt.Sprintf("the header's prev MAC is not the last MAC of segment %d (the chain is broken between segments)", prev.Number))
		}
	case num == 1:
		if g := chain.Genesis(storeID, h.KeyID); h.PrevMAC != g {
			bad(FieldPrevMAC, segment.HeaderPrevMACOffset, g.String(), h.PrevMAC.String(),
				"the first segment's prev MAC is not the store's genesis value")
		}
		if h.FirstSeq != 1 {
			bad(FieldFirstSeq, segment.HeaderFirstSeqOffset, "first seq 1", fmt.Sprintf("first seq %d", h.FirstSeq),
				"the first segment does not start at seq 1")
		}
	}
	return errs
}
