// Package segment reads and writes Vellum segment files: the append-only,
// block-compressed, CRC-framed files that hold the audit log's records and
// their chain MACs. It knows framing, compression and recovery of a torn
// tail; it does not compute MACs (package chain) or decide when to rotate
// (package engine).
//
//	w, err := segment.Create(fs, path, segment.Header{Number: 1, ...}, nil)
//	w.Add(seq, unixNano, encoded, mac) // buffer one record
//	err = w.Commit()                    // write the batch + commit frame, fdatasync
//	footer, err := w.Seal(&segment.SealOptions{MerkleRoot: &root}) // footer + trailer, fdatasync, chmod 0444
//
//	r, err := segment.Open(fs, path, nil)
//	entries, err := r.ReadSpan(r.Footer().Spans[0]) // random access by span
//	sr, err := segment.Scan(fs, path, nil, func(e segment.Entry) error { ... }) // everything, in order
//	sv, err := segment.Salvage(path, b, nil, fn) // a damaged segment: what can still be read, and where the damage is
//
// A Writer is not safe for concurrent use, with one exception: its buffered
// side (Add, Tip, Discard, Flush, FlushedSize) may run on one goroutine
// while another runs Sync for the previously flushed batch; State, Spans and
// SpanView belong to the goroutine that syncs (see Writer). A Reader is
// safe for concurrent use; it reads with ReadAt and keeps no cursor. The
// format is specified in FORMAT.md in this directory.
package segment
