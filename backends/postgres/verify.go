package postgres

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/backends/internal/sqlrec"
	"github.com/vellumlog/vellum/chain"
)

// WriterReport is what Verify found for one writer's chain.
type WriterReport struct {
	Writer    string
	Kind      string // primary or replica
	Rows      int
	Checked   int // rows whose MAC was recomputed with the key
	Summaries int // replicated summaries: links checked; their MACs need the segments
	FirstSeq  uint64
	LastSeq   uint64
}

// Verify walks every writer's chain in the database at dsn, in seq order:
// no gap, each prev_mac equal to the MAC before it, the genesis value
// before seq 1, every full row's MAC recomputed with keys, and each
// writer's head (audit_writers) equal to its last row. It returns a report
// per writer and, at the first row that fails, a *backends.BadRowError
// naming the writer and seq. It only reads.
func Verify(ctx context.Context, dsn string, keys *chain.Keyring) ([]WriterReport, error) {
	pool, err := connect(ctx, dsn, 2, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	return verifyPool(ctx, pool, dsn, keys)
}

type writerHead struct {
	id, kind, source string
	seq, purged      int64
	mac              []byte
}

func verifyPool(ctx context.Context, pool *pgxpool.Pool, dsn string, keys *chain.Keyring) ([]WriterReport, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, classify(err, dsn, "connect")
	}
	defer conn.Release()
	// One snapshot for the heads and every row.
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, classify(err, dsn, "begin")
	}
	defer tx.Rollback(ctx)
	storeID, err := readStoreID(ctx, tx, dsn)
	if err != nil {
		return nil, err
	}
	var horizon time.Time
	var infinite bool
	if err := tx.QueryRow(ctx, `SELECT time = '-infinity', CASE WHEN time = '-infinity' THEN now() ELSE time END FROM audit_horizon`).Scan(&infinite, &horizon); err != nil {
		return nil, classify(err, dsn, "read the retention horizon")
	}
	hrows, err := tx.Query(ctx, `SELECT writer_id, kind, source, last_seq, last_mac, purged_seq FROM audit_writers ORDER BY writer_id`)
	if err != nil {
		return nil, classify(err, dsn, "read the writers")
	}
	heads, err := pgx.CollectRows(hrows, func(r pgx.CollectableRow) (writerHead, error) {
		var h writerHead
		return h, r.Scan(&h.id, &h.kind, &h.source, &h.seq, &h.mac, &h.purged)
	})
	if err != nil {
		return nil, classify(err, dsn, "read the writers")
	}
	var reps []WriterReport
	for _, h := range heads {
		rep, err := verifyWriter(ctx, tx, dsn, keys, storeID, h, !infinite)
		reps = append(reps, rep)
		if err != nil {
			return reps, err
		}
	}
	return reps, nil
}

func verifyWriter(ctx context.Context, tx pgx.Tx, dsn string, keys *chain.Keyring, storeID [16]byte, h writerHead, expired bool) (WriterReport, error) {
	rep := WriterReport{Writer: h.id, Kind: h.kind}
	backend := "postgres " + Redact(dsn)
	v := &sqlrec.Verifier{Backend: backend, Writer: h.id, Keys: keys}
	genesis := func(keyID string) {
		kid, err := chain.ParseKeyID(keyID)
		if err != nil {
			return
		}
		var g vellum.MAC
		if h.kind == "primary" {
			g = sqlrec.Genesis(storeID, h.id, kid)
		} else {
			b, err := hex.DecodeString(h.source)
			if err != nil || len(b) != 16 {
				return
			}
			var src [16]byte
			copy(src[:], b)
			g = chain.Genesis(src, kid)
		}
		v.Genesis = &g
	}
	rows, err := tx.Query(ctx, `SELECT seq, time_ns, `+sqlrec.ColumnList+` FROM audit_records WHERE writer_id = $1 ORDER BY seq`, h.id)
	if err != nil {
		return rep, classify(err, dsn, "read the rows of writer "+h.id)
	}
	defer rows.Close()
	var sc sqlrec.Scanner
	var seq, t int64
	dest := append([]any{&seq, &t}, sc.Dest()...)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return rep, classify(err, dsn, "read the rows of writer "+h.id)
		}
		row := sc.Row(uint64(seq), t)
		if rep.Rows == 0 {
			rep.FirstSeq = row.Seq
			if row.Seq == 1 {
				genesis(row.KeyID)
			} else if !expired && !(h.kind == "replica") {
				return rep, &backends.BadRowError{Backend: backend, Writer: h.id, Seq: 1,
					Reason: fmt.Sprintf("missing: the rows start at seq %d and retention dropped nothing", row.Seq)}
			} else if !expired && row.Seq > uint64(h.purged)+1 {
				return rep, &backends.BadRowError{Backend: backend, Writer: h.id, Seq: uint64(h.purged) + 1,
					Reason: fmt.Sprintf("missing: the rows start at seq %d, but the engine's purges were applied only through seq %d", row.Seq, h.purged)}
			}
		}
		if err := v.Next(&row); err != nil {
			return rep, err
		}
		rep.Rows++
		rep.LastSeq = row.Seq
	}
	if err := rows.Err(); err != nil {
		return rep, classify(err, dsn, "read the rows of writer "+h.id)
	}
	rep.Checked, rep.Summaries = v.Checked, v.Summaries
	last := v.Last()
	switch {
	case last != nil && (uint64(h.seq) != last.Seq || string(h.mac) != string(last.MAC)):
		return rep, &backends.BadRowError{Backend: backend, Writer: h.id, Seq: last.Seq + 1,
			Reason: fmt.Sprintf("the writer head says the chain ends at seq %d, but the rows end at seq %d (rows were removed from the end, or the head was changed)", h.seq, last.Seq)}
	case last == nil && h.seq > 0 && !expired && h.purged < h.seq:
		return rep, &backends.BadRowError{Backend: backend, Writer: h.id, Seq: 1,
			Reason: fmt.Sprintf("the writer head says the chain ends at seq %d, but the writer has no rows and retention dropped nothing", h.seq)}
	}
	return rep, nil
}
