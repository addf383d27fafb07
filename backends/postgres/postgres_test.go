package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/backends/postgres"
	"github.com/vellumlog/vellum/backends/postgres/pgtest"
	"github.com/vellumlog/vellum/backends/storetest"
	"github.com/vellumlog/vellum/chain"
)

var ctx = context.Background()

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func keys() *chain.Keyring { return chain.NewKeyring(storetest.Key()) }

func openIn(t *testing.T, dsn, writer string, env storetest.Env) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(ctx, &postgres.Options{DSN: dsn, WriterID: writer, Keys: env.Keys, Now: env.Now,
		MaxRecordSize: env.MaxRecordSize, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConformance runs the AuditStore suite against a real PostgreSQL,
// each case in its own schema.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env storetest.Env) backends.Store {
		_, dsn := pgtest.Schema(t)
		return openIn(t, dsn, "writer-1", env)
	}, storetest.Caps{})
}
