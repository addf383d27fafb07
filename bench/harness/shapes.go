package main

// The side-by-side benchmark of issue 13: the same records in the engine
// (record-level postings) and in an indexed SQLite table, the same random
// queries of several shapes against each, first page and count.
//
//	harness build --data /tmp/v10m --records 10000000
//	harness sqlite-load --data /tmp/v10m --sqlite /tmp/v10m.db     # the same records, read back from the store
//	harness shapes --data /tmp/v10m --sqlite /tmp/v10m.db --queries 1000 --http

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // the database/sql driver "sqlite3"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/query"
	"github.com/vellumlog/vellum/server"
)

// sqliteSchema is one table of the records as the engine stores them (the
// canonical encoding and MAC in one blob) with the filter columns beside
// it, and a composite index per query shape of the benchmark. It is leaner
// than the SQL replicas' 40-column rows, so it is the harder baseline.
const sqliteTable = `
CREATE TABLE IF NOT EXISTS records (
  seq INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL,
  tenant_id TEXT NOT NULL, user_id TEXT NOT NULL, action TEXT NOT NULL, session_id TEXT NOT NULL,
  trace_id TEXT NOT NULL, tool TEXT NOT NULL, model TEXT NOT NULL, outcome TEXT NOT NULL,
  record BLOB NOT NULL);`

const sqliteIndexes = `
CREATE INDEX IF NOT EXISTS by_time ON records (time_ns);
CREATE INDEX IF NOT EXISTS by_tenant_action_time ON records (tenant_id, action, time_ns);
CREATE INDEX IF NOT EXISTS by_user_time ON records (user_id, time_ns);
CREATE INDEX IF NOT EXISTS by_trace ON records (trace_id);
CREATE INDEX IF NOT EXISTS by_outcome_time ON records (outcome, time_ns);
CREATE INDEX IF NOT EXISTS by_action_time ON records (action, time_ns);
`

func openSQLite(path string) (*sql.DB, error) {
	v := url.Values{}
	v.Set("_journal_mode", "WAL")
	v.Set("_synchronous", "FULL")
	v.Set("_busy_timeout", "10000")
	db, err := sql.Open("sqlite3", "file:"+path+"?"+v.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// sqliteLoad copies a built store's records into the SQLite table, in
// transactions of --batch rows (each fsync'd: WAL, synchronous=FULL), and
// reports the insert rate and the bytes per record.
func sqliteLoad(args []string) error {
	fl := flag.NewFlagSet("sqlite-load", flag.ExitOnError)
	dir := fl.String("data", "", "data directory built by `harness build`")
	path := fl.String("sqlite", "", "SQLite database to create")
	batch := fl.Int("batch", 1000, "rows per transaction")
	late := fl.Bool("late-index", false, "create the indexes after loading (much faster; the insert rate then does not include index upkeep)")
	fl.Parse(args)
	if *dir == "" || *path == "" {
		return errors.New("--data and --sqlite are required")
	}
	if _, err := os.Stat(*path); err == nil {
		return fmt.Errorf("%s exists", *path)
	}
	e, err := engine.Open(*dir, &engine.Options{Keys: key(), Logger: quiet()})
	if err != nil {
		return err
	}
	defer e.Close()
	db, err := openSQLite(*path)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Exec(sqliteTable); err != nil {
		return err
	}
	if !*late {
		if _, err := db.Exec(sqliteIndexes); err != nil {
			return err
		}
	}
	ctx := context.Background()
	start, cpu0 := time.Now(), selfCPU()
	var sqlTime time.Duration
	n := 0
	rows := make([]vellum.Record, 0, *batch)
	flush := func() error {
		t0 := time.Now()
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		st, err := tx.Prepare(`INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?)`)
		if err != nil {
			return err
		}
		for i := range rows {
			r := &rows[i]
			enc, err := r.MarshalBinary()
			if err != nil {
				return err
			}
			blob := append(enc, r.MAC[:]...)
			if _, err := st.Exec(int64(r.Seq), r.Time.UnixNano(), r.TenantID, r.UserID, r.Action, r.SessionID, r.TraceID,
				r.Tool.Name, r.Model.Name, r.Outcome.Status, blob); err != nil {
				return err
			}
		}
		st.Close()
		if err := tx.Commit(); err != nil {
			return err
		}
		sqlTime += time.Since(t0)
		n += len(rows)
		rows = rows[:0]
		if n%1_000_000 == 0 {
			fmt.Printf("  %d rows, %.0f rows/s\n", n, float64(n)/time.Since(start).Seconds())
		}
		return nil
	}
	for r, err := range e.Scan(ctx, 1, 0) {
		if err != nil {
			return err
		}
		rows = append(rows, r)
		if len(rows) == *batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if len(rows) > 0 {
		if err := flush(); err != nil {
			return err
		}
	}
	el, cpu := time.Since(start), selfCPU()-cpu0
	if *late {
		t0 := time.Now()
		if _, err := db.Exec(sqliteIndexes); err != nil {
			return err
		}
		fmt.Printf("sqlite: indexes created after the load in %v\n", time.Since(t0).Round(time.Millisecond))
	}
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return err
	}
	fi, err := os.Stat(*path)
	if err != nil {
		return err
	}
	idx := "6 secondary indexes kept up by every insert"
	if *late {
		idx = "no index while loading"
	}
	fmt.Printf("sqlite: loaded %d rows in %v (%.0f rows/s; %.0f rows/s counting only the inserting transactions; %.2f µs CPU/row incl. reading the store), %d per transaction, %s\n",
		n, el.Round(time.Millisecond), float64(n)/el.Seconds(), float64(n)/sqlTime.Seconds(), float64(cpu.Microseconds())/float64(n), *batch, idx)
	fmt.Printf("sqlite: %d bytes, %.1f bytes per record\n", fi.Size(), float64(fi.Size())/float64(n))
	return nil
}

// shape is one kind of query of the benchmark.
type shape struct {
	name string
	make func(rng *rand.Rand, traces []string) query.Query
}

var actionNames = []string{"tool.call", "tool.result", "model.decision", "permission.decision", "approval.requested", "approval.granted", "request.start", "request.end"}

func randHour(rng *rand.Rand) (time.Time, time.Time) {
	since := epoch.Add(time.Duration(rng.Int64N(int64(span - time.Hour))))
	return since, since.Add(time.Hour)
}

var pageShapes = []shape{
	{"tenant×action×hour", func(rng *rand.Rand, _ []string) query.Query {
		s, u := randHour(rng)
		return query.Query{Since: s, Until: u, TenantID: fmt.Sprintf("tenant-%02d", rng.IntN(20)), Action: actionNames[rng.IntN(len(actionNames))]}
	}},
	{"user×day", func(rng *rand.Rand, _ []string) query.Query {
		return query.Query{Since: epoch, Until: epoch.Add(span), UserID: fmt.Sprintf("user-%04d", rng.IntN(2000))}
	}},
	{"trace id", func(rng *rand.Rand, traces []string) query.Query {
		return query.Query{TraceID: traces[rng.IntN(len(traces))]}
	}},
	{"outcome=denied×week", func(rng *rand.Rand, _ []string) query.Query {
		since := epoch.Add(-6*24*time.Hour + time.Duration(rng.Int64N(int64(7*24*time.Hour))))
		return query.Query{Since: since, Until: since.Add(7 * 24 * time.Hour), Outcome: "denied"}
	}},
	{"hour only", func(rng *rand.Rand, _ []string) query.Query {
		s, u := randHour(rng)
		return query.Query{Since: s, Until: u}
	}},
}

var countShapes = []shape{
	{"count tenant×action×hour", pageShapes[0].make},
	{"count tenant×action×day", func(rng *rand.Rand, _ []string) query.Query {
		return query.Query{Since: epoch, Until: epoch.Add(span), TenantID: fmt.Sprintf("tenant-%02d", rng.IntN(20)), Action: actionNames[rng.IntN(len(actionNames))]}
	}},
	{"count action×day", func(rng *rand.Rand, _ []string) query.Query {
		return query.Query{Since: epoch, Until: epoch.Add(span), Action: actionNames[rng.IntN(len(actionNames))]}
	}},
	{"count outcome=denied×hour", func(rng *rand.Rand, _ []string) query.Query {
		s, u := randHour(rng)
		return query.Query{Since: s, Until: u, Outcome: "denied"}
	}},
	{"count trace id", pageShapes[2].make},
}

// runShapes reopens a built store, then runs every shape against it and,
// with --sqlite, against the SQLite table loaded from it: the same random
// queries (same seed) in the same run.
func runShapes(args []string) error {
	fl := flag.NewFlagSet("shapes", flag.ExitOnError)
	dir := fl.String("data", "", "data directory built by `harness build`")
	path := fl.String("sqlite", "", "SQLite database loaded by `harness sqlite-load` (optional)")
	n := fl.Int("queries", 1000, "queries per shape and store")
	withHTTP := fl.Bool("http", false, "also the first shape and its count over HTTP on loopback")
	only := fl.String("only", "", "run only shapes whose name contains one of these comma-separated strings")
	cache := fl.Int64("postings-cache", 0, "engine.Options.PostingsCache: bytes of decoded postings lists kept for the next query; 0 the default (64 MiB), -1 none")
	noPostings := fl.Bool("no-postings", false, "open the store with engine.Options.NoPostings: every query by the time index and span summaries, as before issue 13")
	cpuProfile := fl.String("cpuprofile", "", "write a CPU profile of the queries (not the reopen) to this file")
	fl.Parse(args)
	if *dir == "" {
		return errors.New("--data is required")
	}
	start := time.Now()
	e, err := engine.Open(*dir, &engine.Options{Keys: key(), Logger: quiet(), NoPostings: *noPostings, PostingsCache: *cache})
	if err != nil {
		return err
	}
	defer e.Close()
	fmt.Printf("engine reopen: %v for %d records (peak RSS so far %.0f MB)\n", time.Since(start).Round(time.Millisecond), e.LastSeq(), peakRSSMB())
	ctx := context.Background()
	// Trace ids to look up: those of random records.
	rng := rand.New(rand.NewPCG(9, 9))
	traces := make([]string, 0, 500)
	for range 500 {
		r, err := e.Get(ctx, 1+rng.Uint64N(e.LastSeq()))
		if err != nil {
			return err
		}
		traces = append(traces, r.TraceID)
	}
	var db *sql.DB
	if *path != "" {
		if db, err = openSQLite(*path); err != nil {
			return err
		}
		defer db.Close()
	}
	type store struct {
		name  string
		page  func(query.Query) (int, error)
		count func(query.Query) (uint64, error)
	}
	stores := []store{{"engine",
		func(q query.Query) (int, error) { p, err := e.Query(ctx, q); return len(p.Records), err },
		func(q query.Query) (uint64, error) { return e.Count(ctx, q) }}}
	if db != nil {
		stores = append(stores, store{"sqlite",
			func(q query.Query) (int, error) { return sqlitePage(db, q) },
			func(q query.Query) (uint64, error) { return sqliteCount(db, q) }})
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	for _, sh := range append(slices.Clone(pageShapes), countShapes...) {
		if *only != "" && !slices.ContainsFunc(strings.Split(*only, ","), func(s string) bool { return strings.Contains(sh.name, s) }) {
			continue
		}
		isCount := strings.HasPrefix(sh.name, "count ")
		for _, st := range stores {
			run := func(q query.Query) (int, error) {
				if isCount {
					c, err := st.count(q)
					return int(c), err
				}
				return st.page(q)
			}
			warm := rand.New(rand.NewPCG(1, 2))
			for range 20 {
				if _, err := run(sh.make(warm, traces)); err != nil {
					return fmt.Errorf("%s %s: %w", st.name, sh.name, err)
				}
			}
			rng := rand.New(rand.NewPCG(1, 2))
			lat := make([]time.Duration, 0, *n)
			got := 0
			for range *n {
				q := sh.make(rng, traces)
				t0 := time.Now()
				k, err := run(q)
				if err != nil {
					return fmt.Errorf("%s %s: %w", st.name, sh.name, err)
				}
				lat = append(lat, time.Since(t0))
				got += k
			}
			shapeReport(st.name, sh.name, lat, got, isCount)
		}
	}
	if *withHTTP {
		if err := httpShapes(e, *n); err != nil {
			return err
		}
	}
	fmt.Printf("peak RSS: %.0f MB\n", peakRSSMB())
	return nil
}

func shapeReport(store, shape string, lat []time.Duration, got int, count bool) {
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }
	what := "records/page"
	if count {
		what = "count"
	}
	fmt.Printf("%-8s %-28s n=%d  p50 %8v  p90 %8v  p99 %8v  max %8v  (avg %s %.1f)\n", store, shape, len(lat),
		p(0.50).Round(time.Microsecond), p(0.90).Round(time.Microsecond), p(0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond),
		what, float64(got)/float64(len(lat)))
}

// sqlWhere turns the benchmark's queries into SQL conditions (exact
// filters and the receipt-time range only: what the shapes use).
func sqlWhere(q query.Query) (string, []any) {
	var conds []string
	var args []any
	for _, c := range []struct{ col, v string }{{"tenant_id", q.TenantID}, {"user_id", q.UserID}, {"action", q.Action},
		{"trace_id", q.TraceID}, {"outcome", q.Outcome}} {
		if c.v != "" {
			conds = append(conds, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	if !q.Since.IsZero() {
		conds = append(conds, "time_ns >= ?")
		args = append(args, q.Since.UnixNano())
	}
	if !q.Until.IsZero() {
		conds = append(conds, "time_ns < ?")
		args = append(args, q.Until.UnixNano())
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// sqlitePage returns the first page (100 records, ascending), decoded as
// the engine decodes its records.
func sqlitePage(db *sql.DB, q query.Query) (int, error) {
	where, args := sqlWhere(q)
	rows, err := db.Query("SELECT record FROM records"+where+" ORDER BY time_ns, seq LIMIT 100", args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var blob []byte
		if err := rows.Scan(&blob); err != nil {
			return 0, err
		}
		var r vellum.Record
		if err := r.UnmarshalBinary(blob[:len(blob)-vellum.MACSize]); err != nil {
			return 0, err
		}
		n++
	}
	return n, rows.Err()
}

func sqliteCount(db *sql.DB, q query.Query) (uint64, error) {
	where, args := sqlWhere(q)
	var n uint64
	err := db.QueryRow("SELECT count(*) FROM records"+where, args...).Scan(&n)
	return n, err
}

// httpShapes runs the first shape's page and count over HTTP on loopback;
// each request also appends (and fsyncs) its audit.query record.
func httpShapes(e *engine.Engine, n int) error {
	const token = "harness-admin-token-0123456789"
	srv, err := server.New(nil, e, &server.Options{
		Logger:    quiet(),
		LookupEnv: func(k string) (string, bool) { return token, k == server.EnvAdminToken },
	})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	for _, path := range []string{"/v1/audit", "/v1/audit/count"} {
		rng := rand.New(rand.NewPCG(1, 2))
		lat := make([]time.Duration, 0, n)
		got := 0
		for range n {
			q := pageShapes[0].make(rng, nil)
			v := url.Values{}
			v.Set("since", q.Since.Format(time.RFC3339Nano))
			v.Set("until", q.Until.Format(time.RFC3339Nano))
			v.Set("tenant_id", q.TenantID)
			v.Set("action", q.Action)
			req, _ := http.NewRequest("GET", "http://"+l.Addr().String()+path+"?"+v.Encode(), nil)
			req.Header.Set("Authorization", "Bearer "+token)
			t0 := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			var body struct {
				Records []json.RawMessage `json:"records"`
				Count   int               `json:"count"`
			}
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			lat = append(lat, time.Since(t0))
			if err != nil || resp.StatusCode != 200 {
				return fmt.Errorf("HTTP %d: %v", resp.StatusCode, err)
			}
			got += len(body.Records) + body.Count
		}
		shapeReport("http", "GET "+path+" tenant×action×hour", lat, got, path != "/v1/audit")
	}
	return nil
}
