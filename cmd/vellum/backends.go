package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/backends/null"
	"github.com/vellumlog/vellum/backends/postgres"
	"github.com/vellumlog/vellum/backends/replicate"
	"github.com/vellumlog/vellum/backends/sqlite"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/metrics"
	"github.com/vellumlog/vellum/query"
	"github.com/vellumlog/vellum/redact"
	"github.com/vellumlog/vellum/server"
)

// openPrimary opens the SQL or null primary store of audit.store.
func openPrimary(ctx context.Context, cfg *server.ServerConfig, keys *chain.Keyring, red *redact.Redactor, log *slog.Logger) (backends.Store, error) {
	switch cfg.Audit.Store {
	case server.StoreNull:
		return null.Open(log, int(cfg.Audit.MaxRecordSize)), nil
	case server.StoreSQLite:
		return sqlite.Open(cfg.Audit.SQLite.Path, &sqlite.Options{Keys: keys, Redactor: red,
			MaxRecordSize: int(cfg.Audit.MaxRecordSize), Logger: log})
	case server.StorePostgres:
		dsn, err := cfg.PostgresDSN(os.LookupEnv)
		if err != nil {
			return nil, err
		}
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return postgres.Open(octx, &postgres.Options{DSN: dsn, WriterID: cfg.PostgresWriterID(), Keys: keys, Redactor: red,
			MaxRecordSize: int(cfg.Audit.MaxRecordSize), Logger: log})
	}
	return nil, fmt.Errorf("audit.store %q is not a SQL store", cfg.Audit.Store)
}

// serveSQL runs the server on a primary store other than the segment
// engine, on the listener serve bound, until ctx ends: the same steps as
// serve after the store is open (first-run token, token watching, graceful
// stop).
func serveSQL(ctx context.Context, cfg *server.ServerConfig, keys *chain.Keyring, red *redact.Redactor, stored []server.StoredToken,
	l, ml net.Listener, ready chan<- string, stdout io.Writer, log *slog.Logger) error {
	store, err := openPrimary(ctx, cfg, keys, red, log)
	if err != nil {
		return err
	}
	var firstToken string
	if needsFirstToken(cfg, stored) {
		if firstToken, err = server.GenerateToken(); err != nil {
			store.Close()
			return err
		}
		stored = append(stored, server.StoredToken{Name: "admin", Role: server.RoleAdmin, TokenSHA256: server.HashToken(firstToken),
			Created: time.Now().UTC().Truncate(time.Second)})
	}
	// Metrics: the server's own series (requests, ingest, disk); the
	// engine's exist only with audit.store segment.
	srv, err := server.New(cfg, store, &server.Options{Logger: log, CursorKey: keys.Active().Derive(query.CursorKeyLabel), StoredTokens: stored,
		Metrics: metrics.New(nil)})
	if err != nil {
		store.Close()
		return err
	}
	if firstToken != "" {
		if err := server.SaveStoredTokens(cfg.DataDir, stored); err != nil {
			store.Close()
			return err
		}
		page, _ := store.Query(ctx, query.Query{Limit: 1})
		printFirstToken(stdout, firstToken, cfg.DataDir, len(page.Records) == 0)
		log.Info("created an admin token", slog.String("tokens_file", filepath.Join(cfg.DataDir, server.TokenFileName)))
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go watchTokens(watchCtx, srv, cfg.DataDir, log)
	stopRetention := startSQLRetention(ctx, cfg, store, log)                                       // audit.retention (sqlretention.go)
	serveErr := runServer(ctx, cfg, srv, l, ml, ready, log, slog.String("store", cfg.Audit.Store)) // serveops.go
	stopWatch()
	stopRetention()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && serveErr == nil {
		serveErr = err
	}
	if err := store.Close(); err != nil && serveErr == nil {
		serveErr = err
	}
	log.Info("stopped")
	return serveErr
}

// replication is audit.replicate running beside the engine: the
// replicator, and the replica database GET /v1/audit reads when
// query.source is replica. Its methods accept a nil receiver (no
// replication).
type replication struct {
	r     *replicate.Replicator
	list  *lazyReplica
	close sync.Once
}

// openTarget returns the function that opens audit.replicate's database.
func openTarget(cfg *server.ServerConfig, log *slog.Logger) (func(context.Context) (replicate.Target, error), error) {
	rc := cfg.Audit.Replicate
	switch rc.Backend {
	case server.StoreSQLite:
		return func(context.Context) (replicate.Target, error) {
			return sqlite.OpenReplica(rc.Path, &sqlite.ReplicaOptions{Logger: log})
		}, nil
	case server.StorePostgres:
		dsn, err := cfg.ReplicateDSN(os.LookupEnv)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) (replicate.Target, error) {
			return postgres.OpenReplica(ctx, &postgres.ReplicaOptions{DSN: dsn, Logger: log})
		}, nil
	}
	return nil, nil
}

// startReplication starts audit.replicate for eng (nil when not
// configured). A database that answers but cannot be used (a newer schema,
// another engine's rows) stops the start; one that does not answer is
// retried in the background while the engine serves.
func startReplication(ctx context.Context, cfg *server.ServerConfig, eng *engine.Engine, log *slog.Logger) (*replication, error) {
	open, err := openTarget(cfg, log)
	if err != nil || open == nil {
		return nil, err
	}
	rc := cfg.Audit.Replicate
	writer := cfg.ReplicateWriterID()
	if rc.Backend == server.StoreSQLite && rc.WriterID == "" {
		writer = "" // one engine per SQLite replica
	}
	// One attempt now, to refuse a configuration that cannot work.
	octx, cancel := context.WithTimeout(ctx, 15*time.Second)
	t, err := open(octx)
	if err == nil {
		_, err = t.Cursor(octx, writer, eng.StoreID())
		t.Close()
	}
	cancel()
	switch {
	case errors.Is(err, backends.ErrSchema):
		return nil, fmt.Errorf("audit.replicate: %w", err)
	case err != nil:
		log.Warn("audit.replicate: the replica database is not available now; the engine serves and replication retries in the background",
			slog.String("error", err.Error()))
	}
	r := replicate.Start(eng, open, &replicate.Options{Writer: writer, IncludeArguments: rc.IncludeArguments,
		BatchSize: rc.BatchSize, FlushInterval: time.Duration(rc.FlushInterval), Logger: log})
	log.Info("replicating", slog.String("backend", rc.Backend), slog.String("writer", writer),
		slog.Bool("include_arguments", rc.IncludeArguments))
	rep := &replication{r: r}
	if cfg.Query.Source == server.SourceReplica {
		rep.list = &lazyReplica{open: open}
	}
	return rep, nil
}

// status returns what /readyz reports (nil without replication).
func (r *replication) status() server.ReplicaStatus {
	if r == nil {
		return nil
	}
	return r.r
}

// lister returns the replica GET /v1/audit reads (nil unless
// query.source is replica).
func (r *replication) lister() server.Lister {
	if r == nil || r.list == nil {
		return nil
	}
	return r.list
}

// Close stops replicating and closes the databases.
func (r *replication) Close() error {
	if r == nil {
		return nil
	}
	var err error
	r.close.Do(func() {
		err = r.r.Close()
		if r.list != nil {
			r.list.Close()
		}
	})
	return err
}

// lazyReplica opens the replica for reading on first use, and again after
// it failed to.
type lazyReplica struct {
	open func(context.Context) (replicate.Target, error)
	mu   sync.Mutex
	t    replicate.Target
}

func (l *lazyReplica) target(ctx context.Context) (replicate.Target, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.t == nil {
		t, err := l.open(ctx)
		if err != nil {
			if errors.Is(err, backends.ErrUnavailable) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %w", backends.ErrUnavailable, err)
		}
		l.t = t
	}
	return l.t, nil
}

func (l *lazyReplica) Query(ctx context.Context, q query.Query) (query.Page, error) {
	t, err := l.target(ctx)
	if err != nil {
		return query.Page{}, err
	}
	return t.(server.Lister).Query(ctx, q)
}

// LastSeq is the replica's high-water mark for cursors (0 while it cannot
// be opened).
func (l *lazyReplica) LastSeq() uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t, err := l.target(ctx)
	if err != nil {
		return 0
	}
	if ls, ok := t.(interface{ LastSeq() uint64 }); ok {
		return ls.LastSeq()
	}
	return 0
}

func (l *lazyReplica) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.t != nil {
		l.t.Close()
	}
}

var _ io.Closer = (*replication)(nil)
