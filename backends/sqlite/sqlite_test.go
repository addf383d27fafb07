package sqlite_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/backends/sqlite"
	"github.com/vellumlog/vellum/backends/storetest"
)

var ctx = context.Background()

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openStore(t *testing.T, env storetest.Env) backends.Store {
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "audit.db"), &sqlite.Options{Keys: env.Keys, Now: env.Now,
		MaxRecordSize: env.MaxRecordSize, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConformance runs the AuditStore suite against a real SQLite file.
func TestConformance(t *testing.T) {
	storetest.Run(t, openStore, storetest.Caps{})
}
