// Package index is Vellum's time index: a B-tree (github.com/google/btree)
// of spans keyed by (first time, first seq), each pointing at a span of a
// segment, with a compact per-span summary (a Bloom filter over tenants,
// users, actions and their dotted prefixes, tools and models, plus an exact
// bit set of outcomes) so that a selective query skips spans without
// reading or decompressing them.
//
//	keys := index.KeysOf(r.TenantID, r.UserID, r.Action, r.Tool.Name, r.Model.Name, r.Outcome.Status)
//	var b index.Builder
//	b.Add(&keys)                 // every record of a span
//	x := index.New()
//	x.Add(&index.Entry{Seg: 3, Span: span, Sum: b.Build()})
//	x.Ascend(since, func(e *index.Entry) bool { ...; return true })
//
// Summaries are stored in sealed segments' footers (section 2, see
// MarshalSummaries), so an index is rebuilt on open from footers without
// reading sealed data. An Index is not safe for concurrent use: the engine
// guards it with its own lock. Summary values are immutable and safe to
// share. Specified in segment/FORMAT.md ("Span summaries").
//
// It also holds record-level postings (FORMAT.md, "Postings", footer
// section 4): for each filter value, the ordinals of a segment's records
// that hold it. A PostingsBuilder collects them as records are added
// (not safe for concurrent use; the engine orders its readers and writer
// with a lock), Marshal encodes the section, ParsePostings reads its key
// table and Postings.Lookup reads one list from the file on demand
// (safe for concurrent use); Intersect combines lists, CountAnd counts
// their common records. A Cache (safe for concurrent use) keeps lists
// decoded for Postings.LookupCached, dense ones as bitmaps (List.Dense),
// and the hashed fields' fingerprints, so that a lookup reads the file
// only for entries whose fingerprint matches:
//
//	var pb index.PostingsBuilder
//	v := index.ValuesOf(&rec)
//	pb.Add(&v)                                // every record, in seq order
//	sec := pb.Marshal()                       // footer section 4
//	p, err := index.ParsePostings(sec, records)
//	l, err := p.Lookup(readAt, index.FieldTenant, "acme")
//	c := index.NewCache(64 << 20)
//	a, err := p.LookupCached(readAt, c, index.FieldAction, "tool.call")
//	n := index.CountAnd([]index.List{l, a}, 0, uint32(records))
package index
