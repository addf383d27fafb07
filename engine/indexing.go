package engine

import (
	"log/slog"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/index"
	"github.com/vellumlog/vellum/segment"
)

// indexState is the writer goroutine's part of the time index: the summary
// keys of active-segment records whose span is still open, and the
// summaries of the active segment's closed spans (written into its footer at
// seal).
type indexState struct {
	pend      []index.Keys // pend[i] belongs to seq pendFirst+i
	pendFirst uint64
	sums      []index.Summary
}

// noteKeys records the summary keys of a durable record of the active
// segment.
func (ix *indexState) noteKeys(seq uint64, k *index.Keys) {
	if len(ix.pend) == 0 {
		ix.pendFirst = seq
	}
	ix.pend = append(ix.pend, *k)
}

// summarize builds the summary of span sp from the pending keys, which must
// start at its first seq, and drops them.
func (ix *indexState) summarize(sp segment.Span) index.Summary {
	n := int(sp.Count)
	if len(ix.pend) < n || ix.pendFirst != sp.FirstSeq {
		// Keys missing (cannot happen unless a bug): an unknown summary
		// is always correct, only slower.
		ix.pend, ix.pendFirst = nil, sp.LastSeq()+1
		return index.Summary{}
	}
	var b index.Builder
	for i := range n {
		b.Add(&ix.pend[i])
	}
	ix.pend = ix.pend[n:]
	ix.pendFirst += uint64(n)
	if cap(ix.pend) > 4*len(ix.pend)+1024 {
		ix.pend = append([]index.Keys(nil), ix.pend...)
	}
	return b.Build()
}

// indexClosedSpans summarizes the active segment's spans that closed since
// the last call and adds them to the index. The caller holds imu.
func (e *Engine) indexClosedSpans(closed []segment.Span) {
	for j := len(e.ix.sums); j < len(closed); j++ {
		sum := e.ix.summarize(closed[j])
		e.ix.sums = append(e.ix.sums, sum)
		e.idx.Add(&index.Entry{Seg: e.active.num, Span: closed[j], Sum: sum})
	}
}

// sealActive seals the active segment with its span summaries in the
// footer and indexes its last span.
func (e *Engine) sealActive() (*segment.Footer, error) {
	closed, open, hasOpen := e.w.SpanView()
	e.imu.Lock()
	e.indexClosedSpans(closed)
	e.imu.Unlock()
	sums := e.ix.sums
	var last index.Summary
	if hasOpen {
		last = e.ix.summarize(open)
		sums = append(sums[:len(sums):len(sums)], last)
	}
	so := &segment.SealOptions{Sections: map[uint16][]byte{segment.SectionSummaries: index.MarshalSummaries(sums)}}
	if err := e.treeSeal(so); err != nil { // Merkle root and section (merkle.go)
		return nil, err
	}
	ft, err := e.w.Seal(so)
	if err != nil {
		return nil, err
	}
	if hasOpen {
		e.imu.Lock()
		e.idx.Add(&index.Entry{Seg: e.active.num, Span: ft.Spans[len(ft.Spans)-1], Sum: last})
		e.imu.Unlock()
	}
	e.ix = indexState{}
	return ft, nil
}

// indexSealed adds a sealed segment's spans, with the summaries from its
// footer, to the index. A footer without usable summaries is indexed with
// unknown summaries: queries then read its spans.
func (e *Engine) indexSealed(si *segInfo) {
	spans := si.footer.Spans
	var sums []index.Summary
	if sec, ok := si.footer.Sections[segment.SectionSummaries]; ok {
		var err error
		if sums, err = index.UnmarshalSummaries(sec, len(spans)); err != nil {
			e.log.Warn("segment summaries unusable; queries will read its spans", slog.String("segment", si.path), slog.String("error", err.Error()))
			sums = nil
		}
	}
	for i, sp := range spans {
		en := &index.Entry{Seg: si.num, Span: sp}
		if sums != nil {
			en.Sum = sums[i]
		}
		e.idx.Add(en)
	}
}

// keysOf computes a record's summary keys on the appending goroutine.
func keysOf(r *vellum.Record) index.Keys {
	return index.KeysOf(r.TenantID, r.UserID, r.Action, r.Tool.Name, r.Model.Name, r.Outcome.Status)
}
