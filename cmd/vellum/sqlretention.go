package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/query"
	"github.com/vellumlog/vellum/server"
)

// Retention on a SQL primary store (docs/retention.md): the same horizon
// as the segment store's, now minus the longest period that applies
// (audit.retention.max_age or a longer tenant period: a time horizon
// removes every tenant's rows alike), applied through the stores'
// append-only-safe paths: SQLite deletes below its guarded horizon,
// PostgreSQL drops whole day partitions. A retention.purge record naming
// the horizon is appended, durable, before anything is deleted.

// sqlExpirer is the SQLite store's retention path.
type sqlExpirer interface {
	ExpireBefore(ctx context.Context, t time.Time) (int64, error)
}

// pgDropper is the PostgreSQL store's.
type pgDropper interface {
	DropPartitionsBefore(ctx context.Context, t time.Time) ([]string, error)
}

type sqlRetentionStore interface {
	Append(ctx context.Context, recs ...vellum.Record) ([]uint64, error)
	Query(ctx context.Context, q query.Query) (query.Page, error)
}

// longestRetention is the period a time horizon must keep.
func longestRetention(r *server.RetentionConfig) time.Duration {
	d := time.Duration(r.MaxAge)
	for _, t := range r.Tenants {
		d = max(d, time.Duration(t))
	}
	return d
}

// startSQLRetention purges the SQL store every purge_every until ctx ends;
// the returned function stops it and waits.
func startSQLRetention(ctx context.Context, cfg *server.ServerConfig, store sqlRetentionStore, log *slog.Logger) func() {
	r := &cfg.Audit.Retention
	if r.MaxAge <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Duration(r.PurgeEvery))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := sqlPurge(ctx, store, time.Now().Add(-longestRetention(r)), log); err != nil && ctx.Err() == nil {
					log.Error("scheduled purge failed", slog.String("store", cfg.Audit.Store), slog.String("error", err.Error()))
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// sqlPurge removes the records received before horizon, when there are
// any, after appending the retention.purge record that names it.
func sqlPurge(ctx context.Context, store sqlRetentionStore, horizon time.Time, log *slog.Logger) error {
	q := query.Query{Until: horizon, Limit: 1}
	if err := q.Normalize(); err != nil {
		return err
	}
	page, err := store.Query(ctx, q)
	if err != nil || len(page.Records) == 0 {
		return err
	}
	h := horizon.UTC().Format(time.RFC3339Nano)
	anchor := vellum.Record{Service: "vellum", UserID: "schedule", Action: engine.ActionPurge,
		Outcome:    vellum.Outcome{Status: vellum.StatusSuccess, Reason: "records received before " + h + " expire (audit.retention)"},
		Attributes: map[string]string{"retention.horizon": h}}
	seqs, err := store.Append(ctx, anchor)
	if err != nil {
		return fmt.Errorf("append the anchor record: %w", err)
	}
	switch s := store.(type) {
	case sqlExpirer:
		n, err := s.ExpireBefore(ctx, horizon)
		if err != nil {
			return err
		}
		log.Info("purged expired records", slog.Int64("rows", n), slog.String("horizon", h), slog.Uint64("anchor_seq", seqs[0]))
	case pgDropper:
		parts, err := s.DropPartitionsBefore(ctx, horizon)
		if err != nil {
			return err
		}
		log.Info("dropped expired partitions", slog.String("partitions", strings.Join(parts, ",")), slog.String("horizon", h), slog.Uint64("anchor_seq", seqs[0]))
	default:
		return fmt.Errorf("this store has no retention path")
	}
	return nil
}
