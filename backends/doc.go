// Package backends defines the AuditStore contract that every Vellum store
// fulfils — the segment engine, SQLite, PostgreSQL and the null store — and
// the sentinel errors they share, so the server, the stores and the
// conformance suite (backends/storetest) agree on one meaning of Append,
// Get and Query without importing one another.
//
//	var s backends.Store = eng // *engine.Engine, *sqlite.Store, *postgres.Store, *null.Store
//	seqs, err := s.Append(ctx, recs...)
//	if errors.Is(err, backends.ErrTooLarge) || errors.Is(err, backends.ErrInvalid) { ... the caller's fault ... }
//	rec, err := s.Get(ctx, seqs[0])            // errors.Is(err, backends.ErrNotFound) when absent
//	page, err := s.Query(ctx, query.Query{...}) // the semantics of package query, exactly
//
// Every implementation is safe for concurrent use. The packages below this
// one each hold one store (null, sqlite, postgres), the replication of the
// engine's records into a SQL database (replicate), and the suite every
// store must pass (storetest). The SQL schema, the append-only rules the
// databases enforce and the roles are specified in docs/backends.md.
package backends
