// Package query defines the query over the audit log that the engine, the
// HTTP server and the command line share: the filters, their exact matching
// predicate, URL parameter parsing, and the opaque, HMAC-tagged paging cursor.
// It is pure: no I/O, no context, no clock.
//
//	vals, _ := url.ParseQuery("tenant_id=acme&action=approval.&order=desc")
//	q, cursor, err := query.ParseValues(vals) // q is normalized; err is a *ParamError
//	if cursor != "" {
//		c, err := query.DecodeCursor(key, &q, cursor) // err wraps ErrBadCursor
//		c.Apply(&q)                                    // q.After and q.MaxSeq
//	} else {
//		q.MaxSeq = store.LastSeq() // the first page pins the end of the log
//	}
//	// ... the engine returns a page of records matching q.Match, in q's order ...
//	next := query.EncodeCursor(key, &q, query.PositionOf(&last))
//
// A cursor names the (receipt time, seq) of the last record of a page, the
// order, the high-water seq (the log's last seq at the first page), and
// carries an HMAC-SHA256 tag (chain.Key.Sum) over those bytes and
// the query's Fingerprint, so a forged or altered cursor, or one reused with
// other filters or another order, is rejected. Pass a key derived for this
// purpose alone: key.Derive(query.CursorKeyLabel). The cursor layout is
// documented on EncodeCursor and is a wire format: do not change it.
//
// Paging is stable and bounded while appends continue: a record's (time,
// seq) never changes and new records get larger ones, so continuing
// strictly after the last position seen yields no gap and no duplicate,
// and the high-water seq keeps every page to the log as it stood at the
// first page. A query paged with its cursor never returns records appended
// after its first page, so it always ends, even when every page appends a
// record it would match (the server's audit.query records).
//
// A Query is plain data: safe to share between goroutines as long as nobody
// mutates it. Normalize mutates its receiver; every other function is safe
// for concurrent use.
package query
