package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/backends/internal/sqlrec"
	"github.com/vellumlog/vellum/query"
)

// ReplicaOptions configure a Replica. DSN is required.
type ReplicaOptions struct {
	DSN string
	// MaxConns bounds the connection pool; default 4.
	MaxConns int32
	Logger   *slog.Logger
}

// Replica is a PostgreSQL database that receives the record summaries of
// one or more engines (each a writer, package replicate) and answers
// queries over every writer's rows: the fleet view. It is safe for
// concurrent use.
type Replica struct {
	*reader
	log    *slog.Logger
	closed atomic.Bool
}

// OpenReplica connects and applies migrations.
func OpenReplica(ctx context.Context, opts *ReplicaOptions) (*Replica, error) {
	var o ReplicaOptions
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 4
	}
	log := o.Logger.With(slog.String("component", "postgres-replica"))
	pool, err := connect(ctx, o.DSN, o.MaxConns, log)
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, pool, o.DSN); err != nil {
		pool.Close()
		return nil, err
	}
	return &Replica{reader: &reader{dsn: o.DSN, pool: pool}, log: log}, nil
}

// Cursor returns how far the database holds writer's records, registering
// writer as replicating the engine with store id source on first use. A
// writer id already used by a primary store or by another engine is
// refused: each server of a fleet needs its own.
func (r *Replica) Cursor(ctx context.Context, writer string, source [16]byte) (sqlrec.Cursor, error) {
	var cur sqlrec.Cursor
	if writer == "" || len(writer) > maxWriterID {
		return cur, fmt.Errorf("postgres: a replicated writer needs an id of 1 to %d bytes (audit.replicate.writer_id)", maxWriterID)
	}
	src := hex.EncodeToString(source[:])
	if _, err := r.pool.Exec(ctx, `INSERT INTO audit_writers (writer_id, kind, source) VALUES ($1, 'replica', $2) ON CONFLICT DO NOTHING`, writer, src); err != nil {
		return cur, classify(err, r.dsn, "register replicated writer "+writer)
	}
	var kind, s string
	var seq, t, purged int64
	var mac []byte
	if err := r.pool.QueryRow(ctx, `SELECT kind, source, last_seq, last_mac, last_time, purged_seq FROM audit_writers WHERE writer_id = $1`, writer).
		Scan(&kind, &s, &seq, &mac, &t, &purged); err != nil {
		return cur, classify(err, r.dsn, "read the replication cursor of "+writer)
	}
	if kind != "replica" {
		return cur, fmt.Errorf("%w: postgres %s: writer id %q is a primary store's; give this server's replication another writer id", backends.ErrSchema, Redact(r.dsn), writer)
	}
	if s != src {
		return cur, fmt.Errorf("%w: postgres %s: writer id %q already replicates engine %s, and this engine is %s; each server of a fleet needs its own writer id",
			backends.ErrSchema, Redact(r.dsn), writer, s, src)
	}
	cur.Seq, cur.Time, cur.Purged = uint64(seq), t, uint64(purged)
	copy(cur.MAC[:], mac)
	return cur, nil
}

// Purge applies an engine purge (engine.Retainer.OnPurge) to writer's
// rows: every row with seq at or below through goes, through the schema's
// audit_purge function (the application role may call it, and has no other
// way to remove a row). It records the writer's purge horizon
// (audit_writers.purged_seq, forward only, never past the writer's
// cursor), drops the day partitions that end at or before the newest
// purged row and hold no row above its writer's horizon — any writer's: a
// fleet's partitions are shared — and deletes the writer's other purged
// rows (those in a partition straddling the boundary, or shared with a
// writer not purged as far), in one transaction. Applying a purge again
// changes nothing.
func (r *Replica) Purge(ctx context.Context, writer string, through uint64) error {
	if r.closed.Load() {
		return fmt.Errorf("%w: postgres replica", backends.ErrClosed)
	}
	var dropped []string
	if err := r.pool.QueryRow(ctx, `SELECT audit_purge($1, $2)`, writer, int64(through)).Scan(&dropped); err != nil {
		return classify(err, r.dsn, fmt.Sprintf("purge writer %s through seq %d", writer, through))
	}
	for _, name := range dropped {
		if day, err := time.Parse("audit_records_20060102", name); err == nil {
			r.parts.Delete(day.UnixNano() / dayNS)
		}
	}
	r.log.Info("applied the engine's purge", slog.String("writer", writer), slog.Uint64("through_seq", through), slog.Any("partitions_dropped", dropped))
	return nil
}

// Write stores rows, whose seqs follow the writer's cursor without a gap,
// with COPY, and moves the cursor to the last of them, in one transaction:
// each record lands exactly once.
func (r *Replica) Write(ctx context.Context, writer string, rows []sqlrec.Row) error {
	if r.closed.Load() {
		return fmt.Errorf("%w: postgres replica", backends.ErrClosed)
	}
	if len(rows) == 0 {
		return nil
	}
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return classify(err, r.dsn, "connect")
	}
	defer conn.Release()
	if err := r.ensurePartitions(ctx, conn, rows[0].TimeNS, rows[len(rows)-1].TimeNS); err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var last int64
		if err := tx.QueryRow(ctx, `SELECT last_seq FROM audit_writers WHERE writer_id = $1 AND kind = 'replica' FOR UPDATE`, writer).Scan(&last); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("postgres: writer %q is not registered as a replica (call Cursor first)", writer)
			}
			return classify(err, r.dsn, "replicate: read the cursor")
		}
		if uint64(last)+1 != rows[0].Seq {
			// Behind: a commit the server acknowledged but lost in a crash
			// (synchronous_commit is off below), with its rows; the
			// replicator reads the cursor again and sends them again.
			// Ahead: another replicator writes as this writer.
			return fmt.Errorf("postgres: replication cursor of writer %q is at seq %d, but the batch starts at %d (the server lost a commit in a crash, or another replicator writes as this writer)",
				writer, last, rows[0].Seq)
		}
		// The cursor row commits with the rows, so a commit lost before
		// its WAL reaches disk loses both and the batch is replicated
		// again: waiting for the flush buys nothing here.
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
			return classify(err, r.dsn, "replicate: set synchronous_commit")
		}
		buf := copyBufs.Get().(*copyBuf)
		_, err := copyRows(ctx, tx, buf, writer, rows)
		if cap(buf.b) <= maxPooledCopyBuf {
			copyBufs.Put(buf)
		}
		if err != nil {
			return classify(err, r.dsn, fmt.Sprintf("replicate: copy %d rows of writer %s", len(rows), writer))
		}
		lr := &rows[len(rows)-1]
		if _, err := tx.Exec(ctx, `UPDATE audit_writers SET last_seq = $2, last_mac = $3, last_time = $4, updated = now() WHERE writer_id = $1`,
			writer, int64(lr.Seq), lr.MAC, lr.TimeNS); err != nil {
			return classify(err, r.dsn, "replicate: move the cursor")
		}
		return nil
	})
	if err != nil {
		// A partition may have been dropped under the cache (a purge,
		// retention): the retry makes sure of them again.
		r.parts.Clear()
	}
	return err
}

// copyBufs holds COPY buffers between batches; one larger than
// maxPooledCopyBuf (a batch of large rows) is left to the collector.
var copyBufs = sync.Pool{New: func() any { return new(copyBuf) }}

const maxPooledCopyBuf = 64 << 20

// Query returns a page of every writer's records matching q, ordered by
// receipt time and then by row (Page.Next's Seq is a row id, not a
// record's seq). Each record carries its writer as the attribute
// vellum.writer. Records of a writer that is behind can arrive with times
// older than a page already read: a fleet query sees what has been
// replicated when it runs.
func (r *Replica) Query(ctx context.Context, q query.Query) (query.Page, error) {
	return r.query(ctx, q)
}

// LastSeq returns the high-water mark of the fleet view: the last row id
// handed out (0 when none). A query's first page pins it in its cursor and
// the fleet view reads only rows up to it (Query.MaxSeq bounds row ids
// here, not seqs), so paging ends even while the fleet replicates.
func (r *Replica) LastSeq() uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var v int64
	if err := r.pool.QueryRow(ctx, `SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM audit_row_id`).Scan(&v); err != nil {
		return 0
	}
	return uint64(v)
}

// Row returns writer's row with seq as stored, for checking a summary
// against the segment record it came from.
func (r *Replica) Row(ctx context.Context, writer string, seq uint64) (sqlrec.Row, error) {
	var sc sqlrec.Scanner
	var w string
	var rowID, sq, t int64
	dest := append([]any{&w, &rowID, &sq, &t}, sc.Dest()...)
	err := r.pool.QueryRow(ctx, `SELECT `+selectCols+sqlrec.ColumnList+` FROM audit_records WHERE writer_id = $1 AND seq = $2`,
		writer, int64(seq)).Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return sqlrec.Row{}, fmt.Errorf("%w: postgres writer %s seq %d", backends.ErrNotFound, writer, seq)
	}
	if err != nil {
		return sqlrec.Row{}, classify(err, r.dsn, "get")
	}
	return sc.Row(uint64(sq), t), nil
}

// Err returns nil while the replica is open.
func (r *Replica) Err() error {
	if r.closed.Load() {
		return fmt.Errorf("%w: postgres replica", backends.ErrClosed)
	}
	return nil
}

// Close closes the pool.
func (r *Replica) Close() error {
	if !r.closed.Swap(true) {
		r.pool.Close()
	}
	return nil
}

// Name says which database this is, without password.
func (r *Replica) Name() string { return "postgres " + Redact(r.dsn) }
