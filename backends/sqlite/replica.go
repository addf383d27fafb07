package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/backends/internal/sqlrec"
)

// ReplicaOptions configure a Replica. The zero value works.
type ReplicaOptions struct {
	Logger *slog.Logger
}

// Replica is a SQLite file that receives one engine's replicated record
// summaries (package replicate) and answers queries over them. It is safe
// for concurrent use.
type Replica struct {
	*reader
	w      *sql.DB
	log    *slog.Logger
	closed atomic.Bool
}

// OpenReplica opens (creating it if needed) the SQLite replica at path,
// applying schema migrations. A file that is a primary store is refused.
func OpenReplica(path string, opts *ReplicaOptions) (*Replica, error) {
	var o ReplicaOptions
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	w, r, err := openDBs(path, nil)
	if err != nil {
		return nil, err
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if _, err := loadStoreID(context.Background(), w, path); err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	return &Replica{reader: &reader{path: path, r: r}, w: w,
		log: o.Logger.With(slog.String("component", "sqlite-replica"), slog.String("path", path))}, nil
}

// Cursor returns how far the replica holds writer's records, registering
// the writer, replicating the engine with store id source, on first use.
// One SQLite replica holds one engine: another writer or source is
// refused.
func (r *Replica) Cursor(ctx context.Context, writer string, source [16]byte) (sqlrec.Cursor, error) {
	var cur sqlrec.Cursor
	src := hex.EncodeToString(source[:])
	rows, err := r.w.QueryContext(ctx, `SELECT writer_id, kind, source, last_seq, last_mac, last_time, purged_seq FROM audit_writers`)
	if err != nil {
		return cur, classify(err, r.path, "read the replication cursor")
	}
	found := false
	for rows.Next() {
		var w, kind, s string
		var seq, t, purged int64
		var mac []byte
		if err := rows.Scan(&w, &kind, &s, &seq, &mac, &t, &purged); err != nil {
			rows.Close()
			return cur, classify(err, r.path, "read the replication cursor")
		}
		if kind != "replica" {
			rows.Close()
			return cur, fmt.Errorf("%w: sqlite: %s is a primary store, not a replica; give audit.replicate.path another file", backends.ErrSchema, r.path)
		}
		if w != writer || s != src {
			rows.Close()
			return cur, fmt.Errorf("%w: sqlite: %s replicates engine %s as writer %q; one SQLite replica holds one engine (this one is %s as %q); use another file, or PostgreSQL for a fleet",
				backends.ErrSchema, r.path, s, w, src, writer)
		}
		found = true
		cur.Seq, cur.Time, cur.Purged = uint64(seq), t, uint64(purged)
		copy(cur.MAC[:], mac)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return cur, classify(err, r.path, "read the replication cursor")
	}
	if !found {
		if _, err := r.w.ExecContext(ctx, `INSERT INTO audit_writers (writer_id, kind, source, updated) VALUES (?, 'replica', ?, ?)`,
			writer, src, time.Now().UnixNano()); err != nil {
			return cur, classify(err, r.path, "register the replicated writer")
		}
	}
	return cur, nil
}

// Write stores rows, whose seqs follow the writer's cursor without a gap,
// and moves the cursor to the last of them, in one transaction: each
// record lands exactly once.
func (r *Replica) Write(ctx context.Context, writer string, rows []sqlrec.Row) error {
	if r.closed.Load() {
		return fmt.Errorf("%w: sqlite: %s", backends.ErrClosed, r.path)
	}
	if len(rows) == 0 {
		return nil
	}
	tx, err := r.w.BeginTx(ctx, nil)
	if err != nil {
		return classify(err, r.path, "replicate: begin")
	}
	defer tx.Rollback()
	var last int64
	if err := tx.QueryRowContext(ctx, `SELECT last_seq FROM audit_writers WHERE writer_id = ? AND kind = 'replica'`, writer).Scan(&last); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: %s: writer %q is not registered as a replica (call Cursor first)", r.path, writer)
		}
		return classify(err, r.path, "replicate: read the cursor")
	}
	if uint64(last)+1 != rows[0].Seq {
		return fmt.Errorf("sqlite: %s: replication cursor is at seq %d, but the batch starts at %d (another replicator is writing?)", r.path, last, rows[0].Seq)
	}
	ins, err := tx.PrepareContext(ctx, insertSQL+sqlrec.ColumnList+`) VALUES (?, ?`+strings.Repeat(", ?", len(sqlrec.Columns))+`)`)
	if err != nil {
		return classify(err, r.path, "replicate: prepare")
	}
	defer ins.Close()
	args := make([]any, 0, 2+len(sqlrec.Columns))
	for i := range rows {
		row := &rows[i]
		args = append(args[:0], int64(row.Seq), row.TimeNS)
		args = append(args, row.Values()...)
		if _, err := ins.ExecContext(ctx, args...); err != nil {
			return classify(err, r.path, fmt.Sprintf("replicate: insert seq %d", row.Seq))
		}
	}
	lr := &rows[len(rows)-1]
	if _, err := tx.ExecContext(ctx, `UPDATE audit_writers SET last_seq = ?, last_mac = ?, last_time = ?, updated = ? WHERE writer_id = ?`,
		int64(lr.Seq), lr.MAC, lr.TimeNS, time.Now().UnixNano(), writer); err != nil {
		return classify(err, r.path, "replicate: move the cursor")
	}
	if err := tx.Commit(); err != nil {
		return classify(err, r.path, "replicate: commit")
	}
	return nil
}

// Purge applies an engine purge (engine.Retainer.OnPurge) to the replica:
// it moves the writer's purge horizon (audit_writers.purged_seq) forward to
// through and deletes every row at or below it, in one transaction. The
// delete trigger lets nothing else go: a row is deleted only at or below
// the recorded horizon (or below the time horizon), and the horizon only
// moves forward and never past the replication cursor, so a purge through
// a seq not yet replicated is refused. A purge at or below the horizon
// already applied deletes nothing (applying one twice is harmless).
func (r *Replica) Purge(ctx context.Context, writer string, through uint64) error {
	if r.closed.Load() {
		return fmt.Errorf("%w: sqlite: %s", backends.ErrClosed, r.path)
	}
	tx, err := r.w.BeginTx(ctx, nil)
	if err != nil {
		return classify(err, r.path, "purge: begin")
	}
	defer tx.Rollback()
	var last, purged int64
	if err := tx.QueryRowContext(ctx, `SELECT last_seq, purged_seq FROM audit_writers WHERE writer_id = ? AND kind = 'replica'`, writer).Scan(&last, &purged); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: %s: writer %q is not registered as a replica (call Cursor first)", r.path, writer)
		}
		return classify(err, r.path, "purge: read the cursor")
	}
	if through > uint64(last) {
		return fmt.Errorf("sqlite: %s: a purge through seq %d is refused: the replica holds writer %q only up to seq %d", r.path, through, writer, last)
	}
	if through <= uint64(purged) {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE audit_writers SET purged_seq = ? WHERE writer_id = ?`, int64(through), writer); err != nil {
		return classify(err, r.path, "purge: move the purge horizon")
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM audit_records WHERE seq <= ?`, int64(through))
	if err != nil {
		return classify(err, r.path, "purge: delete")
	}
	n, _ := res.RowsAffected()
	if err := tx.Commit(); err != nil {
		return classify(err, r.path, "purge: commit")
	}
	r.log.Info("applied the engine's purge", slog.Uint64("through_seq", through), slog.Int64("rows_deleted", n))
	return nil
}

// Err returns nil while the replica is open.
func (r *Replica) Err() error {
	if r.closed.Load() {
		return fmt.Errorf("%w: sqlite: %s", backends.ErrClosed, r.path)
	}
	return nil
}

// Close closes the file.
func (r *Replica) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	err := r.w.Close()
	if rerr := r.r.Close(); err == nil {
		err = rerr
	}
	return err
}

// Name says which database this is, for logs and /readyz.
func (r *Replica) Name() string { return "sqlite " + r.path }

// Row returns the stored row with seq (a SQLite replica holds one writer),
// for checking it against its segment record.
func (r *Replica) Row(ctx context.Context, writer string, seq uint64) (sqlrec.Row, error) {
	var sc sqlrec.Scanner
	var s, t int64
	dest := append([]any{&s, &t}, sc.Dest()...)
	err := r.r.QueryRowContext(ctx, `SELECT seq, time, `+sqlrec.ColumnList+` FROM audit_records WHERE seq = ?`, int64(seq)).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return sqlrec.Row{}, fmt.Errorf("%w: sqlite %s seq %d", backends.ErrNotFound, r.path, seq)
	}
	if err != nil {
		return sqlrec.Row{}, classify(err, r.path, "get")
	}
	return sc.Row(uint64(s), t), nil
}

// LastSeq returns the last replicated seq (0 when none): the high-water
// mark a query's first page pins in its cursor.
func (r *Replica) LastSeq() uint64 {
	var seq int64
	if err := r.r.QueryRowContext(context.Background(), `SELECT COALESCE(MAX(seq), 0) FROM audit_records`).Scan(&seq); err != nil {
		return 0
	}
	return uint64(seq)
}
