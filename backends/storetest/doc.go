// Package storetest is the conformance suite of the AuditStore contract
// (backends.Store): one set of cases that the engine, SQLite, PostgreSQL
// and the null store all run, so that the same calls give the same answers
// from every store.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, env storetest.Env) backends.Store {
//			s, err := sqlite.Open(filepath.Join(t.TempDir(), "a.db"), &sqlite.Options{Keys: env.Keys, Now: env.Now})
//			...
//		}, storetest.Caps{})
//	}
//
// The cases: round trip of every field, the HMAC chain, dedup of a retried
// (tenant, event_id), every filter and the action prefix, both orders,
// cursor paging while appends continue, since/until edges, tenant scoping,
// Get of a missing seq, and errors for bad input. Dataset, Queries and Oracle give
// the records, the queries and their exact answers that every store must
// agree on.
//
// Helpers here are safe for concurrent use; each test opens its own store.
package storetest
