package replicate_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/backends/postgres"
	"github.com/vellumlog/vellum/backends/postgres/pgtest"
	"github.com/vellumlog/vellum/backends/replicate"
	"github.com/vellumlog/vellum/backends/sqlite"
	"github.com/vellumlog/vellum/backends/storetest"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/query"
)

var ctx = context.Background()

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openEngine(t *testing.T, dir string) *engine.Engine {
	t.Helper()
	e, err := engine.Open(dir, &engine.Options{Keys: storetest.KeyRing(), Logger: quiet(), SegmentSize: 64 << 10,
		CheckpointInterval: -1, CheckpointRecords: -1})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// record returns a record with large arguments and a large attribute
// every few records, so summaries leave things out.
func record(i int) vellum.Record {
	r := storetest.Full(i)
	r.EventID = fmt.Sprintf("r-%d", i)
	r.TenantID = []string{"acme", "globex"}[i%2]
	if i%3 == 0 {
		r.Attributes = map[string]string{"small": "v"}
	}
	if i%5 == 0 {
		r.Tool.Arguments = nil
	}
	return r
}

func appendN(t *testing.T, e *engine.Engine, from, n int) {
	t.Helper()
	for i := from; i < from+n; i += 10 {
		recs := make([]vellum.Record, 0, 10)
		for j := i; j < min(i+10, from+n); j++ {
			recs = append(recs, record(j))
		}
		if _, err := e.Append(ctx, recs...); err != nil {
			t.Fatal(err)
		}
	}
}

func waitCaughtUp(t *testing.T, r *replicate.Replicator, e *engine.Engine) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := r.WaitFor(c, e.LastSeq()); err != nil {
		t.Fatalf("replica did not catch up to %d: %v (lag %+v)", e.LastSeq(), err, r.Lag())
	}
	if l := r.Lag(); l.Records != 0 {
		t.Fatalf("lag %+v after catching up", l)
	}
}

// checkAll compares every engine record with its row.
func checkAll(t *testing.T, e *engine.Engine, dst replicate.Target, writer string) {
	t.Helper()
	for seq := uint64(1); seq <= e.LastSeq(); seq++ {
		if err := replicate.CheckSeq(ctx, e, dst, writer, seq, storetest.KeyRing()); err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
	}
}

// TestSQLite replicates into a SQLite file, stops and starts again (the
// cursor resumes exactly), and checks every row against its segment record.
func TestSQLite(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, filepath.Join(dir, "data"))
	defer e.Close()
	path := filepath.Join(dir, "replica.db")
	open := func(ctx context.Context) (replicate.Target, error) {
		return sqlite.OpenReplica(path, &sqlite.ReplicaOptions{Logger: quiet()})
	}
	appendN(t, e, 0, 500)
	r := replicate.Start(e, open, &replicate.Options{BatchSize: 64, Logger: quiet()})
	waitCaughtUp(t, r, e)
	r.Close()
	appendN(t, e, 500, 300)
	r = replicate.Start(e, open, &replicate.Options{BatchSize: 64, Logger: quiet()})
	appendN(t, e, 800, 200) // while it tails
	waitCaughtUp(t, r, e)
	r.Close()

	dst, err := sqlite.OpenReplica(path, &sqlite.ReplicaOptions{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	checkAll(t, e, dst, "")
	// Rows name their segments: from 1, never decreasing, up to the last
	// segment file.
	nums, err := layout.ListSegments(nil, e.Dir())
	if err != nil {
		t.Fatal(err)
	}
	prevSeg := int64(1)
	for seq := uint64(1); seq <= e.LastSeq(); seq++ {
		row, err := dst.Row(ctx, "", seq)
		if err != nil {
			t.Fatal(err)
		}
		if row.Segment < prevSeg || row.Segment > int64(nums[len(nums)-1]) || seq == 1 && row.Segment != 1 {
			t.Fatalf("seq %d: segment %d after %d (segments 1..%d)", seq, row.Segment, prevSeg, nums[len(nums)-1])
		}
		prevSeg = row.Segment
	}
	if len(nums) < 2 || prevSeg != int64(nums[len(nums)-1]) {
		t.Errorf("%d segments, last row in segment %d", len(nums), prevSeg)
	}
	// Summaries leave the arguments and the long attribute out.
	page, err := dst.Query(ctx, query.Query{TenantID: "acme", Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 5 {
		t.Fatalf("%d records", len(page.Records))
	}
	for _, rec := range page.Records {
		if rec.Tool.Arguments != nil || rec.Attributes["long"] != "" {
			t.Errorf("seq %d: a summary keeps arguments %s / long %q", rec.Seq, rec.Tool.Arguments, rec.Attributes["long"])
		}
		if rec.Attributes["vellum.segment"] == "" {
			t.Errorf("seq %d: no segment", rec.Seq)
		}
	}
	// A changed row is caught by the check, naming the column.
	raw := rawSQLite(t, path)
	for _, q := range []string{`DROP TRIGGER audit_records_no_update`, `UPDATE audit_records SET user_id = 'mallory' WHERE seq = 77`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	err = replicate.CheckSeq(ctx, e, dst, "", 77, storetest.KeyRing())
	var bad *backends.BadRowError
	if !errors.As(err, &bad) || bad.Seq != 77 || !strings.Contains(bad.Reason, "user_id") {
		t.Errorf("CheckSeq of a changed row = %v", err)
	}
}

// TestAnotherEngineRefused: a replica holding one engine's rows is not
// continued by another engine under the same writer id.
func TestAnotherEngineRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "replica.db")
	open := func(ctx context.Context) (replicate.Target, error) {
		return sqlite.OpenReplica(path, &sqlite.ReplicaOptions{Logger: quiet()})
	}
	e1 := openEngine(t, filepath.Join(dir, "a"))
	appendN(t, e1, 0, 20)
	r := replicate.Start(e1, open, &replicate.Options{Logger: quiet()})
	waitCaughtUp(t, r, e1)
	r.Close()
	e1.Close()
	e2 := openEngine(t, filepath.Join(dir, "b"))
	defer e2.Close()
	appendN(t, e2, 0, 20)
	r = replicate.Start(e2, open, &replicate.Options{Logger: quiet()})
	defer r.Close()
	deadline := time.Now().Add(10 * time.Second)
	for r.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "one SQLite replica holds one engine") {
		t.Errorf("Err = %v", err)
	}
	if l := r.Lag(); !l.Stopped || l.Records != 20 {
		t.Errorf("Lag = %+v", l)
	}
}

// TestPostgresConnectionCut replicates into PostgreSQL through a proxy,
// cuts the connection mid-stream (and, separately, has the server kill the
// backend), while appends go on: the engine never stops acknowledging, the
// lag shows in records and seconds, and once the network is back the
// replica catches up with no gap, no duplicate, every row equal to its
// segment record.
func TestPostgresConnectionCut(t *testing.T) {
	schema, dsn := pgtest.Schema(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	px := newProxy(t, u.Host)
	u.Host = px.addr()
	app := "vt_repl_" + schema
	viaProxy := pgtest.WithParam(u.String(), "application_name", app)
	now := time.Now()
	e := openEngine(t, t.TempDir())
	defer e.Close()
	open := func(ctx context.Context) (replicate.Target, error) {
		return postgres.OpenReplica(ctx, &postgres.ReplicaOptions{DSN: viaProxy, Logger: quiet()})
	}
	r := replicate.Start(e, open, &replicate.Options{Writer: "agent-1", BatchSize: 100, IncludeArguments: true,
		RetryMax: 200 * time.Millisecond, Logger: quiet(), Now: func() time.Time { return time.Now() }})
	defer r.Close()

	var acked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i += 10 {
			select {
			case <-stop:
				return
			default:
			}
			recs := make([]vellum.Record, 10)
			for j := range recs {
				recs[j] = record(i + j)
			}
			if _, err := e.Append(ctx, recs...); err != nil {
				t.Errorf("the engine stopped acknowledging: %v", err)
				return
			}
			acked.Add(10)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; lag %+v", what, r.Lag())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("rows to flow", func() bool { cur, _ := r.Replicated(); return cur > 200 })

	// The network goes away for a while.
	px.cutAndHold()
	before := acked.Load()
	waitFor("appends during the cut", func() bool { return acked.Load() > before+300 })
	time.Sleep(300 * time.Millisecond)
	lag := r.Lag()
	if lag.Records == 0 || lag.Seconds <= 0 || lag.Error == "" {
		t.Errorf("lag during the cut = %+v, want records, seconds and the error", lag)
	}
	t.Logf("lag during the cut: %d records, %.2f s (%s)", lag.Records, lag.Seconds, lag.Error)
	px.restore()
	waitFor("catching up", func() bool { cur, _ := r.Replicated(); return cur > uint64(before)+300 })

	// The server kills the replicator's backend mid-stream.
	admin := pgtest.Admin(t)
	killed := 0
	for range 3 {
		time.Sleep(50 * time.Millisecond)
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n); err != nil {
			t.Fatal(err)
		}
		killed += n
	}
	if killed == 0 {
		t.Error("no backend of the replicator was found to kill")
	}
	close(stop)
	wg.Wait()
	waitCaughtUp(t, r, e)
	if int64(e.LastSeq()) != acked.Load() {
		t.Fatalf("engine holds %d records, %d acknowledged", e.LastSeq(), acked.Load())
	}
	dst, err := postgres.OpenReplica(ctx, &postgres.ReplicaOptions{DSN: dsn, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	var rows, distinct, minSeq, maxSeq int64
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM audit_records WHERE writer_id = 'agent-1'`).
		Scan(&rows, &distinct, &minSeq, &maxSeq); err != nil {
		t.Fatal(err)
	}
	if rows != acked.Load() || distinct != rows || minSeq != 1 || maxSeq != rows {
		t.Fatalf("rows %d (distinct %d, seq %d..%d), acknowledged %d: a gap or a duplicate", rows, distinct, minSeq, maxSeq, acked.Load())
	}
	checkAll(t, e, dst, "agent-1")
	reps, err := postgres.Verify(ctx, dsn, storetest.KeyRing())
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || reps[0].Rows != int(rows) {
		t.Errorf("Verify = %+v", reps)
	}
	t.Logf("%d records replicated exactly once in %v across a network cut and %d killed backends", rows, time.Since(now).Round(time.Millisecond), killed)
}

// TestPostgresLostCommit: replication commits with synchronous_commit off,
// so a server crash can lose commits it acknowledged, rows and cursor
// together. Simulated by rolling both back by hand while the replicator
// runs (it believes them written): its next batch finds the cursor behind,
// it reads the cursor again and sends the lost records again: no gap, no
// duplicate, every row equal to its segment record.
func TestPostgresLostCommit(t *testing.T) {
	_, dsn := pgtest.Schema(t)
	e := openEngine(t, t.TempDir())
	defer e.Close()
	open := func(ctx context.Context) (replicate.Target, error) {
		return postgres.OpenReplica(ctx, &postgres.ReplicaOptions{DSN: dsn, Logger: quiet()})
	}
	r := replicate.Start(e, open, &replicate.Options{Writer: "agent-1", BatchSize: 100, FlushInterval: time.Millisecond,
		RetryMax: 100 * time.Millisecond, Logger: quiet()})
	defer r.Close()
	appendN(t, e, 0, 300)
	waitCaughtUp(t, r, e)

	// "The crash": the last commits, seqs 201..300 and the cursor's move
	// past 200, are gone. Only a superuser with triggers off can do this.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, q := range []string{
			`SET LOCAL session_replication_role = replica`,
			`DELETE FROM audit_records WHERE writer_id = 'agent-1' AND seq > 200`,
			`UPDATE audit_writers w SET last_seq = a.seq, last_mac = a.mac, last_time = a.time_ns
				FROM audit_records a WHERE w.writer_id = 'agent-1' AND a.writer_id = 'agent-1' AND a.seq = 200`,
		} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if cur, _ := r.Replicated(); cur != 300 {
		t.Fatalf("replicator at %d before the next batch, want 300", cur)
	}
	appendN(t, e, 300, 100)
	waitCaughtUp(t, r, e)

	var rows, distinct, minSeq, maxSeq int64
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM audit_records WHERE writer_id = 'agent-1'`).
		Scan(&rows, &distinct, &minSeq, &maxSeq); err != nil {
		t.Fatal(err)
	}
	if rows != 400 || distinct != 400 || minSeq != 1 || maxSeq != 400 {
		t.Fatalf("rows %d (distinct %d, seq %d..%d), want 1..400 once each", rows, distinct, minSeq, maxSeq)
	}
	dst, err := open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	checkAll(t, e, dst, "agent-1")
}
