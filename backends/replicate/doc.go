// Package replicate copies the segment engine's records, summarized, into a
// SQL database (SQLite or PostgreSQL) for SQL queries and the fleet view:
// it tails the engine's log and writes each record's summary — every field
// but the tool arguments and attribute values longer than 256 bytes, which
// become their SHA-256 and size — with its seq, MAC and segment. The
// replication cursor moves in the same transaction as the rows, so every
// record lands exactly once and in order.
//
//	r := replicate.Start(eng, func(ctx context.Context) (replicate.Target, error) {
//		return postgres.OpenReplica(ctx, &postgres.ReplicaOptions{DSN: dsn})
//	}, &replicate.Options{Writer: "agent-1"})
//	defer r.Close()
//	lag := r.Lag() // records and seconds behind, and why when the database is down
//
// While the database is down the engine keeps acknowledging; the replicator
// retries with backoff and catches up by itself, holding at most one batch
// in memory. When the engine purges expired segments, Purged (wired to
// engine.Retainer.OnPurge) has the replica remove the rows of the purged
// seqs too, through its append-only-safe path, retried the same way and
// recorded in the database. Check compares a summary row with the segment
// record it came from. A Replicator is safe for concurrent use. Rules: docs/backends.md.
package replicate
