// Package postgres is the AuditStore on PostgreSQL (jackc/pgx/v5), and the
// database a fleet of Vellum servers replicates into.
//
// Each Store is one writer (a named agent-server replica, WriterID) with its
// own HMAC chain (writer_id, per-writer seq, prev_mac, mac), so many
// processes append to one database concurrently without a global lock;
// concurrent callers of one Store share one transaction (group commit), and
// a group's rows go in with COPY. The table audit_records is range
// partitioned by day on time, append-only by trigger (UPDATE, DELETE and
// TRUNCATE are refused, even for the owner), and an application role
// (vellum_app) may only INSERT and SELECT it. Retention detaches and drops
// whole partitions (DropPartitionsBefore). Schema changes are versioned
// migrations applied on open; a newer schema is refused.
//
//	s, err := postgres.Open(ctx, &postgres.Options{DSN: dsn, WriterID: "agent-1", Keys: keys})
//	seqs, err := s.Append(ctx, recs...)     // this writer's seqs
//	page, err := s.Query(ctx, q)            // this writer's records
//	r, err := postgres.OpenReplica(ctx, &postgres.ReplicaOptions{DSN: dsn})
//	page, err = r.Query(ctx, q)             // every writer's records: the fleet view
//	rep, err := postgres.Verify(ctx, dsn, keys) // every chain; *backends.BadRowError names (writer, seq)
//
// Everything here is safe for concurrent use. Schema, roles and the SQL to
// set them up: docs/backends.md.
package postgres
