package sqlite_test

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/backends/sqlite"
	"github.com/vellumlog/vellum/backends/storetest"
	"github.com/vellumlog/vellum/chain"
)

func keys() *chain.Keyring { return chain.NewKeyring(storetest.Key()) }

func openAt(t *testing.T, path string, c *storetest.Clock) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(path, &sqlite.Options{Keys: keys(), Now: c.Now, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func raw(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var filled int

func fill(t *testing.T, s *sqlite.Store, c *storetest.Clock, n int) {
	t.Helper()
	for range n {
		filled++
		i := filled
		c.Advance(time.Second)
		if _, err := s.Append(ctx, storetest.Full(i)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAppendOnly proves the database itself refuses to change or remove
// rows: raw UPDATE, DELETE and INSERT OR REPLACE fail, the horizon only
// moves forward, and only rows below it can be deleted.
func TestAppendOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	c := storetest.NewClock()
	s := openAt(t, path, c)
	defer s.Close()
	fill(t, s, c, 10)
	db := raw(t, path)
	refused := []string{
		`UPDATE audit_records SET outcome = 'success' WHERE seq = 3`,
		`UPDATE audit_records SET mac = prev_mac`,
		`DELETE FROM audit_records WHERE seq = 3`,
		`DELETE FROM audit_records`,
		`INSERT OR REPLACE INTO audit_records SELECT * FROM audit_records WHERE seq = 4`,
		`REPLACE INTO audit_records SELECT * FROM audit_records WHERE seq = 5`,
		`DELETE FROM audit_horizon`,
	}
	for _, q := range refused {
		_, err := db.Exec(q)
		if err == nil {
			t.Errorf("%s: accepted", q)
			continue
		}
		if !strings.Contains(err.Error(), "append-only") && !strings.Contains(err.Error(), "audit_horizon") {
			t.Errorf("%s: %v (want the trigger's message)", q, err)
		}
	}
	if rep, err := s.Verify(ctx, keys()); err != nil || rep.Rows != 10 || rep.Checked != 10 {
		t.Fatalf("Verify after refused changes: %+v, %v", rep, err)
	}

	// Retention: expire the first 4 (times Base+1s..+4s).
	cut := storetest.Base.Add(4*time.Second + 1)
	n, err := s.ExpireBefore(ctx, cut)
	if err != nil || n != 4 {
		t.Fatalf("ExpireBefore = %d, %v; want 4", n, err)
	}
	if h, _ := s.Horizon(ctx); !h.Equal(cut) {
		t.Errorf("horizon %v, want %v", h, cut)
	}
	// An older horizon leaves it where it is.
	if n, err := s.ExpireBefore(ctx, storetest.Base); err != nil || n != 0 {
		t.Errorf("ExpireBefore(older) = %d, %v", n, err)
	}
	if _, err := db.Exec(`UPDATE audit_horizon SET time = time - 1`); err == nil || !strings.Contains(err.Error(), "only moves forward") {
		t.Errorf("moving the horizon back: %v", err)
	}
	if h, _ := s.Horizon(ctx); !h.Equal(cut) {
		t.Errorf("horizon moved back to %v", h)
	}
	if _, err := s.Get(ctx, 4); !errors.Is(err, backends.ErrNotFound) {
		t.Errorf("Get(4) after expiry = %v", err)
	}
	if _, err := db.Exec(`DELETE FROM audit_records WHERE seq = 5`); err == nil {
		t.Error("DELETE above the horizon accepted after an expiry")
	}
	rep, err := s.Verify(ctx, keys())
	if err != nil || rep.FirstSeq != 5 || rep.Rows != 6 {
		t.Errorf("Verify after expiry = %+v, %v", rep, err)
	}
	// The chain goes on after expiry and after a reopen.
	fill(t, s, c, 2)
	s.Close()
	s = openAt(t, path, c)
	defer s.Close()
	fill(t, s, c, 2)
	if rep, err := s.Verify(ctx, keys()); err != nil || rep.LastSeq != 14 {
		t.Errorf("Verify after reopen = %+v, %v", rep, err)
	}
}

// TestVerifyLocatesTampering changes one row with the triggers dropped (the
// file's owner can do anything) and checks Verify names that row; then
// removes the last row and checks the head gives it away.
func TestVerifyLocatesTampering(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	c := storetest.NewClock()
	s := openAt(t, path, c)
	fill(t, s, c, 20)
	s.Close()
	db := raw(t, path)
	for _, q := range []string{
		`DROP TRIGGER audit_records_no_update`,
		`UPDATE audit_records SET outcome = 'success' WHERE seq = 13`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(q, err)
		}
	}
	_, err := sqlite.Verify(ctx, path, keys())
	var bad *backends.BadRowError
	if !errors.As(err, &bad) || bad.Seq != 13 || !strings.Contains(err.Error(), "mac does not match") {
		t.Fatalf("Verify = %v, want seq 13 named", err)
	}
	if !errors.Is(err, backends.ErrTampered) {
		t.Errorf("%v does not wrap ErrTampered", err)
	}
	// A wrong key fails on the first row.
	other, _ := chain.GenerateKey()
	if _, err := sqlite.Verify(ctx, path, chain.NewKeyring(other)); !errors.As(err, &bad) || bad.Seq != 1 {
		t.Errorf("Verify with another key = %v", err)
	}

	path2 := filepath.Join(t.TempDir(), "b.db")
	s = openAt(t, path2, c)
	fill(t, s, c, 5)
	s.Close()
	db2 := raw(t, path2)
	for _, q := range []string{`DROP TRIGGER audit_records_no_delete`, `DELETE FROM audit_records WHERE seq = 5`} {
		if _, err := db2.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sqlite.Verify(ctx, path2, keys()); !errors.As(err, &bad) || bad.Seq != 5 {
		t.Errorf("Verify after the last row was removed = %v", err)
	}
	if _, err := db2.Exec(`DELETE FROM audit_records WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.Verify(ctx, path2, keys()); !errors.As(err, &bad) || bad.Seq != 2 || !strings.Contains(bad.Reason, "missing") {
		t.Errorf("Verify after a middle row was removed = %v", err)
	}
	if _, err := db2.Exec(`DELETE FROM audit_records WHERE seq = 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.Verify(ctx, path2, keys()); !errors.As(err, &bad) || bad.Seq != 1 || !strings.Contains(bad.Reason, "retention removed nothing") {
		t.Errorf("Verify after the first row was removed = %v", err)
	}
}

// TestBadInput: each problem is a clear error naming the backend and what
// to do, and nothing acknowledged is lost.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	c := storetest.NewClock()

	t.Run("newer schema", func(t *testing.T) {
		path := filepath.Join(dir, "newer.db")
		openAt(t, path, c).Close()
		if _, err := raw(t, path).Exec(`INSERT INTO audit_migrations VALUES (99, 0)`); err != nil {
			t.Fatal(err)
		}
		_, err := sqlite.Open(path, &sqlite.Options{Keys: keys(), Logger: quiet()})
		if !errors.Is(err, backends.ErrSchema) || !strings.Contains(err.Error(), "schema version 99, newer than this build's") {
			t.Errorf("Open = %v", err)
		}
	})
	t.Run("not a database", func(t *testing.T) {
		path := filepath.Join(dir, "junk.db")
		os.WriteFile(path, []byte(strings.Repeat("not sqlite ", 1000)), 0o600)
		_, err := sqlite.Open(path, &sqlite.Options{Keys: keys(), Logger: quiet()})
		if !errors.Is(err, backends.ErrSchema) || !strings.Contains(err.Error(), "not a SQLite database") {
			t.Errorf("Open = %v", err)
		}
	})
	t.Run("missing directory", func(t *testing.T) {
		_, err := sqlite.Open(filepath.Join(dir, "no", "such", "dir", "a.db"), &sqlite.Options{Keys: keys(), Logger: quiet()})
		if !errors.Is(err, backends.ErrUnavailable) || !strings.Contains(err.Error(), "sqlite: cannot open") {
			t.Errorf("Open = %v", err)
		}
	})
	t.Run("replica file as primary", func(t *testing.T) {
		path := filepath.Join(dir, "replica.db")
		r, err := sqlite.OpenReplica(path, &sqlite.ReplicaOptions{Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Cursor(ctx, "", [16]byte{1}); err != nil {
			t.Fatal(err)
		}
		r.Close()
		_, err = sqlite.Open(path, &sqlite.Options{Keys: keys(), Logger: quiet()})
		if !errors.Is(err, backends.ErrSchema) || !strings.Contains(err.Error(), "replicated") {
			t.Errorf("Open = %v", err)
		}
	})
	t.Run("full disk", func(t *testing.T) {
		path := filepath.Join(dir, "full.db")
		s, err := sqlite.Open(path, &sqlite.Options{Keys: keys(), Now: c.Now, Logger: quiet(), MaxPages: 60})
		if err != nil {
			t.Fatal(err)
		}
		var acked []uint64
		var ferr error
		for i := 0; i < 10_000 && ferr == nil; i++ {
			var seqs []uint64
			seqs, ferr = s.Append(ctx, storetest.Full(i))
			acked = append(acked, seqs...)
		}
		if !errors.Is(ferr, sqlite.ErrFull) || !strings.Contains(ferr.Error(), "free space") || !strings.Contains(ferr.Error(), path) {
			t.Fatalf("Append on a full disk = %v", ferr)
		}
		if len(acked) == 0 {
			t.Fatal("nothing fit before the disk was full")
		}
		s.Close()
		// Everything acknowledged is there, the chain verifies, and with
		// room again the store goes on.
		s, err = sqlite.Open(path, &sqlite.Options{Keys: keys(), Now: c.Now, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for _, seq := range acked {
			if _, err := s.Get(ctx, seq); err != nil {
				t.Fatalf("acknowledged seq %d lost: %v", seq, err)
			}
		}
		if _, err := s.Append(ctx, vellum.Record{Action: "tool.call", Outcome: vellum.Outcome{Status: "success"}}); err != nil {
			t.Fatal(err)
		}
		if rep, err := s.Verify(ctx, keys()); err != nil || rep.Rows != len(acked)+1 {
			t.Errorf("Verify = %+v, %v (acked %d)", rep, err, len(acked))
		}
	})
}
