package postgres

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/backends/postgres/pgtest"
	"github.com/vellumlog/vellum/backends/storetest"
	"github.com/vellumlog/vellum/chain"
)

// TestMigrateToV2: a schema made by version 1 with rows in two day
// partitions is brought to version 2 (the replica purge horizon) on open:
// the rows still verify, the append-only triggers are in place on the
// existing partitions, and the store goes on writing.
func TestMigrateToV2(t *testing.T) {
	ctx := context.Background()
	_, dsn := pgtest.Schema(t)
	all := migrations
	migrations, SchemaVersion = all[:1], 1
	restored := false
	restore := func() {
		if !restored {
			migrations, SchemaVersion, restored = all, len(all), true
		}
	}
	defer restore()
	var now atomic.Int64
	now.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	keys := chain.NewKeyring(storetest.Key())
	opts := &Options{DSN: dsn, WriterID: "w1", Keys: keys, Now: func() time.Time { return time.Unix(0, now.Load()) }, Logger: slog.New(slog.DiscardHandler)}
	s, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		now.Add(int64(12 * time.Hour))
		if _, err := s.Append(ctx, vellum.Record{Action: "tool.call", Outcome: vellum.Outcome{Status: vellum.StatusSuccess}, EventID: string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	restore()
	s, err = Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(ctx, vellum.Record{Action: "tool.call", Outcome: vellum.Outcome{Status: vellum.StatusSuccess}}); err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var v int
	if err := c.QueryRow(ctx, `SELECT max(version) FROM audit_migrations`).Scan(&v); err != nil || v != 2 {
		t.Fatalf("schema version %d, %v", v, err)
	}
	for _, q := range []string{
		`DELETE FROM audit_records WHERE seq = 1`,
		`UPDATE audit_records SET outcome = 'x' WHERE seq = 2`,
		`UPDATE audit_writers SET purged_seq = 1`, // a primary writer has no purge horizon
		`SELECT audit_purge('w1', 1)`,
	} {
		if _, err := c.Exec(ctx, q); err == nil || (!strings.Contains(err.Error(), "append-only") && !strings.Contains(err.Error(), "only for a replica") && !strings.Contains(err.Error(), "not a replicated writer")) {
			t.Errorf("%s: %v", q, err)
		}
	}
	reps, err := Verify(ctx, dsn, keys)
	if err != nil || len(reps) != 1 || reps[0].Rows != 5 {
		t.Fatalf("Verify after the migration = %+v, %v", reps, err)
	}
}
