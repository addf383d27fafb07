package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/backends/internal/sqlrec"
	"github.com/vellumlog/vellum/chain"
)

// Report is what Verify checked.
type Report struct {
	Rows      int    // rows walked
	Checked   int    // rows whose MAC was recomputed with the key
	Summaries int    // summary rows (linkage checked; MAC needs the segment)
	FirstSeq  uint64 // first row walked (after the retention horizon)
	LastSeq   uint64
}

// Verify opens the database at path read-only and walks its chain (see
// VerifyDB).
func Verify(ctx context.Context, path string, keys *chain.Keyring) (Report, error) {
	db, err := sql.Open("sqlite3", dsn(path, true))
	if err != nil {
		return Report{}, classify(err, path, "open")
	}
	defer db.Close()
	return verifyDB(ctx, db, path, keys)
}

// Verify walks the store's chain; see VerifyDB.
func (s *Store) Verify(ctx context.Context, keys *chain.Keyring) (Report, error) {
	return verifyDB(ctx, s.r, s.path, keys)
}

// verifyDB walks every row in seq order: no gap, each prev_mac equal to
// the MAC before it, the first row's prev_mac the genesis value (when the
// chain starts at seq 1), every full row's MAC recomputed with keys, and
// the writer head equal to the last row. The first row that fails is
// returned as a *backends.BadRowError.
func verifyDB(ctx context.Context, sdb *sql.DB, path string, keys *chain.Keyring) (Report, error) {
	var rep Report
	// One read transaction: the head and the rows from one snapshot.
	db, err := sdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return rep, classify(err, path, "begin")
	}
	defer db.Rollback()
	var kind string
	var headSeq, purged int64
	var headMAC []byte
	err = db.QueryRowContext(ctx, `SELECT kind, last_seq, last_mac, purged_seq FROM audit_writers WHERE writer_id = ''`).Scan(&kind, &headSeq, &headMAC, &purged)
	if errors.Is(err, sql.ErrNoRows) {
		return rep, fmt.Errorf("%w: sqlite: %s has no writer; is it a Vellum database?", backends.ErrSchema, path)
	}
	if err != nil {
		return rep, classify(err, path, "read the writer head")
	}
	v := &sqlrec.Verifier{Backend: "sqlite " + path, Keys: keys}
	if kind == "primary" {
		id, err := readStoreID(ctx, db, path)
		if err != nil {
			return rep, err
		}
		// Genesis under the key of the first row.
		var keyID string
		if db.QueryRowContext(ctx, `SELECT key_id FROM audit_records WHERE seq = 1`).Scan(&keyID) == nil {
			if kid, err := chain.ParseKeyID(keyID); err == nil {
				g := sqlrec.Genesis(id, "", kid)
				v.Genesis = &g
			}
		}
	}
	rows, err := db.QueryContext(ctx, `SELECT seq, time, `+sqlrec.ColumnList+` FROM audit_records ORDER BY seq`)
	if err != nil {
		return rep, classify(err, path, "read rows")
	}
	defer rows.Close()
	var sc sqlrec.Scanner
	var seq, t int64
	dest := append([]any{&seq, &t}, sc.Dest()...)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return rep, classify(err, path, "read rows")
		}
		row := sc.Row(uint64(seq), t)
		if rep.Rows == 0 {
			rep.FirstSeq = row.Seq
			var horizon int64
			if err := db.QueryRowContext(ctx, `SELECT time FROM audit_horizon WHERE id = 1`).Scan(&horizon); err != nil {
				return rep, classify(err, path, "read the horizon")
			}
			if row.Seq > 1 && kind == "primary" && horizon <= -1<<63 {
				return rep, &backends.BadRowError{Backend: "sqlite " + path, Seq: 1,
					Reason: fmt.Sprintf("missing: the rows start at seq %d and retention removed nothing", row.Seq)}
			}
			if row.Seq > uint64(purged)+1 && kind == "replica" && horizon <= -1<<63 {
				return rep, &backends.BadRowError{Backend: "sqlite " + path, Seq: uint64(purged) + 1,
					Reason: fmt.Sprintf("missing: the rows start at seq %d, but the engine's purges were applied only through seq %d", row.Seq, purged)}
			}
		}
		if err := v.Next(&row); err != nil {
			return rep, err
		}
		rep.Rows++
		rep.LastSeq = row.Seq
	}
	if err := rows.Err(); err != nil {
		return rep, classify(err, path, "read rows")
	}
	rep.Checked, rep.Summaries = v.Checked, v.Summaries
	if last := v.Last(); last != nil {
		if uint64(headSeq) != last.Seq || string(headMAC) != string(last.MAC) {
			return rep, &backends.BadRowError{Backend: "sqlite " + path, Seq: last.Seq + 1,
				Reason: fmt.Sprintf("the writer head says the chain ends at seq %d, but the rows end at seq %d (rows were removed from the end, or the head was changed)", headSeq, last.Seq)}
		}
	} else if headSeq > 0 {
		var horizon int64
		db.QueryRowContext(ctx, `SELECT time FROM audit_horizon WHERE id = 1`).Scan(&horizon)
		if horizon <= -1<<63 && purged < headSeq {
			return rep, &backends.BadRowError{Backend: "sqlite " + path, Seq: 1,
				Reason: fmt.Sprintf("the writer head says the chain ends at seq %d, but the table is empty and retention removed nothing", headSeq)}
		}
	}
	return rep, nil
}

func readStoreID(ctx context.Context, db *sql.Tx, path string) ([16]byte, error) {
	var id [16]byte
	var h string
	if err := db.QueryRowContext(ctx, `SELECT value FROM audit_meta WHERE key = 'store_id'`).Scan(&h); err != nil {
		return id, classify(err, path, "read the store id")
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("%w: sqlite: %s: store_id %q is not 16 bytes of hex", backends.ErrSchema, path, h)
	}
	copy(id[:], b)
	return id, nil
}
