package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vellumlog/vellum/backends"
)

// AppRole is the role the migrations create: it may only INSERT and
// SELECT audit_records (and keep its writer head in audit_writers). Grant
// it to the login role the servers use: GRANT vellum_app TO vellum;
const AppRole = "vellum_app"

// migrations are the schema versions, in order: migrations[i] brings a
// schema from version i to i+1, in the schema first on the search_path.
// Never edit one that has shipped; add a new one.
var migrations = []string{
	// 1: records (partitioned by day), writer heads, meta data, the
	// retention horizon, the append-only triggers, the partition maker and
	// the application role.
	`
CREATE TABLE audit_meta (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO audit_meta VALUES ('store_id', replace(gen_random_uuid()::text, '-', ''));

CREATE TABLE audit_writers (
	writer_id text COLLATE "C" PRIMARY KEY,
	kind      text NOT NULL CHECK (kind IN ('primary', 'replica')),
	source    text NOT NULL DEFAULT '',
	last_seq  bigint NOT NULL DEFAULT 0,
	last_mac  bytea,
	last_time bigint NOT NULL DEFAULT 0,
	updated   timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE audit_row_id;
CREATE TABLE audit_records (
	row_id                bigint NOT NULL DEFAULT nextval('audit_row_id'),
	writer_id             text COLLATE "C" NOT NULL,
	seq                   bigint NOT NULL,
	time                  timestamptz NOT NULL,
	time_ns               bigint NOT NULL,
	event_id              text COLLATE "C" NOT NULL,
	event_time_ns         bigint,
	tenant_id             text COLLATE "C" NOT NULL,
	user_id               text COLLATE "C" NOT NULL,
	service               text COLLATE "C" NOT NULL,
	auth_mode             text COLLATE "C" NOT NULL,
	action                text COLLATE "C" NOT NULL,
	tool_name             text COLLATE "C" NOT NULL,
	tool_call_id          text COLLATE "C" NOT NULL,
	tool_arguments        text,
	tool_arguments_sha256 bytea,
	tool_arguments_size   bigint,
	tool_is_error         boolean NOT NULL,
	tool_duration_ns      bigint NOT NULL,
	model_name            text COLLATE "C" NOT NULL,
	model_provider        text COLLATE "C" NOT NULL,
	model_finish_reason   text NOT NULL,
	model_input_tokens    bigint NOT NULL,
	model_output_tokens   bigint NOT NULL,
	agent                 text COLLATE "C" NOT NULL,
	session_id            text COLLATE "C" NOT NULL,
	trace_id              text COLLATE "C" NOT NULL,
	request_id            text COLLATE "C" NOT NULL,
	outcome               text COLLATE "C" NOT NULL,
	outcome_reason        text NOT NULL,
	outcome_rule_id       text COLLATE "C" NOT NULL,
	outcome_approver      text COLLATE "C" NOT NULL,
	outcome_mode          text NOT NULL,
	attributes            text,
	attributes_hashed     text,
	redactions            text,
	key_id                text NOT NULL,
	prev_mac              bytea NOT NULL,
	mac                   bytea NOT NULL,
	segment               bigint,
	summary               boolean NOT NULL,
	PRIMARY KEY (writer_id, seq, time)
) PARTITION BY RANGE (time);
CREATE INDEX audit_records_time ON audit_records (time_ns, row_id);
CREATE INDEX audit_records_tenant_action ON audit_records (tenant_id, action, time_ns);
-- Deduplication of a primary writer's retries; replicated rows (segment
-- set) were deduplicated by their engine and stay out of it.
CREATE INDEX audit_records_event ON audit_records (writer_id, tenant_id, event_id) WHERE event_id <> '' AND segment IS NULL;

CREATE TABLE audit_horizon (id int PRIMARY KEY CHECK (id = 1), time timestamptz NOT NULL);
INSERT INTO audit_horizon VALUES (1, '-infinity');

CREATE FUNCTION audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit_records is append-only: % is refused', TG_OP
		USING ERRCODE = 'insufficient_privilege', HINT = 'retention drops whole partitions; see docs/backends.md';
END $$;
CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records
	FOR EACH ROW EXECUTE FUNCTION audit_refuse();
CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
	FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse();

CREATE FUNCTION audit_horizon_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP <> 'UPDATE' OR NEW.time < OLD.time OR NEW.id <> OLD.id THEN
		RAISE EXCEPTION 'audit_horizon only moves forward' USING ERRCODE = 'insufficient_privilege';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER audit_horizon_forward BEFORE UPDATE OR DELETE ON audit_horizon
	FOR EACH ROW EXECUTE FUNCTION audit_horizon_forward();
CREATE TRIGGER audit_horizon_no_truncate BEFORE TRUNCATE ON audit_horizon
	FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse();

-- Creates the day partition holding t (UTC days) if it is missing, with
-- its own TRUNCATE trigger (statement triggers are not inherited). It runs
-- as its owner, so the application role needs only EXECUTE on it.
CREATE FUNCTION audit_ensure_partition(t timestamptz) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
	day date := (t AT TIME ZONE 'UTC')::date;
	name text := 'audit_records_' || to_char(day, 'YYYYMMDD');
BEGIN
	IF to_regclass(name) IS NULL THEN
		BEGIN
			EXECUTE format('CREATE TABLE %I PARTITION OF audit_records FOR VALUES FROM (%L) TO (%L)',
				name, (day::timestamp AT TIME ZONE 'UTC'), ((day + 1)::timestamp AT TIME ZONE 'UTC'));
			EXECUTE format('CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse()', name);
		EXCEPTION WHEN duplicate_table OR duplicate_object OR unique_violation THEN
			NULL; -- another writer made it meanwhile
		END;
	END IF;
	RETURN name;
END $$;

DO $$
BEGIN
	PERFORM pg_advisory_xact_lock(hashtext('vellum create role'));
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'vellum_app') THEN
		CREATE ROLE vellum_app NOLOGIN;
	END IF;
	EXECUTE format('GRANT USAGE ON SCHEMA %I TO vellum_app', current_schema());
END $$;
REVOKE ALL ON audit_records, audit_writers, audit_meta, audit_horizon, audit_migrations FROM PUBLIC;
GRANT SELECT, INSERT ON audit_records TO vellum_app;
GRANT SELECT, INSERT, UPDATE ON audit_writers TO vellum_app;
GRANT SELECT ON audit_meta, audit_horizon, audit_migrations TO vellum_app;
GRANT USAGE, SELECT ON SEQUENCE audit_row_id TO vellum_app;
REVOKE ALL ON FUNCTION audit_ensure_partition(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_ensure_partition(timestamptz) TO vellum_app;
`,
	// 2: a replicated writer's purge horizon (issue 9). The engine's
	// purges remove a writer's rows up to the last purged seq, and only
	// through audit_purge: it records the horizon in
	// audit_writers.purged_seq (forward only, never past the writer's
	// cursor; the application role may no longer update that column
	// directly), drops the day partitions every row of which is at or
	// below its writer's horizon, and deletes the writer's remaining rows
	// at or below it; the delete trigger lets a row go only at or below its
	// writer's recorded horizon.
	`
ALTER TABLE audit_writers ADD COLUMN purged_seq bigint NOT NULL DEFAULT 0;
REVOKE UPDATE ON audit_writers FROM vellum_app;
GRANT UPDATE (last_seq, last_mac, last_time, updated) ON audit_writers TO vellum_app;

CREATE FUNCTION audit_purged_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.purged_seq < OLD.purged_seq OR NEW.purged_seq > NEW.last_seq OR (NEW.purged_seq > 0 AND NEW.kind <> 'replica') THEN
		RAISE EXCEPTION 'audit_writers.purged_seq only moves forward, never past the replicated seq, and only for a replica'
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER audit_writers_purged_forward BEFORE UPDATE ON audit_writers
	FOR EACH ROW EXECUTE FUNCTION audit_purged_forward();

CREATE FUNCTION audit_refuse_unpurged() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' AND OLD.seq <= (SELECT purged_seq FROM audit_writers WHERE writer_id = OLD.writer_id AND kind = 'replica') THEN
		RETURN OLD;
	END IF;
	RAISE EXCEPTION 'audit_records is append-only: % is refused', TG_OP
		USING ERRCODE = 'insufficient_privilege', HINT = 'retention drops whole partitions, and a replica''s purge goes through audit_purge; see docs/backends.md';
END $$;
DROP TRIGGER audit_records_append_only ON audit_records;
CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records
	FOR EACH ROW EXECUTE FUNCTION audit_refuse_unpurged();

-- Applies an engine purge to replicated writer w: rows with seq <= through
-- go. Whole day partitions that end at or before the newest purged row and
-- hold no row above its writer's horizon (any writer's) are dropped; the
-- rest of w's purged rows, in the partition straddling the boundary, are
-- deleted. Returns the partitions dropped.
CREATE FUNCTION audit_purge(w text, through bigint) RETURNS text[]
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
	k text;
	last bigint;
	done bigint;
	upto timestamptz;
	part text;
	day date;
	busy boolean;
	dropped text[] := '{}';
BEGIN
	SELECT kind, last_seq, purged_seq INTO k, last, done FROM audit_writers WHERE writer_id = w FOR UPDATE;
	IF NOT FOUND OR k <> 'replica' THEN
		RAISE EXCEPTION 'audit_purge: % is not a replicated writer', w USING ERRCODE = 'insufficient_privilege';
	END IF;
	IF through > last THEN
		RAISE EXCEPTION 'audit_purge: writer % is replicated up to seq % only; a purge through seq % is refused', w, last, through
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	IF through <= done THEN
		RETURN dropped;
	END IF;
	SELECT max(time) INTO upto FROM audit_records WHERE writer_id = w AND seq > done AND seq <= through;
	UPDATE audit_writers SET purged_seq = through WHERE writer_id = w;
	FOR part, day IN SELECT c.relname, to_date(right(c.relname, 8), 'YYYYMMDD') FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'audit_records'::regclass AND c.relname ~ '^audit_records_[0-9]{8}$' ORDER BY c.relname
	LOOP
		EXIT WHEN upto IS NULL OR ((day + 1)::timestamp AT TIME ZONE 'UTC') > upto;
		EXECUTE format('SELECT EXISTS (SELECT 1 FROM audit_writers a WHERE EXISTS (SELECT 1 FROM %I r WHERE r.writer_id = a.writer_id AND r.seq > a.purged_seq))', part)
			INTO busy;
		IF NOT busy THEN
			EXECUTE format('ALTER TABLE audit_records DETACH PARTITION %I', part);
			EXECUTE format('DROP TABLE %I', part);
			dropped := dropped || part;
		END IF;
	END LOOP;
	DELETE FROM audit_records WHERE writer_id = w AND seq > done AND seq <= through;
	RETURN dropped;
END $$;
REVOKE ALL ON FUNCTION audit_purge(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_purge(text, bigint) TO vellum_app;
`,
}

// SchemaVersion is the schema version this build writes.
var SchemaVersion = len(migrations)

// migrate brings the schema to SchemaVersion, refusing a newer one. A role
// that may read but not migrate an older schema gets an error saying to
// run once as the owner.
func migrate(ctx context.Context, pool *pgxpool.Pool, dsn string) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return classify(err, dsn, "connect")
	}
	defer conn.Release()
	var schema *string
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return classify(err, dsn, "read the schema")
	}
	if schema == nil {
		return fmt.Errorf("%w: postgres %s: no usable schema on the search_path (it does not exist, or permission denied for this role): "+
			"run vellum once with the schema owner's DSN (the migration needs the schema's owner) so it creates the tables and the role %s, "+
			"then GRANT %s TO <this role> (docs/backends.md)", backends.ErrUnavailable, Redact(dsn), AppRole, AppRole)
	}
	version := func() (int, error) {
		var exists bool
		if err := conn.QueryRow(ctx, `SELECT to_regclass('audit_migrations') IS NOT NULL`).Scan(&exists); err != nil {
			return 0, classify(err, dsn, "read the schema version")
		}
		if !exists {
			return 0, nil
		}
		var v int
		if err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM audit_migrations`).Scan(&v); err != nil {
			return 0, classify(err, dsn, "read the schema version")
		}
		return v, nil
	}
	v, err := version()
	if err != nil {
		return err
	}
	if v > SchemaVersion {
		return newerSchema(dsn, *schema, v)
	}
	if v == SchemaVersion {
		return nil
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('vellum migrate ' || current_schema()))`); err != nil {
			return classify(err, dsn, "lock for migration")
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS audit_migrations (version int PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())`); err != nil {
			return classify(err, dsn, fmt.Sprintf("migrate schema %s from version %d (needs the schema's owner)", *schema, v))
		}
		var v int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM audit_migrations`).Scan(&v); err != nil {
			return classify(err, dsn, "read the schema version")
		}
		if v > SchemaVersion {
			return newerSchema(dsn, *schema, v)
		}
		for ; v < SchemaVersion; v++ {
			if _, err := tx.Exec(ctx, migrations[v]); err != nil {
				return classify(err, dsn, fmt.Sprintf("migration %d of schema %s", v+1, *schema))
			}
			if _, err := tx.Exec(ctx, `INSERT INTO audit_migrations (version) VALUES ($1)`, v+1); err != nil {
				return classify(err, dsn, fmt.Sprintf("migration %d of schema %s", v+1, *schema))
			}
		}
		return nil
	})
}

func newerSchema(dsn, schema string, v int) error {
	return fmt.Errorf("%w: postgres %s: schema %s has version %d, newer than this build's %d; run a newer vellum (never an older one) against it",
		backends.ErrSchema, Redact(dsn), schema, v, SchemaVersion)
}
