package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/backends/postgres"
	"github.com/vellumlog/vellum/backends/postgres/pgtest"
	"github.com/vellumlog/vellum/backends/storetest"
)

func env(c *storetest.Clock) storetest.Env {
	return storetest.Env{Keys: keys(), Now: c.Now, MaxRecordSize: storetest.MaxRecordSize}
}

// loginRole creates a login role (trust auth on loopback) for t, granted
// the given roles, and drops it when t ends.
func loginRole(t *testing.T, grants ...string) string {
	t.Helper()
	admin := pgtest.Admin(t)
	var b [4]byte
	rand.Read(b[:])
	name := "vt_role_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE ROLE "+name+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	for _, g := range grants {
		if _, err := admin.Exec(ctx, "GRANT "+g+" TO "+name); err != nil {
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

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// TestAppendOnly proves PostgreSQL itself refuses to change or remove rows:
// raw UPDATE, DELETE and TRUNCATE (of the table and of a partition) fail as
// the owner (a superuser here, so only the triggers stop it) and as the
// application role (which may only INSERT and SELECT; the store works as
// it).
func TestAppendOnly(t *testing.T) {
	schema, dsn := pgtest.Schema(t)
	c := storetest.NewClock()
	owner := openIn(t, dsn, "w-owner", env(c))
	for i := range 5 {
		c.Advance(time.Second)
		if _, err := owner.Append(ctx, storetest.Full(i)); err != nil {
			t.Fatal(err)
		}
	}
	owner.Close()

	app := loginRole(t, postgres.AppRole)
	appDSN := pgtest.WithUser(dsn, app, "")
	// The store runs as the application role.
	s := openIn(t, appDSN, "w-app", env(c))
	c.Advance(24 * time.Hour) // a new day: the app role makes a partition through the function
	if _, err := s.Append(ctx, storetest.Full(100), storetest.Full(101)); err != nil {
		t.Fatalf("append as %s: %v", postgres.AppRole, err)
	}
	s.Close()

	partition := "audit_records_" + storetest.Base.Format("20060102")
	stmts := []string{
		`UPDATE audit_records SET outcome = 'success' WHERE writer_id = 'w-owner' AND seq = 2`,
		`UPDATE audit_records SET mac = prev_mac`,
		`DELETE FROM audit_records WHERE writer_id = 'w-owner' AND seq = 2`,
		`DELETE FROM audit_records`,
		`TRUNCATE audit_records`,
		`TRUNCATE ` + partition,
		`UPDATE ` + partition + ` SET outcome = 'success'`,
		`DELETE FROM ` + partition,
		`DELETE FROM audit_horizon`,
	}
	for _, who := range []struct{ name, dsn, want string }{
		{"owner", dsn, "append-only"},
		{postgres.AppRole, appDSN, "permission denied"},
	} {
		conn := connect(t, who.dsn)
		for _, q := range stmts {
			_, err := conn.Exec(ctx, q)
			if err == nil {
				t.Errorf("as %s: %s: accepted", who.name, q)
				continue
			}
			if !strings.Contains(err.Error(), who.want) && !strings.Contains(err.Error(), "only moves forward") {
				t.Errorf("as %s: %s: %v (want %q)", who.name, q, err, who.want)
			}
		}
		if who.name == postgres.AppRole {
			for _, q := range []string{`ALTER TABLE audit_records DETACH PARTITION ` + partition, `DROP TABLE ` + partition,
				`DROP TRIGGER audit_records_append_only ON audit_records`, `UPDATE audit_writers SET kind = 'replica'`} {
				if _, err := conn.Exec(ctx, q); err == nil && !strings.HasPrefix(q, "UPDATE audit_writers") {
					t.Errorf("as %s: %s: accepted", who.name, q)
				}
			}
		}
	}
	// Nothing changed: both chains verify, every row checked.
	reps, err := postgres.Verify(ctx, dsn, keys())
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 2 || reps[0].Rows+reps[1].Rows != 7 || reps[0].Checked+reps[1].Checked != 7 {
		t.Errorf("Verify = %+v", reps)
	}
	_ = schema
}

// TestRetentionDropsPartitions: records over three days land in three day
// partitions; DropPartitionsBefore detaches and drops the old ones whole,
// the horizon moves forward only, and the chains still verify.
func TestRetentionDropsPartitions(t *testing.T) {
	_, dsn := pgtest.Schema(t)
	c := storetest.NewClock()
	s := openIn(t, dsn, "w1", env(c))
	defer s.Close()
	for day := range 3 {
		for i := range 4 {
			c.Set(storetest.Base.Add(time.Duration(day)*24*time.Hour + time.Duration(i)*time.Minute))
			if _, err := s.Append(ctx, storetest.Full(day*10+i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	admin := connect(t, dsn)
	var parts int
	admin.QueryRow(ctx, `SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_records'::regclass`).Scan(&parts)
	if parts != 3 {
		t.Fatalf("%d partitions, want 3", parts)
	}
	// A cut in the middle of day 2 drops day 1 only.
	cut := storetest.Base.Add(36 * time.Hour)
	dropped, err := s.DropPartitionsBefore(ctx, cut)
	if err != nil {
		t.Fatal(err)
	}
	if want := "audit_records_" + storetest.Base.Format("20060102"); len(dropped) != 1 || dropped[0] != want {
		t.Errorf("dropped %v, want [%s]", dropped, want)
	}
	if _, err := s.Get(ctx, 1); !errors.Is(err, backends.ErrNotFound) {
		t.Errorf("Get(1) after the drop = %v", err)
	}
	if _, err := s.Get(ctx, 5); err != nil {
		t.Errorf("Get(5) after the drop = %v", err)
	}
	if _, err := admin.Exec(ctx, `UPDATE audit_horizon SET time = $1`, storetest.Base); err == nil || !strings.Contains(err.Error(), "only moves forward") {
		t.Errorf("moving the horizon back: %v", err)
	}
	reps, err := postgres.Verify(ctx, dsn, keys())
	if err != nil || len(reps) != 1 || reps[0].FirstSeq != 5 || reps[0].Rows != 8 {
		t.Errorf("Verify after retention = %+v, %v", reps, err)
	}
	// The writer goes on.
	if seqs, err := s.Append(ctx, storetest.Full(99)); err != nil || seqs[0] != 13 {
		t.Errorf("Append after retention = %v, %v", seqs, err)
	}
}

// childEnv carries a child process's job: DSN, writer id, records.
const childEnv = "VELLUM_PG_TEST_CHILD"

// TestMain runs the child half of TestTwoProcesses when asked to.
func TestMain(m *testing.M) {
	if job := os.Getenv(childEnv); job != "" {
		os.Exit(runChild(job))
	}
	os.Exit(m.Run())
}

func runChild(job string) int {
	parts := strings.SplitN(job, "|", 3)
	n, _ := strconv.Atoi(parts[2])
	s, err := postgres.Open(ctx, &postgres.Options{DSN: parts[0], WriterID: parts[1], Keys: keys(), Logger: quiet()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 8 {
				r := storetest.Full(i)
				r.EventID = fmt.Sprintf("%s-%d", parts[1], i)
				if _, err := s.Append(ctx, r); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestTwoProcesses runs two processes appending concurrently to one
// database, each as its own writer with its own chain: both chains verify;
// then one row changed by hand as a superuser (triggers bypassed with
// session_replication_role) is named by writer and seq.
func TestTwoProcesses(t *testing.T) {
	_, dsn := pgtest.Schema(t)
	// Migrate once, so the children race only on appends.
	s := openIn(t, dsn, "setup", env(storetest.NewClock()))
	s.Close()
	const n = 300
	var cmds []*exec.Cmd
	for _, w := range []string{"agent-a", "agent-b"} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+dsn+"|"+w+"|"+strconv.Itoa(n))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
	}
	reps, err := postgres.Verify(ctx, dsn, keys())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]postgres.WriterReport{}
	for _, r := range reps {
		got[r.Writer] = r
	}
	for _, w := range []string{"agent-a", "agent-b"} {
		if r := got[w]; r.Rows != n || r.Checked != n || r.LastSeq != n {
			t.Errorf("writer %s: %+v, want %d rows checked", w, r, n)
		}
	}
	// Both processes' rows interleave in time: neither waited for the other.
	admin := connect(t, dsn)
	var switches int
	admin.QueryRow(ctx, `SELECT count(*) FROM (SELECT writer_id, lag(writer_id) OVER (ORDER BY time_ns) AS prev FROM audit_records
		WHERE writer_id IN ('agent-a', 'agent-b')) x WHERE prev IS NOT NULL AND prev <> writer_id`).Scan(&switches)
	t.Logf("the two writers' rows alternate %d times in time order", switches)

	if _, err := admin.Exec(ctx, `SET session_replication_role = replica`); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `UPDATE audit_records SET outcome_reason = 'nothing to see' WHERE writer_id = 'agent-b' AND seq = 123`); err != nil {
		t.Fatal(err)
	}
	_, err = postgres.Verify(ctx, dsn, keys())
	var bad *backends.BadRowError
	if !errors.As(err, &bad) || bad.Writer != "agent-b" || bad.Seq != 123 {
		t.Fatalf("Verify after tampering = %v, want writer agent-b seq 123", err)
	}
	if strings.Contains(err.Error(), "xxxxx") == false && strings.Contains(err.Error(), "password") {
		t.Errorf("error mentions a password: %v", err)
	}
	// Removing a row as superuser is found too.
	if _, err := admin.Exec(ctx, `DELETE FROM audit_records WHERE writer_id = 'agent-a' AND seq = 50`); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Verify(ctx, dsn, keys()); !errors.As(err, &bad) || bad.Writer != "agent-a" || bad.Seq != 50 {
		t.Errorf("Verify after a delete = %v, want writer agent-a seq 50", err)
	}
}
