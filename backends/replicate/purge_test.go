package replicate_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vellumlog/vellum/backends/postgres"
	"github.com/vellumlog/vellum/backends/postgres/pgtest"
	"github.com/vellumlog/vellum/backends/replicate"
	"github.com/vellumlog/vellum/backends/sqlite"
	"github.com/vellumlog/vellum/backends/storetest"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/layout"
)

// clock is a settable clock for the engine, safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// purgeEngine opens an engine with a fake clock, a day's retention and a
// segment per record (SegmentSize below one record: a record arriving for a
// non-empty segment seals it first).
func purgeEngine(t *testing.T, dir string, clk *clock) *engine.Engine {
	t.Helper()
	e, err := engine.Open(dir, &engine.Options{Keys: storetest.KeyRing(), Logger: quiet(), SegmentSize: 200, Now: clk.Now,
		CheckpointInterval: -1, CheckpointRecords: -1, Retention: engine.Retention{MaxAge: 24 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// appendTimeline appends n records two hours apart from t0 (three UTC
// days for n = 30), tenant acme but record 20 (seq 21), globex.
func appendTimeline(t *testing.T, e *engine.Engine, clk *clock, n int) {
	t.Helper()
	for i := range n {
		clk.Set(t0.Add(time.Duration(i) * 2 * time.Hour))
		r := record(i)
		r.TenantID = "acme"
		if i == 20 {
			r.TenantID = "globex"
		}
		if _, err := e.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
}

// wire connects engine and replicator as vellum serve does: purges keep
// what the replica has not copied, each purge is handed to the replicator,
// and so is what the manifest says was purged before.
func wire(e *engine.Engine, r *replicate.Replicator) {
	e.Retention().SetPurgeGuard(func() (uint64, string) {
		n, _ := r.Replicated()
		return n, "not yet replicated"
	})
	e.Retention().OnPurge(func(res *engine.PurgeResult) { r.Purged(res.Through()) })
	if m := e.Retention().Purged(); m != nil {
		r.Purged(m.LastSeq)
	}
}

func purgeAt(t *testing.T, e *engine.Engine, clk *clock, at time.Time) *engine.PurgeResult {
	t.Helper()
	clk.Set(at)
	res, err := e.Retention().Purge(ctx, engine.PurgeOptions{By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func waitPurged(t *testing.T, r *replicate.Replicator, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for r.PurgedSeq() < seq {
		if time.Now().After(deadline) {
			t.Fatalf("the replica's purge horizon is %d, want %d; lag %+v", r.PurgedSeq(), seq, r.Lag())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// replicaBackend is a replica database under test: how to open it, and
// its rows' seq span.
type replicaBackend struct {
	writer string
	open   func(context.Context) (replicate.Target, error)
	span   func(t *testing.T) (minSeq, maxSeq, count int64)
	dsn    string // PostgreSQL only
	path   string // SQLite only
	engine *engine.Engine
}

func sqliteBackend(t *testing.T) replicaBackend {
	path := filepath.Join(t.TempDir(), "replica.db")
	return replicaBackend{
		path: path,
		open: func(context.Context) (replicate.Target, error) {
			return sqlite.OpenReplica(path, &sqlite.ReplicaOptions{Logger: quiet()})
		},
		span: func(t *testing.T) (lo, hi, n int64) {
			t.Helper()
			if err := rawSQLite(t, path).QueryRow(`SELECT COALESCE(MIN(seq), 0), COALESCE(MAX(seq), 0), COUNT(*) FROM audit_records`).Scan(&lo, &hi, &n); err != nil {
				t.Fatal(err)
			}
			return
		},
	}
}

func postgresBackend(t *testing.T, dsn string) replicaBackend {
	return replicaBackend{
		writer: "agent-1",
		dsn:    dsn,
		open: func(ctx context.Context) (replicate.Target, error) {
			return postgres.OpenReplica(ctx, &postgres.ReplicaOptions{DSN: dsn, Logger: quiet()})
		},
		span: func(t *testing.T) (lo, hi, n int64) {
			t.Helper()
			c, err := pgx.Connect(ctx, pgtest.WithParam(pgtest.DSN(), "search_path", searchPath(dsn)))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			if err := c.QueryRow(ctx, `SELECT COALESCE(MIN(seq), 0), COALESCE(MAX(seq), 0), COUNT(*) FROM audit_records WHERE writer_id = 'agent-1'`).Scan(&lo, &hi, &n); err != nil {
				t.Fatal(err)
			}
			return
		},
	}
}

// checkSpan asserts the replica holds exactly the writer's rows after
// through, up to the engine's last record.
func checkSpan(t *testing.T, b replicaBackend, e *engine.Engine, through uint64) {
	t.Helper()
	lo, hi, n := b.span(t)
	last := e.LastSeq()
	if lo != int64(through)+1 || hi != int64(last) || n != int64(last-through) {
		t.Fatalf("replica holds seq %d..%d (%d rows), want %d..%d (%d rows): purged through %d", lo, hi, n, through+1, last, last-through, through)
	}
}

// TestReplicaPurge: the engine purges expired segments (with a fake clock)
// and the replica, SQLite and PostgreSQL, loses exactly the rows of the
// purged seqs and keeps every later one; a legal hold keeps the held
// record's segment in both; on PostgreSQL the day partition wholly within
// the purge is dropped and the straddling one keeps its later rows.
func TestReplicaPurge(t *testing.T) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run("store="+name, func(t *testing.T) {
			var b replicaBackend
			if name == "sqlite" {
				b = sqliteBackend(t)
			} else {
				_, dsn := pgtest.Schema(t)
				b = postgresBackend(t, dsn)
			}
			clk := &clock{t: t0}
			e := purgeEngine(t, t.TempDir(), clk)
			defer e.Close()
			appendTimeline(t, e, clk, 30)
			r := replicate.Start(e, b.open, &replicate.Options{Writer: b.writer, BatchSize: 7, FlushInterval: time.Millisecond,
				RetryMax: 100 * time.Millisecond, Logger: quiet()})
			defer r.Close()
			wire(e, r)
			waitCaughtUp(t, r, e)

			// At t0+54h the records before t0+30h have expired (seq
			// 1..15); seq 16's is exactly a day old at t0+54h: kept.
			res := purgeAt(t, e, clk, t0.Add(54*time.Hour))
			if res.Through() != 15 || e.FirstSeq() != 16 {
				t.Fatalf("purged through %d, engine first seq %d; want 15, 16", res.Through(), e.FirstSeq())
			}
			waitPurged(t, r, 15)
			waitCaughtUp(t, r, e) // the anchor record
			checkSpan(t, b, e, 15)
			if b.dsn != "" {
				c := pgtest.Admin(t)
				var parts []string
				rows, err := c.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
					JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 ORDER BY 1`, searchPath(b.dsn))
				if err != nil {
					t.Fatal(err)
				}
				if parts, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
					t.Fatal(err)
				}
				// Day 1 (seq 1..12) is wholly purged: dropped. Day 2
				// (seq 13..24) straddles: kept, seq 16..24 in it.
				day := func(d int) string { return "audit_records_" + t0.AddDate(0, 0, d).Format("20060102") }
				if len(parts) == 0 || parts[0] != day(1) {
					t.Fatalf("partitions after the purge %v, want the first to be %s (%s dropped)", parts, day(1), day(0))
				}
			}

			// A legal hold on globex keeps seq 21's segment, and with it
			// everything after (purges go from the front).
			if _, err := e.Retention().SetHold(ctx, layout.Hold{TenantID: "globex", Reason: "litigation"}, "test"); err != nil {
				t.Fatal(err)
			}
			waitCaughtUp(t, r, e)
			res = purgeAt(t, e, clk, t0.Add(200*time.Hour))
			if res.Through() != 20 || res.Kept == nil || len(res.Kept.Holds) == 0 {
				t.Fatalf("purge under a hold: through %d, kept %+v; want through 20, kept by the hold", res.Through(), res.Kept)
			}
			waitPurged(t, r, 20)
			waitCaughtUp(t, r, e)
			checkSpan(t, b, e, 20)
			dst, err := b.open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			for seq := uint64(21); seq <= e.LastSeq(); seq++ {
				if err := replicate.CheckSeq(ctx, e, dst, b.writer, seq, storetest.KeyRing()); err != nil {
					t.Fatalf("seq %d after the purges: %v", seq, err)
				}
			}
			// The chain that remains verifies from the purge horizon on.
			if b.dsn != "" {
				reps, err := postgres.Verify(ctx, b.dsn, storetest.KeyRing())
				if err != nil || len(reps) != 1 || reps[0].FirstSeq != 21 || reps[0].LastSeq != e.LastSeq() {
					t.Fatalf("Verify after the purges = %+v, %v", reps, err)
				}
			} else {
				rep, err := sqlite.Verify(ctx, b.path, storetest.KeyRing())
				if err != nil || rep.FirstSeq != 21 || rep.Rows != int(e.LastSeq()-20) {
					t.Fatalf("Verify after the purges = %+v, %v", rep, err)
				}
			}
		})
	}
}

func searchPath(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		panic(err)
	}
	return u.Query().Get("search_path")
}

// TestReplicaPurgeWhileDown: PostgreSQL is unreachable (a real network
// cut) when the engine purges; the replica keeps the rows meanwhile and
// applies the purge as soon as it is back.
func TestReplicaPurgeWhileDown(t *testing.T) {
	schema, dsn := pgtest.Schema(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	px := newProxy(t, u.Host)
	u.Host = px.addr()
	b := postgresBackend(t, u.String())
	_ = schema
	clk := &clock{t: t0}
	e := purgeEngine(t, t.TempDir(), clk)
	defer e.Close()
	appendTimeline(t, e, clk, 30)
	r := replicate.Start(e, b.open, &replicate.Options{Writer: b.writer, BatchSize: 7, FlushInterval: time.Millisecond,
		RetryMax: 100 * time.Millisecond, Logger: quiet()})
	defer r.Close()
	wire(e, r)
	waitCaughtUp(t, r, e)

	px.cutAndHold()
	res := purgeAt(t, e, clk, t0.Add(54*time.Hour))
	if res.Through() != 15 {
		t.Fatalf("purged through %d, want 15", res.Through())
	}
	time.Sleep(300 * time.Millisecond)
	if r.PurgedSeq() != 0 {
		t.Fatalf("purge horizon %d while the database is unreachable", r.PurgedSeq())
	}
	if lo, _, _ := b.span(t); lo != 1 { // read directly, not through the proxy
		t.Fatalf("replica's first row %d while down, want 1 (nothing applied yet)", lo)
	}
	if l := r.Lag(); l.Error == "" {
		t.Errorf("lag while down = %+v, want the error", l)
	}
	px.restore()
	waitPurged(t, r, 15)
	waitCaughtUp(t, r, e)
	checkSpan(t, b, e, 15)
}

// TestReplicaPurgeAfterRestart: the engine purges while no replicator runs
// (as `vellum purge` on a stopped server does); the next replicator, told
// the manifest's last purged seq, applies it; the horizon is kept in the
// database, so applying it again changes nothing.
func TestReplicaPurgeAfterRestart(t *testing.T) {
	b := sqliteBackend(t)
	clk := &clock{t: t0}
	dir := t.TempDir()
	e := purgeEngine(t, dir, clk)
	appendTimeline(t, e, clk, 30)
	r := replicate.Start(e, b.open, &replicate.Options{BatchSize: 7, FlushInterval: time.Millisecond, Logger: quiet()})
	waitCaughtUp(t, r, e)
	r.Close()

	res := purgeAt(t, e, clk, t0.Add(54*time.Hour))
	if res.Through() != 15 {
		t.Fatalf("purged through %d, want 15", res.Through())
	}
	e.Close()
	if lo, _, _ := b.span(t); lo != 1 {
		t.Fatalf("replica's first row %d before the restart, want 1", lo)
	}
	e = purgeEngine(t, dir, clk)
	defer e.Close()
	r = replicate.Start(e, b.open, &replicate.Options{BatchSize: 7, FlushInterval: time.Millisecond, Logger: quiet()})
	defer r.Close()
	wire(e, r)
	waitPurged(t, r, 15)
	waitCaughtUp(t, r, e)
	checkSpan(t, b, e, 15)

	// Again (a restart that finds it applied): nothing changes.
	r.Purged(15)
	r.Purged(3)
	appendTimeline(t, e, clk, 0)
	waitCaughtUp(t, r, e)
	checkSpan(t, b, e, 15)
	dst, err := b.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	cur, err := dst.Cursor(ctx, "", e.StoreID())
	if err != nil || cur.Purged != 15 {
		t.Fatalf("cursor %+v, %v; want purged 15 recorded", cur, err)
	}
}

// TestReplicaPurgeAppendOnly: after a purge, the replica is still
// append-only outside the purge path. SQLite refuses a delete above the
// recorded horizon, any update, and moving the horizon back or past the
// cursor. On PostgreSQL, replicating as the application role: the role
// may not delete, update, truncate or move the horizon itself, audit_purge
// refuses a seq beyond the cursor and a writer that is not a replica, and
// even the owner's delete above the horizon and move of it back are
// refused.
func TestReplicaPurgeAppendOnly(t *testing.T) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run("store="+name, func(t *testing.T) {
			var b replicaBackend
			var exec func(q string) error
			var stmts []struct{ q, want string }
			if name == "sqlite" {
				b = sqliteBackend(t)
				exec = func(q string) error {
					_, err := rawSQLite(t, b.path).Exec(q)
					return err
				}
				stmts = []struct{ q, want string }{
					{`DELETE FROM audit_records WHERE seq = 20`, "append-only"},
					{`DELETE FROM audit_records`, "append-only"},
					{`UPDATE audit_records SET outcome = 'success' WHERE seq = 20`, "append-only"},
					{`UPDATE audit_records SET outcome = 'success' WHERE seq = 16`, "append-only"},
					{`UPDATE audit_writers SET purged_seq = 10`, "only moves forward"},
					{`UPDATE audit_writers SET purged_seq = 100000`, "never past the replicated seq"},
				}
			} else {
				_, owner := pgtest.Schema(t)
				// The owner makes the schema; the replicator runs as the
				// application role.
				o, err := postgres.OpenReplica(ctx, &postgres.ReplicaOptions{DSN: owner, Logger: quiet()})
				if err != nil {
					t.Fatal(err)
				}
				o.Close()
				app := appRole(t)
				b = postgresBackend(t, pgtest.WithUser(owner, app, ""))
				exec = func(q string) error {
					c, err := pgx.Connect(ctx, b.dsn)
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close(ctx)
					_, err = c.Exec(ctx, q)
					return err
				}
				ownerExec := func(q string) error {
					c, err := pgx.Connect(ctx, owner)
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close(ctx)
					_, err = c.Exec(ctx, q)
					return err
				}
				defer func() {
					for _, s := range []struct{ q, want string }{
						{`DELETE FROM audit_records WHERE writer_id = 'agent-1' AND seq = 20`, "append-only"},
						{`UPDATE audit_records SET outcome = 'success' WHERE writer_id = 'agent-1' AND seq = 20`, "append-only"},
						{`UPDATE audit_writers SET purged_seq = 5 WHERE writer_id = 'agent-1'`, "only moves forward"},
						{`UPDATE audit_writers SET purged_seq = 100000 WHERE writer_id = 'agent-1'`, "never past the replicated seq"},
					} {
						if err := ownerExec(s.q); err == nil || !strings.Contains(err.Error(), s.want) {
							t.Errorf("as the owner: %s: %v, want %q", s.q, err, s.want)
						}
					}
					checkSpan(t, b, b.engine, 15)
				}()
				stmts = []struct{ q, want string }{
					{`DELETE FROM audit_records WHERE writer_id = 'agent-1' AND seq = 20`, "permission denied"},
					{`DELETE FROM audit_records`, "permission denied"},
					{`UPDATE audit_records SET outcome = 'success'`, "permission denied"},
					{`TRUNCATE audit_records`, "permission denied"},
					{`UPDATE audit_writers SET purged_seq = 30 WHERE writer_id = 'agent-1'`, "permission denied"},
					{`SELECT audit_purge('agent-1', 100000)`, "a purge through seq 100000 is refused"},
					{`SELECT audit_purge('nobody', 1)`, "not a replicated writer"},
				}
			}
			clk := &clock{t: t0}
			e := purgeEngine(t, t.TempDir(), clk)
			defer e.Close()
			b.engine = e
			appendTimeline(t, e, clk, 30)
			r := replicate.Start(e, b.open, &replicate.Options{Writer: b.writer, BatchSize: 7, FlushInterval: time.Millisecond,
				RetryMax: 100 * time.Millisecond, Logger: quiet()})
			defer r.Close()
			wire(e, r)
			waitCaughtUp(t, r, e)
			purgeAt(t, e, clk, t0.Add(54*time.Hour))
			waitPurged(t, r, 15)
			waitCaughtUp(t, r, e)
			r.Close()
			for _, s := range stmts {
				if err := exec(s.q); err == nil || !strings.Contains(err.Error(), s.want) {
					t.Errorf("%s: %v, want %q", s.q, err, s.want)
				}
			}
			// The replica's own path refuses a seq it does not hold, and
			// takes an old one as done.
			dst, err := b.open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			if err := dst.Purge(ctx, b.writer, e.LastSeq()+1); err == nil || !strings.Contains(err.Error(), "refused") {
				t.Errorf("Purge beyond the cursor = %v", err)
			}
			if err := dst.Purge(ctx, b.writer, 10); err != nil {
				t.Errorf("Purge below the horizon = %v", err)
			}
			checkSpan(t, b, e, 15)
		})
	}
}

// appRole creates a login role granted postgres.AppRole, dropped when t
// ends.
func appRole(t *testing.T) string {
	t.Helper()
	admin := pgtest.Admin(t)
	var buf [4]byte
	rand.Read(buf[:])
	name := "vt_role_" + hex.EncodeToString(buf[:])
	for _, q := range []string{"CREATE ROLE " + name + " LOGIN", "GRANT " + postgres.AppRole + " TO " + name} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), pgtest.DSN())
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		c.Exec(context.Background(), "DROP OWNED BY "+name)
		c.Exec(context.Background(), "DROP ROLE "+name)
	})
	return name
}

// TestReplicaPurgeFleet: two engines replicate into one PostgreSQL schema
// (their rows share the day partitions). A purge of one engine removes
// only its writer's rows and drops no partition the other still has rows
// in; once the other purges the same days, the wholly purged partition is
// dropped.
func TestReplicaPurgeFleet(t *testing.T) {
	_, dsn := pgtest.Schema(t)
	type server struct {
		e   *engine.Engine
		clk *clock
		r   *replicate.Replicator
	}
	var fleet []server
	for _, w := range []string{"agent-1", "agent-2"} {
		clk := &clock{t: t0}
		e := purgeEngine(t, t.TempDir(), clk)
		defer e.Close()
		appendTimeline(t, e, clk, 30)
		b := postgresBackend(t, dsn)
		r := replicate.Start(e, b.open, &replicate.Options{Writer: w, BatchSize: 7, FlushInterval: time.Millisecond,
			RetryMax: 100 * time.Millisecond, Logger: quiet()})
		defer r.Close()
		wire(e, r)
		waitCaughtUp(t, r, e)
		fleet = append(fleet, server{e, clk, r})
	}
	c := pgtest.Admin(t)
	span := func(w string) (lo, hi, n int64) {
		t.Helper()
		if err := c.QueryRow(ctx, `SELECT COALESCE(MIN(seq), 0), COALESCE(MAX(seq), 0), COUNT(*) FROM `+searchPath(dsn)+`.audit_records WHERE writer_id = $1`, w).
			Scan(&lo, &hi, &n); err != nil {
			t.Fatal(err)
		}
		return
	}
	firstPart := func() string {
		t.Helper()
		var name string
		if err := c.QueryRow(ctx, `SELECT min(c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1`, searchPath(dsn)).Scan(&name); err != nil {
			t.Fatal(err)
		}
		return name
	}
	day0 := "audit_records_" + t0.Format("20060102")

	purgeAt(t, fleet[0].e, fleet[0].clk, t0.Add(54*time.Hour))
	waitPurged(t, fleet[0].r, 15)
	waitCaughtUp(t, fleet[0].r, fleet[0].e)
	if lo, hi, n := span("agent-1"); lo != 16 || hi != int64(fleet[0].e.LastSeq()) || n != hi-15 {
		t.Fatalf("agent-1 holds %d..%d (%d rows) after its purge through 15", lo, hi, n)
	}
	if lo, hi, n := span("agent-2"); lo != 1 || hi != 30 || n != 30 {
		t.Fatalf("agent-2 holds %d..%d (%d rows): another writer's purge touched it", lo, hi, n)
	}
	if p := firstPart(); p != day0 {
		t.Fatalf("first partition %s after one writer's purge, want %s kept (agent-2's rows)", p, day0)
	}

	purgeAt(t, fleet[1].e, fleet[1].clk, t0.Add(54*time.Hour))
	waitPurged(t, fleet[1].r, 15)
	if lo, _, _ := span("agent-2"); lo != 16 {
		t.Fatalf("agent-2 starts at %d after its purge through 15", lo)
	}
	if p := firstPart(); p == day0 {
		t.Fatalf("%s still there once every writer's rows in it are purged", day0)
	}
	reps, err := postgres.Verify(ctx, dsn, storetest.KeyRing())
	if err != nil || len(reps) != 2 || reps[0].FirstSeq != 16 || reps[1].FirstSeq != 16 {
		t.Fatalf("Verify = %+v, %v", reps, err)
	}
}
