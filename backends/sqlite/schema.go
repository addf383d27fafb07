package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/vellumlog/vellum/backends"
)

// migrations are the schema versions, in order: migrations[i] brings a
// database from version i to i+1. Never edit one that has shipped; add a
// new one.
var migrations = []string{
	// 1: the records, their writer heads, meta data, the retention horizon
	// and the triggers that make audit_records append-only.
	`
CREATE TABLE audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE audit_writers (
	writer_id TEXT PRIMARY KEY,
	kind      TEXT NOT NULL CHECK (kind IN ('primary', 'replica')),
	source    TEXT NOT NULL DEFAULT '',
	last_seq  INTEGER NOT NULL DEFAULT 0,
	last_mac  BLOB,
	last_time INTEGER NOT NULL DEFAULT 0,
	updated   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE audit_records (
	seq                   INTEGER PRIMARY KEY,
	time                  INTEGER NOT NULL,
	event_id              TEXT NOT NULL,
	event_time_ns         INTEGER,
	tenant_id             TEXT NOT NULL,
	user_id               TEXT NOT NULL,
	service               TEXT NOT NULL,
	auth_mode             TEXT NOT NULL,
	action                TEXT NOT NULL,
	tool_name             TEXT NOT NULL,
	tool_call_id          TEXT NOT NULL,
	tool_arguments        TEXT,
	tool_arguments_sha256 BLOB,
	tool_arguments_size   INTEGER,
	tool_is_error         INTEGER NOT NULL,
	tool_duration_ns      INTEGER NOT NULL,
	model_name            TEXT NOT NULL,
	model_provider        TEXT NOT NULL,
	model_finish_reason   TEXT NOT NULL,
	model_input_tokens    INTEGER NOT NULL,
	model_output_tokens   INTEGER NOT NULL,
	agent                 TEXT NOT NULL,
	session_id            TEXT NOT NULL,
	trace_id              TEXT NOT NULL,
	request_id            TEXT NOT NULL,
	outcome               TEXT NOT NULL,
	outcome_reason        TEXT NOT NULL,
	outcome_rule_id       TEXT NOT NULL,
	outcome_approver      TEXT NOT NULL,
	outcome_mode          TEXT NOT NULL,
	attributes            TEXT,
	attributes_hashed     TEXT,
	redactions            TEXT,
	key_id                TEXT NOT NULL,
	prev_mac              BLOB NOT NULL,
	mac                   BLOB NOT NULL,
	segment               INTEGER,
	summary               INTEGER NOT NULL
);
CREATE INDEX audit_records_time ON audit_records (time);
CREATE INDEX audit_records_tenant_action ON audit_records (tenant_id, action, time);
CREATE INDEX audit_records_event ON audit_records (tenant_id, event_id) WHERE event_id <> '';

CREATE TABLE audit_horizon (id INTEGER PRIMARY KEY CHECK (id = 1), time INTEGER NOT NULL);
INSERT INTO audit_horizon VALUES (1, -9223372036854775808);

CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
BEGIN SELECT RAISE(ABORT, 'audit_records is append-only: UPDATE is refused'); END;
CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
WHEN OLD.time >= (SELECT time FROM audit_horizon WHERE id = 1)
BEGIN SELECT RAISE(ABORT, 'audit_records is append-only: DELETE is refused above the retention horizon'); END;
CREATE TRIGGER audit_records_no_replace BEFORE INSERT ON audit_records
WHEN EXISTS (SELECT 1 FROM audit_records WHERE seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'audit_records is append-only: a row with this seq exists'); END;
CREATE TRIGGER audit_horizon_forward BEFORE UPDATE ON audit_horizon
WHEN NEW.time < OLD.time OR NEW.id <> OLD.id
BEGIN SELECT RAISE(ABORT, 'audit_horizon only moves forward'); END;
CREATE TRIGGER audit_horizon_no_delete BEFORE DELETE ON audit_horizon
BEGIN SELECT RAISE(ABORT, 'audit_horizon cannot be deleted'); END;
`,
	// 2: a replica's purge horizon (issue 9): the engine's purges remove
	// the replica's rows up to the last purged seq, recorded first in
	// audit_writers.purged_seq, which only moves forward and never past
	// the replication cursor; the delete trigger lets a row go only below
	// the time horizon or at or below that seq.
	`
ALTER TABLE audit_writers ADD COLUMN purged_seq INTEGER NOT NULL DEFAULT 0;
DROP TRIGGER audit_records_no_delete;
CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
WHEN OLD.time >= (SELECT time FROM audit_horizon WHERE id = 1)
 AND OLD.seq > (SELECT COALESCE(MAX(purged_seq), 0) FROM audit_writers WHERE kind = 'replica')
BEGIN SELECT RAISE(ABORT, 'audit_records is append-only: DELETE is refused above the retention horizon and the replica''s purged seq'); END;
CREATE TRIGGER audit_writers_purged_forward BEFORE UPDATE OF purged_seq ON audit_writers
WHEN NEW.purged_seq < OLD.purged_seq OR NEW.purged_seq > NEW.last_seq OR (NEW.purged_seq > 0 AND NEW.kind <> 'replica')
BEGIN SELECT RAISE(ABORT, 'audit_writers.purged_seq only moves forward, never past the replicated seq, and only for a replica'); END;
`,
}

// SchemaVersion is the schema version this build writes.
var SchemaVersion = len(migrations)

// migrate brings the database to SchemaVersion, refusing a newer one.
func migrate(ctx context.Context, db *sql.DB, path string) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS audit_migrations (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)`); err != nil {
		return classify(err, path, "create audit_migrations")
	}
	var v int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM audit_migrations`).Scan(&v); err != nil {
		return classify(err, path, "read the schema version")
	}
	if v > SchemaVersion {
		return fmt.Errorf("%w: sqlite: %s has schema version %d, newer than this build's %d; run a newer vellum (never an older one) on this file",
			backends.ErrSchema, path, v, SchemaVersion)
	}
	for ; v < SchemaVersion; v++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return classify(err, path, "migrate")
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return classify(err, path, fmt.Sprintf("migration %d", v+1))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_migrations VALUES (?, ?)`, v+1, time.Now().UnixNano()); err != nil {
			tx.Rollback()
			return classify(err, path, fmt.Sprintf("migration %d", v+1))
		}
		if err := tx.Commit(); err != nil {
			return classify(err, path, fmt.Sprintf("migration %d", v+1))
		}
	}
	return nil
}
