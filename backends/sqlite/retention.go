package sqlite

import (
	"context"
	"time"
)

// ExpireBefore is the retention primitive: it moves the retention horizon
// forward to t (never back: the database refuses that, and an older t
// leaves it where it is) and deletes the records older than t, in one
// transaction. The triggers let DELETE through only below the horizon, so
// nothing newer can be removed this way or any other. It returns how many
// rows were deleted. Retention (issue 9) calls it with now minus the
// maximum age, after checking legal holds.
func (s *Store) ExpireBefore(ctx context.Context, t time.Time) (int64, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, classify(err, s.path, "expire: begin")
	}
	defer tx.Rollback()
	ns := t.UnixNano()
	if _, err := tx.ExecContext(ctx, `UPDATE audit_horizon SET time = ? WHERE id = 1 AND time < ?`, ns, ns); err != nil {
		return 0, classify(err, s.path, "expire: move the horizon")
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM audit_records WHERE time < ?`, ns)
	if err != nil {
		return 0, classify(err, s.path, "expire: delete")
	}
	n, _ := res.RowsAffected()
	if err := tx.Commit(); err != nil {
		return 0, classify(err, s.path, "expire: commit")
	}
	return n, nil
}

// Horizon returns the retention horizon: records older than it may have
// been deleted. The zero time means none ever was.
func (s *Store) Horizon(ctx context.Context) (time.Time, error) {
	var ns int64
	if err := s.r.QueryRowContext(ctx, `SELECT time FROM audit_horizon WHERE id = 1`).Scan(&ns); err != nil {
		return time.Time{}, classify(err, s.path, "read the horizon")
	}
	if ns <= -1<<63 {
		return time.Time{}, nil
	}
	return time.Unix(0, ns).UTC(), nil
}
