package storetest_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/backends/postgres"
	"github.com/vellumlog/vellum/backends/postgres/pgtest"
	"github.com/vellumlog/vellum/backends/sqlite"
	"github.com/vellumlog/vellum/backends/storetest"
	"github.com/vellumlog/vellum/query"
)

// TestSameAnswers appends the same calls, with the same clock, to the
// engine, SQLite and PostgreSQL, and checks that every query of the suite
// returns the same records, page by page, from all three.
func TestSameAnswers(t *testing.T) {
	ctx := context.Background()
	stores := map[string]func(env storetest.Env) backends.Store{
		"engine": func(env storetest.Env) backends.Store { return openEngine(t, env) },
		"sqlite": func(env storetest.Env) backends.Store {
			s, err := sqlite.Open(filepath.Join(t.TempDir(), "a.db"), &sqlite.Options{Keys: env.Keys, Now: env.Now, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"postgres": func(env storetest.Env) backends.Store {
			_, dsn := pgtest.Schema(t)
			s, err := postgres.Open(ctx, &postgres.Options{DSN: dsn, WriterID: "w", Keys: env.Keys, Now: env.Now, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
	answers := map[string][]string{}
	for _, name := range []string{"engine", "sqlite", "postgres"} {
		c := storetest.NewClock()
		env := storetest.Env{Keys: storetest.KeyRing(), Now: c.Now, MaxRecordSize: storetest.MaxRecordSize}
		s := stores[name](env)
		recs := storetest.Dataset(t, s, c, 150)
		for _, q := range storetest.Queries(recs) {
			for {
				page, err := s.Query(ctx, q)
				if err != nil {
					t.Fatal(name, err)
				}
				answers[name] = append(answers[name], pageKey(page.Records))
				if page.Next == nil {
					break
				}
				q.After = page.Next
			}
		}
		s.Close()
	}
	for _, name := range []string{"sqlite", "postgres"} {
		if len(answers[name]) != len(answers["engine"]) {
			t.Fatalf("%s gave %d pages, the engine %d", name, len(answers[name]), len(answers["engine"]))
		}
		for i := range answers[name] {
			if answers[name][i] != answers["engine"][i] {
				t.Fatalf("page %d differs:\n%s: %s\nengine: %s", i, name, answers[name][i], answers["engine"][i])
			}
		}
	}
	t.Logf("%d pages, identical from the engine, SQLite and PostgreSQL", len(answers["engine"]))
	_ = query.MaxLimit
}

// pageKey is a page's records without the chain values, whose genesis
// differs between stores.
func pageKey(recs []vellum.Record) string {
	out := make([]vellum.Record, len(recs))
	for i, r := range recs {
		r.PrevMAC, r.MAC = vellum.MAC{}, vellum.MAC{}
		out[i] = r
	}
	b, _ := json.Marshal(out)
	return string(b)
}
