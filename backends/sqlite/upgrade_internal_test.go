package sqlite

import (
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/backends/storetest"
	"github.com/vellumlog/vellum/chain"
)

// TestMigrateToV2: a file made by schema version 1, with rows, is brought
// to version 2 (the replica purge horizon) on open: the rows still verify,
// the append-only triggers hold, and the store goes on writing.
func TestMigrateToV2(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	all := migrations
	migrations, SchemaVersion = all[:1], 1
	restored := false
	restore := func() {
		if !restored {
			migrations, SchemaVersion, restored = all, len(all), true
		}
	}
	defer restore()
	keys := chain.NewKeyring(storetest.Key())
	opts := &Options{Keys: keys, Logger: slog.New(slog.DiscardHandler)}
	rec := vellum.Record{Action: "tool.call", Outcome: vellum.Outcome{Status: vellum.StatusSuccess}}
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if _, err := s.Append(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	restore()
	s, err = Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(ctx, rec); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow(`SELECT max(version) FROM audit_migrations`).Scan(&v); err != nil || v != 2 {
		t.Fatalf("schema version %d, %v", v, err)
	}
	for _, q := range []string{
		`DELETE FROM audit_records WHERE seq = 1`,
		`UPDATE audit_records SET outcome = 'x' WHERE seq = 2`,
		`UPDATE audit_writers SET purged_seq = 1`, // a primary store has no purge horizon
	} {
		if _, err := db.Exec(q); err == nil || (!strings.Contains(err.Error(), "append-only") && !strings.Contains(err.Error(), "only for a replica")) {
			t.Errorf("%s: %v", q, err)
		}
	}
	if rep, err := s.Verify(ctx, keys); err != nil || rep.Rows != 5 {
		t.Fatalf("Verify after the migration = %+v, %v", rep, err)
	}
}
