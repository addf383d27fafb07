package bench

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vellumlog/vellum/backends/postgres"
	"github.com/vellumlog/vellum/backends/postgres/pgtest"
	"github.com/vellumlog/vellum/backends/replicate"
)

// ceilingBatch is the rows per COPY in BenchmarkReplicateCeiling, the
// replicator's default batch.
const ceilingBatch = replicate.DefaultBatchSize

// ceilingColumns are the columns the replica's COPY fills (all but row_id).
const ceilingColumns = `writer_id, seq, time, time_ns, event_id, event_time_ns, tenant_id, user_id, service, auth_mode, action,
	tool_name, tool_call_id, tool_arguments, tool_arguments_sha256, tool_arguments_size, tool_is_error, tool_duration_ns,
	model_name, model_provider, model_finish_reason, model_input_tokens, model_output_tokens,
	agent, session_id, trace_id, request_id, outcome, outcome_reason, outcome_rule_id, outcome_approver, outcome_mode,
	attributes, attributes_hashed, redactions, key_id, prev_mac, mac, segment, summary`

// replicaCopies returns the binary COPY data of the first n replicated
// rows, in batches of ceilingBatch: the exact rows the replicator sends
// for the shared engine's records, replicated once (untimed) into a
// schema of their own and read back with COPY TO.
func replicaCopies(b *testing.B, n int) [][]byte {
	e := replEngine(b, n)
	_, dsn := pgtest.Schema(b)
	open := func(ctx context.Context) (replicate.Target, error) {
		return postgres.OpenReplica(ctx, &postgres.ReplicaOptions{DSN: dsn, Logger: quiet()})
	}
	r := replicate.Start(e, open, &replicate.Options{Writer: "bench", Logger: quiet(), FlushInterval: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	err := r.WaitFor(ctx, uint64(n))
	r.Close()
	if err != nil {
		b.Fatal(err)
	}
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	var out [][]byte
	for from := 1; from <= n; from += ceilingBatch {
		var buf bytes.Buffer
		q := fmt.Sprintf(`COPY (SELECT %s FROM audit_records WHERE seq BETWEEN %d AND %d ORDER BY seq) TO STDOUT (FORMAT binary)`,
			ceilingColumns, from, min(n, from+ceilingBatch-1))
		if _, err := c.PgConn().CopyTo(ctx, &buf, q); err != nil {
			b.Fatal(err)
		}
		out = append(out, buf.Bytes())
	}
	return out
}

// BenchmarkReplicateCeiling is what PostgreSQL itself takes to store the
// replicated rows, with no replicator: the binary COPY data the
// replicator sends (prepared before the timer), sent in batches of 10,000
// rows, each batch in its own transaction with synchronous_commit off, as
// the replicator does. table=replica is the real schema (day partitions,
// the row_id sequence, the primary key and the time and tenant/action
// indexes); table=bare an unpartitioned table of the same columns without
// row_id or any index; table=replica-no-tenant-index the real schema
// without its (tenant_id, action, time_ns) index, the one that serves the
// query comparison. Its rate is the ceiling BenchmarkReplicate can reach
// on the same machine.
func BenchmarkReplicateCeiling(b *testing.B) {
	for _, table := range []string{"replica", "replica-no-tenant-index", "bare"} {
		b.Run("table="+table, func(b *testing.B) {
			copies := replicaCopies(b, b.N)
			_, dsn := pgtest.Schema(b)
			r, err := postgres.OpenReplica(context.Background(), &postgres.ReplicaOptions{DSN: dsn, Logger: quiet()})
			if err != nil {
				b.Fatal(err)
			}
			r.Close()
			ctx := context.Background()
			c, err := pgx.Connect(ctx, dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close(ctx)
			target := "audit_records"
			setup := []string{
				// The day partitions of the shared engine's records (its
				// clock is the wall clock: today, and tomorrow in case it
				// ran over midnight).
				`SELECT audit_ensure_partition(now())`, `SELECT audit_ensure_partition(now() + interval '1 day')`,
				`SELECT audit_ensure_partition(now() - interval '1 day')`,
			}
			switch table {
			case "replica-no-tenant-index":
				setup = append(setup, `DROP INDEX audit_records_tenant_action`)
			case "bare":
				target = "bare"
				setup = append(setup, `CREATE TABLE bare (LIKE audit_records)`, `ALTER TABLE bare DROP COLUMN row_id`)
			}
			for _, q := range setup {
				if _, err := c.Exec(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
			copySQL := "COPY " + target + " (" + strings.ReplaceAll(ceilingColumns, "\n\t", " ") + ") FROM STDIN (FORMAT binary)"
			b.SetBytes(recordBytes)
			b.ResetTimer()
			start := time.Now()
			rows := int64(0)
			for _, data := range copies {
				err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
						return err
					}
					tag, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(data), copySQL)
					rows += tag.RowsAffected()
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			el := time.Since(start)
			b.StopTimer()
			if rows != int64(b.N) {
				b.Fatalf("copied %d rows, want %d", rows, b.N)
			}
			b.ReportMetric(float64(rows)/el.Seconds(), "records/s")
		})
	}
}
