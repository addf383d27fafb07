// Package sqlrec maps audit records to the rows of the SQL table
// audit_records and back, summarizes records for replication, and turns a
// query.Query into SQL. The SQLite and PostgreSQL stores and the replicator
// share it, so both databases hold the same columns with the same meaning
// (docs/backends.md) and answer a query with the same records.
//
// It is pure (no I/O) and safe for concurrent use.
package sqlrec
