package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// DropPartitionsBefore is the retention primitive: it moves the retention
// horizon forward to t (never back) and detaches and drops every day
// partition of audit_records that ends at or before t, in one transaction,
// returning the partitions dropped. Rows are never deleted one by one (the
// triggers refuse that); a partition that still holds records newer than t
// is kept whole. It needs the schema's owner (the application role may not
// drop anything). Retention (issue 9) calls it with now minus the maximum
// age; partitions holding a tenant under legal hold must be left out by
// choosing t accordingly.
func (r *Replica) DropPartitionsBefore(ctx context.Context, t time.Time) ([]string, error) {
	return r.reader.dropPartitionsBefore(ctx, t)
}

// DropPartitionsBefore: see Replica.DropPartitionsBefore. Every writer's
// rows in those partitions go.
func (s *Store) DropPartitionsBefore(ctx context.Context, t time.Time) ([]string, error) {
	return s.reader.dropPartitionsBefore(ctx, t)
}

func (d *reader) dropPartitionsBefore(ctx context.Context, t time.Time) ([]string, error) {
	var dropped []string
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE audit_horizon SET time = $1 WHERE id = 1 AND time < $1`, t.UTC()); err != nil {
			return classify(err, d.dsn, "move the retention horizon")
		}
		rows, err := tx.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = 'audit_records'::regclass ORDER BY c.relname`)
		if err != nil {
			return classify(err, d.dsn, "list partitions")
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return classify(err, d.dsn, "list partitions")
		}
		for _, name := range names {
			day, err := time.Parse("audit_records_20060102", name)
			if err != nil {
				continue // not one of ours
			}
			if day.Add(24 * time.Hour).After(t) {
				continue
			}
			if _, err := tx.Exec(ctx, fmt.Sprintf(`ALTER TABLE audit_records DETACH PARTITION %s`, pgx.Identifier{name}.Sanitize())); err != nil {
				return classify(err, d.dsn, "detach partition "+name)
			}
			if _, err := tx.Exec(ctx, fmt.Sprintf(`DROP TABLE %s`, pgx.Identifier{name}.Sanitize())); err != nil {
				return classify(err, d.dsn, "drop partition "+name)
			}
			dropped = append(dropped, name)
			d.parts.Delete(day.UnixNano() / dayNS)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return dropped, nil
}
