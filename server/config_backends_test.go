package server

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestBackendConfig(t *testing.T) {
	ok := []struct {
		name, yaml string
		check      func(*ServerConfig) bool
	}{
		{"sqlite", "audit:\n  store: sqlite\n  sqlite:\n    path: /var/lib/vellum/audit.db\n", func(c *ServerConfig) bool { return c.Audit.Store == StoreSQLite }},
		{"postgres from env", "audit:\n  store: postgres\n  postgres:\n    dsn: ${PG}\n", func(c *ServerConfig) bool {
			return c.Audit.Postgres.DSN == "postgres://u:pw@db/audit"
		}},
		{"postgres dsn_env", "audit:\n  store: postgres\n  postgres:\n    dsn_env: PG\n    writer_id: agent-1\n", func(c *ServerConfig) bool {
			d, err := c.PostgresDSN(envOf(map[string]string{"PG": "postgres://x@db/a"}))
			return err == nil && d == "postgres://x@db/a" && c.PostgresWriterID() == "agent-1"
		}},
		{"null", "audit:\n  store: null\n", func(c *ServerConfig) bool { return c.Audit.Store == StoreNull }},
		{"replicate defaults", "audit:\n  replicate:\n    backend: sqlite\n    path: r.db\n", func(c *ServerConfig) bool {
			r := c.Audit.Replicate
			return r.BatchSize == DefaultReplicateBatch && r.FlushInterval == DefaultReplicateFlush && !r.IncludeArguments
		}},
		{"fleet", "audit:\n  replicate:\n    backend: postgres\n    dsn: postgres://db/a\n    writer_id: agent-2\n    include_arguments: true\n    batch_size: 100\n    flush_interval: 50ms\nquery:\n  source: replica\n",
			func(c *ServerConfig) bool {
				return c.Query.Source == SourceReplica && c.ReplicateWriterID() == "agent-2"
			}},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tt.yaml), envOf(map[string]string{"PG": "postgres://u:pw@db/audit"}))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("%+v", c.Audit)
			}
		})
	}
	bad := []struct{ name, yaml, key string }{
		{"unknown store", "audit:\n  store: mysql\n", "audit.store"},
		{"sqlite without path", "audit:\n  store: sqlite\n", "audit.sqlite.path"},
		{"postgres without dsn", "audit:\n  store: postgres\n", "audit.postgres.dsn"},
		{"both dsns", "audit:\n  store: postgres\n  postgres:\n    dsn: postgres://db/a\n    dsn_env: PG\n", "audit.postgres.dsn_env"},
		{"sqlite settings for another store", "audit:\n  sqlite:\n    path: a.db\n", "audit.sqlite"},
		{"bad writer id", "audit:\n  store: postgres\n  postgres:\n    dsn: postgres://db/a\n    writer_id: 'a b'\n", "audit.postgres.writer_id"},
		{"replicate without backend", "audit:\n  replicate:\n    path: r.db\n", "audit.replicate.backend"},
		{"replicate unknown backend", "audit:\n  replicate:\n    backend: mysql\n", "audit.replicate.backend"},
		{"replicate sqlite without path", "audit:\n  replicate:\n    backend: sqlite\n", "audit.replicate.path"},
		{"replicate postgres with path", "audit:\n  replicate:\n    backend: postgres\n    path: r.db\n", "audit.replicate.path"},
		{"replicate from a SQL store", "audit:\n  store: null\n  replicate:\n    backend: sqlite\n    path: r.db\n", "audit.replicate"},
		{"batch size", "audit:\n  replicate:\n    backend: sqlite\n    path: r.db\n    batch_size: 1000000\n", "audit.replicate.batch_size"},
		{"replica source without replica", "query:\n  source: replica\n", "query.source"},
		{"unknown source", "query:\n  source: elsewhere\n", "query.source"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.yaml), envOf(nil))
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.key+":") {
				t.Errorf("err = %v, want it to name %s", err, tt.key)
			}
		})
	}
}

// TestBackendConfigLogsNoPassword: the configuration's log form shows the
// DSNs without their passwords.
func TestBackendConfigLogsNoPassword(t *testing.T) {
	for _, dsn := range []string{"postgres://vellum:pw-SECRET-1@db:5432/audit", "host=db user=vellum password=pw-SECRET-1 dbname=audit",
		"postgres://vellum@db/audit?password=pw-SECRET-1"} {
		for _, yaml := range []string{
			"audit:\n  store: postgres\n  postgres:\n    dsn: '" + dsn + "'\n",
			"audit:\n  replicate:\n    backend: postgres\n    dsn: '" + dsn + "'\n",
		} {
			c, err := ParseConfig([]byte(yaml), envOf(nil))
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "config", c)
			if strings.Contains(buf.String(), "pw-SECRET-1") || !strings.Contains(buf.String(), "xxxxx") {
				t.Errorf("log: %s", buf.String())
			}
		}
	}
}
