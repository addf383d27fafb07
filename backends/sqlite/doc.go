// Package sqlite is the AuditStore on one SQLite file (mattn/go-sqlite3):
// WAL journal, synchronous=FULL, so an acknowledged record has been
// fsync'd. Records are HMAC-chained by the same chain package as the engine
// (seq, prev_mac, mac per row); triggers make the table audit_records
// append-only (UPDATE refused, DELETE refused above a forward-only retention
// horizon), and the schema is versioned and migrated on open. It also
// receives the engine's replicated summaries (OpenReplica).
//
//	s, err := sqlite.Open("/var/lib/vellum/audit.db", &sqlite.Options{Keys: keys})
//	defer s.Close()
//	seqs, err := s.Append(ctx, recs...)   // one transaction for all concurrent callers
//	page, err := s.Query(ctx, q)          // the same records the engine would return
//	err = s.Verify(ctx, keys)             // walks the chain; *backends.BadRowError names the row
//
// A Store is safe for concurrent use: appends are group-committed by one
// goroutine, reads run on their own connections. One process should write a
// file at a time (SQLite allows it, but the chain is kept in memory).
// Schema and rules: docs/backends.md.
package sqlite
