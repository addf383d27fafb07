package postgres_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/backends/postgres"
	"github.com/vellumlog/vellum/backends/postgres/pgtest"
	"github.com/vellumlog/vellum/backends/storetest"
)

// TestBadInput: each problem with the database is a clear error naming
// the backend and what to do, never carrying the password.
func TestBadInput(t *testing.T) {
	const secret = "s3cret-Pa55word"
	open := func(dsn string, log *slog.Logger) error {
		s, err := postgres.Open(ctx, &postgres.Options{DSN: dsn, WriterID: "w", Keys: keys(), Logger: log})
		if err == nil {
			s.Close()
		}
		return err
	}
	check := func(t *testing.T, err error, wants ...string) {
		t.Helper()
		if err == nil {
			t.Fatal("no error")
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v\ndoes not say %q", err, w)
			}
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error carries the password: %v", err)
		}
	}

	t.Run("unreachable", func(t *testing.T) {
		var logs bytes.Buffer
		err := open("postgres://vellum:"+secret+"@127.0.0.1:1/audit", slog.New(slog.NewTextHandler(&logs, nil)))
		check(t, err, "postgres", "127.0.0.1:1", "cannot reach the server", "check the host and port")
		if !errors.Is(err, backends.ErrUnavailable) {
			t.Errorf("%v is not ErrUnavailable", err)
		}
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log carries the password: %s", logs.String())
		}
	})
	t.Run("keyword DSN", func(t *testing.T) {
		err := open("host=127.0.0.1 port=1 user=vellum password="+secret+" dbname=audit", quiet())
		check(t, err, "cannot reach", "password=xxxxx")
	})
	t.Run("bad DSN", func(t *testing.T) {
		err := open("postgres://vellum:"+secret+"@127.0.0.1:notaport/audit", quiet())
		check(t, err, "does not parse")
	})
	t.Run("wrong password", func(t *testing.T) {
		if !pgtest.IsDefault() {
			t.Skip("the scram-sha-256 rule for vellum_pw_test is set up by scripts/pg-up.sh on the default server only")
		}
		admin := pgtest.Admin(t)
		admin.Exec(ctx, `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'vellum_pw_test') THEN CREATE ROLE vellum_pw_test LOGIN; END IF; END $$`)
		if _, err := admin.Exec(ctx, `ALTER ROLE vellum_pw_test LOGIN PASSWORD 'the-right-one'`); err != nil {
			t.Fatal(err)
		}
		dsn := pgtest.WithUser(pgtest.DSN(), "vellum_pw_test", secret)
		err := open(dsn, quiet())
		if err == nil {
			t.Fatal("a wrong password was accepted: pg_hba.conf trusts vellum_pw_test; run scripts/pg-up.sh")
		}
		check(t, err, "password was refused", "audit.postgres.dsn", "xxxxx")
	})
	t.Run("missing privileges", func(t *testing.T) {
		_, dsn := pgtest.Schema(t)
		openIn(t, dsn, "setup", env(storetest.NewClock())).Close() // the owner migrates
		nobody := loginRole(t)                                     // not granted vellum_app
		err := open(pgtest.WithUser(dsn, nobody, ""), quiet())
		check(t, err, "permission denied", "GRANT vellum_app")
		if !errors.Is(err, backends.ErrUnavailable) {
			t.Errorf("%v is not ErrUnavailable", err)
		}
	})
	t.Run("migration needs the owner", func(t *testing.T) {
		_, dsn := pgtest.Schema(t)
		app := loginRole(t, postgres.AppRole)
		err := open(pgtest.WithUser(dsn, app, ""), quiet())
		check(t, err, "permission denied", "needs the schema's owner")
	})
	t.Run("newer schema", func(t *testing.T) {
		_, dsn := pgtest.Schema(t)
		openIn(t, dsn, "setup", env(storetest.NewClock())).Close()
		if _, err := connect(t, dsn).Exec(ctx, `INSERT INTO audit_migrations (version) VALUES (99)`); err != nil {
			t.Fatal(err)
		}
		err := open(dsn, quiet())
		check(t, err, "version 99, newer than this build's", "run a newer vellum")
		if !errors.Is(err, backends.ErrSchema) {
			t.Errorf("%v is not ErrSchema", err)
		}
	})
	t.Run("missing database", func(t *testing.T) {
		err := open(pgtest.WithUser(strings.Replace(pgtest.DSN(), "/test", "/no_such_db_vellum", 1), "postgres", ""), quiet())
		check(t, err, "does not exist")
	})
	t.Run("NUL in a field", func(t *testing.T) {
		_, dsn := pgtest.Schema(t)
		s := openIn(t, dsn, "w", env(storetest.NewClock()))
		defer s.Close()
		r := storetest.Full(1)
		r.UserID = "a\x00b"
		if _, err := s.Append(ctx, r); !errors.Is(err, backends.ErrInvalid) || !strings.Contains(err.Error(), "user_id") {
			t.Errorf("Append with a NUL = %v", err)
		}
	})
}
