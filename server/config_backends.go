package server

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Primary stores (audit.store).
const (
	StoreSegment  = "segment"
	StoreSQLite   = "sqlite"
	StorePostgres = "postgres"
	StoreNull     = "null"
)

// Query sources (query.source).
const (
	SourceStore   = "segment"
	SourceReplica = "replica"
)

// Defaults of the backend settings.
const (
	DefaultReplicateBatch = 10000
	DefaultReplicateFlush = Duration(100 * time.Millisecond)
)

// nullStore sets audit.store to "null" when the YAML says `store: null`,
// which YAML reads as no value: it must not silently mean the default.
func nullStore(text []byte, c *ServerConfig) {
	var root yaml.Node
	if yaml.Unmarshal(text, &root) != nil || len(root.Content) == 0 {
		return
	}
	lookup := func(n *yaml.Node, key string) *yaml.Node {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i+1]
			}
		}
		return nil
	}
	if v := lookup(lookup(root.Content[0], "audit"), "store"); v != nil && v.Kind == yaml.ScalarNode && v.Tag == "!!null" && v.Value == "null" {
		c.Audit.Store = StoreNull
	}
}

// SQLiteConfig is the SQLite primary store (audit.sqlite).
type SQLiteConfig struct {
	// Path is the database file, created if missing.
	Path string `yaml:"path"`
}

// PostgresConfig is the PostgreSQL primary store (audit.postgres).
type PostgresConfig struct {
	// DSN is the database URL; ${VAR} substitution keeps the password out
	// of the file. Logged without its password.
	DSN string `yaml:"dsn"`
	// DSNEnv names an environment variable holding the DSN instead.
	DSNEnv string `yaml:"dsn_env"`
	// WriterID names this server's chain in the database; default the
	// host name. Each server of a fleet needs its own.
	WriterID string `yaml:"writer_id"`
}

// ReplicateConfig copies the segment engine's records, summarized, into a
// SQL database (audit.replicate).
type ReplicateConfig struct {
	// Backend is sqlite or postgres; empty turns replication off.
	Backend string `yaml:"backend"`
	// Path is the SQLite file (backend sqlite).
	Path string `yaml:"path"`
	// DSN is the PostgreSQL URL (backend postgres), or DSNEnv the
	// variable holding it.
	DSN    string `yaml:"dsn"`
	DSNEnv string `yaml:"dsn_env"`
	// WriterID names this server's rows in a shared database; default
	// the host name. Each server of a fleet needs its own.
	WriterID string `yaml:"writer_id"`
	// IncludeArguments keeps the (already redacted) tool arguments as
	// JSON; otherwise only their SHA-256 and size.
	IncludeArguments bool `yaml:"include_arguments"`
	// BatchSize bounds the records per transaction (default 10,000).
	BatchSize int `yaml:"batch_size"`
	// FlushInterval is the longest a record waits for its batch to fill
	// (default 100ms).
	FlushInterval Duration `yaml:"flush_interval"`
}

// QueryConfig says where GET /v1/audit reads from.
type QueryConfig struct {
	// Source is segment (the store itself, default) or replica (the
	// audit.replicate database: with PostgreSQL, every server of the
	// fleet).
	Source string `yaml:"source"`
}

func (c *ServerConfig) setBackendDefaults() {
	setDefault(&c.Audit.Store, StoreSegment)
	setDefault(&c.Query.Source, SourceStore)
	r := &c.Audit.Replicate
	if r.Backend != "" {
		setDefault(&r.BatchSize, DefaultReplicateBatch)
		setDefault(&r.FlushInterval, DefaultReplicateFlush)
	}
}

var writerIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

func (c *ServerConfig) validateBackends() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrConfig, key, fmt.Sprintf(format, args...))
	}
	a := &c.Audit
	switch a.Store {
	case StoreSegment, StoreNull:
	case StoreSQLite:
		if a.SQLite.Path == "" {
			return bad("audit.sqlite.path", "is required with audit.store: sqlite (the database file)")
		}
	case StorePostgres:
		if err := checkDSN("audit.postgres", a.Postgres.DSN, a.Postgres.DSNEnv); err != nil {
			return err
		}
		if a.Postgres.WriterID != "" && !writerIDRE.MatchString(a.Postgres.WriterID) {
			return bad("audit.postgres.writer_id", "%q is not 1 to 128 letters, digits, '.', '_', ':' or '-'", a.Postgres.WriterID)
		}
	default:
		return bad("audit.store", "%q is not segment, sqlite, postgres or null", a.Store)
	}
	if a.Store != StoreSQLite && a.SQLite != (SQLiteConfig{}) {
		return bad("audit.sqlite", "is set, but audit.store is %s; set audit.store: sqlite or remove it", a.Store)
	}
	if a.Store != StorePostgres && a.Postgres != (PostgresConfig{}) {
		return bad("audit.postgres", "is set, but audit.store is %s; set audit.store: postgres or remove it", a.Store)
	}
	if a.Store != StoreSegment && a.Preallocate != nil && *a.Preallocate {
		return bad("audit.preallocate", "preallocates segment files, but audit.store is %s; remove it", a.Store)
	}
	if a.Store != StoreSegment {
		// The segment engine's own settings would do nothing on another
		// store: refuse them rather than accept them silently.
		for _, f := range []struct {
			key, does string
			set       bool
		}{
			{"audit.compression", "compresses segment blocks", a.Compression != DefaultCompression},
			{"audit.signing_key_file", "signs the segment engine's Merkle checkpoints", a.SigningKeyFile != ""},
			{"audit.checkpoint", "sets how often the segment engine signs a checkpoint",
				a.Checkpoint != CheckpointConfig{EveryRecords: DefaultCheckpointRecs, Every: DefaultCheckpointAge}},
		} {
			if f.set {
				return bad(f.key, "%s, but audit.store is %s, which has none; remove it", f.does, a.Store)
			}
		}
	}
	r := &a.Replicate
	switch r.Backend {
	case "":
		if *r != (ReplicateConfig{}) {
			return bad("audit.replicate.backend", "is required when audit.replicate is set (sqlite or postgres)")
		}
	case StoreSQLite, StorePostgres:
		if a.Store != StoreSegment {
			return bad("audit.replicate", "replicates the segment engine, but audit.store is %s (already SQL, or nothing); remove audit.replicate", a.Store)
		}
		if r.Backend == StoreSQLite {
			if r.Path == "" {
				return bad("audit.replicate.path", "is required with backend sqlite (the replica's file)")
			}
			if r.DSN != "" || r.DSNEnv != "" {
				return bad("audit.replicate.dsn", "is for backend postgres; backend sqlite takes path")
			}
		} else {
			if r.Path != "" {
				return bad("audit.replicate.path", "is for backend sqlite; backend postgres takes dsn")
			}
			if err := checkDSN("audit.replicate", r.DSN, r.DSNEnv); err != nil {
				return err
			}
		}
		if r.WriterID != "" && !writerIDRE.MatchString(r.WriterID) {
			return bad("audit.replicate.writer_id", "%q is not 1 to 128 letters, digits, '.', '_', ':' or '-'", r.WriterID)
		}
		if r.BatchSize < 1 || r.BatchSize > 100_000 {
			return bad("audit.replicate.batch_size", "%d is not between 1 and 100000", r.BatchSize)
		}
		if r.FlushInterval <= 0 || time.Duration(r.FlushInterval) > time.Minute {
			return bad("audit.replicate.flush_interval", "%s is not between 1ms and 1m", r.FlushInterval)
		}
	default:
		return bad("audit.replicate.backend", "%q is not sqlite or postgres", r.Backend)
	}
	switch c.Query.Source {
	case SourceStore:
	case SourceReplica:
		if r.Backend == "" {
			return bad("query.source", "replica needs audit.replicate (the database to read from)")
		}
	default:
		return bad("query.source", "%q is not segment or replica", c.Query.Source)
	}
	return nil
}

func checkDSN(key, dsn, env string) error {
	switch {
	case dsn == "" && env == "":
		return fmt.Errorf("%w: %s.dsn: is required (postgres://user:password@host:5432/db; ${VAR} keeps the password out of the file), or set %s.dsn_env", ErrConfig, key, key)
	case dsn != "" && env != "":
		return fmt.Errorf("%w: %s.dsn_env: set only one of %s.dsn and %s.dsn_env", ErrConfig, key, key, key)
	case env != "" && !envNameRE.MatchString(env):
		return fmt.Errorf("%w: %s.dsn_env: %q is not an environment variable name", ErrConfig, key, env)
	}
	if dsn != "" && strings.Contains(dsn, "://") {
		if _, err := url.Parse(dsn); err != nil {
			return fmt.Errorf("%w: %s.dsn: is not a URL (postgres://user:password@host:5432/db)", ErrConfig, key)
		}
	}
	return nil
}

// PostgresDSN returns the primary store's DSN, from audit.postgres.dsn or
// the variable audit.postgres.dsn_env names.
func (c *ServerConfig) PostgresDSN(lookup func(string) (string, bool)) (string, error) {
	return dsnFrom("audit.postgres", c.Audit.Postgres.DSN, c.Audit.Postgres.DSNEnv, lookup)
}

// ReplicateDSN returns the replica's DSN (backend postgres).
func (c *ServerConfig) ReplicateDSN(lookup func(string) (string, bool)) (string, error) {
	return dsnFrom("audit.replicate", c.Audit.Replicate.DSN, c.Audit.Replicate.DSNEnv, lookup)
}

func dsnFrom(key, dsn, env string, lookup func(string) (string, bool)) (string, error) {
	if env == "" {
		return dsn, nil
	}
	if lookup == nil {
		lookup = os.LookupEnv
	}
	v, ok := lookup(env)
	if !ok || v == "" {
		return "", fmt.Errorf("%w: %s.dsn_env: the variable %s is not set", ErrConfig, key, env)
	}
	return v, nil
}

// WriterID returns the writer id configured in key's writer_id, or the
// host name.
func writerID(configured string) string {
	if configured != "" {
		return configured
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "vellum"
	}
	return h
}

// PostgresWriterID is the primary PostgreSQL store's writer id.
func (c *ServerConfig) PostgresWriterID() string { return writerID(c.Audit.Postgres.WriterID) }

// ReplicateWriterID is this server's writer id in the replica.
func (c *ServerConfig) ReplicateWriterID() string { return writerID(c.Audit.Replicate.WriterID) }

// redactDSN hides a DSN's password for logs.
func redactDSN(dsn string) string {
	if dsn == "" {
		return ""
	}
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		if u.User != nil {
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			}
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	if strings.Contains(dsn, "://") {
		return "(a DSN that is not a URL)"
	}
	f := strings.Fields(dsn)
	for i := range f {
		if strings.HasPrefix(f[i], "password=") {
			f[i] = "password=xxxxx"
		}
	}
	return strings.Join(f, " ")
}

// backendLogAttrs describes the backend settings for logs, DSNs without
// passwords.
func (c *ServerConfig) backendLogAttrs() []any {
	a := c.Audit
	attrs := []any{slog.String("store", a.Store)}
	switch a.Store {
	case StoreSQLite:
		attrs = append(attrs, slog.String("sqlite_path", a.SQLite.Path))
	case StorePostgres:
		attrs = append(attrs, slog.String("postgres_dsn", redactDSN(a.Postgres.DSN)), slog.String("postgres_dsn_env", a.Postgres.DSNEnv),
			slog.String("postgres_writer_id", a.Postgres.WriterID))
	}
	if r := a.Replicate; r.Backend != "" {
		attrs = append(attrs, slog.Group("replicate",
			slog.String("backend", r.Backend), slog.String("path", r.Path), slog.String("dsn", redactDSN(r.DSN)),
			slog.String("dsn_env", r.DSNEnv), slog.String("writer_id", r.WriterID), slog.Bool("include_arguments", r.IncludeArguments),
			slog.Int("batch_size", r.BatchSize), slog.String("flush_interval", r.FlushInterval.String())))
	}
	return attrs
}
