package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/vellumlog/vellum/backends/postgres"
	"github.com/vellumlog/vellum/backends/replicate"
	"github.com/vellumlog/vellum/backends/sqlite"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/query"
)

// replicateSQL replicates a built store into SQLite and/or PostgreSQL (the
// SQL side of the 10M-record query comparison) and reports the rate.
//
//	harness replicate --data /tmp/v10m --sqlite /tmp/v10m.db --dsn postgres://...
func replicateSQL(args []string) error {
	fl := flag.NewFlagSet("replicate", flag.ExitOnError)
	dir := fl.String("data", "", "data directory built by `harness build`")
	path := fl.String("sqlite", "", "SQLite replica file")
	dsn := fl.String("dsn", "", "PostgreSQL replica DSN")
	batch := fl.Int("batch", replicate.DefaultBatchSize, "records per transaction")
	fl.Parse(args)
	if *dir == "" || (*path == "" && *dsn == "") {
		return errors.New("--data and --sqlite or --dsn are required")
	}
	e, err := engine.Open(*dir, &engine.Options{Keys: key(), Logger: quiet()})
	if err != nil {
		return err
	}
	defer e.Close()
	targets := map[string]func(context.Context) (replicate.Target, error){}
	if *path != "" {
		targets["sqlite"] = func(context.Context) (replicate.Target, error) {
			return sqlite.OpenReplica(*path, &sqlite.ReplicaOptions{Logger: quiet()})
		}
	}
	if *dsn != "" {
		targets["postgres"] = func(ctx context.Context) (replicate.Target, error) {
			return postgres.OpenReplica(ctx, &postgres.ReplicaOptions{DSN: *dsn, Logger: quiet()})
		}
	}
	for _, name := range []string{"sqlite", "postgres"} {
		open := targets[name]
		if open == nil {
			continue
		}
		start := time.Now()
		r := replicate.Start(e, open, &replicate.Options{Writer: "harness", BatchSize: *batch, Logger: quiet(), FlushInterval: time.Millisecond})
		from, _ := r.Replicated()
		done := make(chan error, 1)
		go func() { done <- r.WaitFor(context.Background(), e.LastSeq()) }()
		tick := time.NewTicker(30 * time.Second)
	wait:
		for {
			select {
			case err = <-done:
				break wait
			case <-tick.C:
				cur, _ := r.Replicated()
				fmt.Printf("  %s: %d of %d (%s)\n", name, cur, e.LastSeq(), r.Lag().Error)
			}
		}
		tick.Stop()
		cur, _ := r.Replicated()
		r.Close()
		if err != nil {
			return err
		}
		el := time.Since(start)
		fmt.Printf("replicated into %s: %d records in %v (%.0f records/s)\n", name, cur-from, el.Round(time.Millisecond), float64(cur-from)/el.Seconds())
	}
	return nil
}

// querySQL runs the harness's query workload (the same random queries, same
// seed, as `harness query`) against the SQL replicas.
func querySQL(args []string) error {
	fl := flag.NewFlagSet("query-sql", flag.ExitOnError)
	path := fl.String("sqlite", "", "SQLite replica file")
	dsn := fl.String("dsn", "", "PostgreSQL replica DSN")
	n := fl.Int("queries", 2000, "queries per database")
	fl.Parse(args)
	type lister interface {
		Query(context.Context, query.Query) (query.Page, error)
		Close() error
	}
	var dbs []struct {
		name string
		l    lister
	}
	if *path != "" {
		r, err := sqlite.OpenReplica(*path, &sqlite.ReplicaOptions{Logger: quiet()})
		if err != nil {
			return err
		}
		dbs = append(dbs, struct {
			name string
			l    lister
		}{"sqlite", r})
	}
	if *dsn != "" {
		r, err := postgres.OpenReplica(context.Background(), &postgres.ReplicaOptions{DSN: *dsn, Logger: quiet()})
		if err != nil {
			return err
		}
		dbs = append(dbs, struct {
			name string
			l    lister
		}{"postgres", r})
	}
	for _, db := range dbs {
		rng := rand.New(rand.NewPCG(1, 2))
		// Warm the cache as the engine's run is warm after reopen.
		for range 50 {
			db.l.Query(context.Background(), randomQuery(rng))
		}
		rng = rand.New(rand.NewPCG(1, 2))
		lat := make([]time.Duration, 0, *n)
		got := 0
		for range *n {
			q := randomQuery(rng)
			t0 := time.Now()
			page, err := db.l.Query(context.Background(), q)
			if err != nil {
				return fmt.Errorf("%s: %w", db.name, err)
			}
			lat = append(lat, time.Since(t0))
			got += len(page.Records)
		}
		report(db.name+" replica, in-process", lat, got)
		db.l.Close()
	}
	return nil
}
