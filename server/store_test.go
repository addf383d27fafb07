package server

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/query"
)

// newTestStore opens a real engine in a temporary directory for the
// handler tests. Swapping the store is this one function.
//
// TODO(index): once engine.Engine has Query (served from the index), return
// the engine itself instead of scanQuery, and add
// `var _ Store = (*engine.Engine)(nil)` to server.go.
func newTestStore(t testing.TB) Store {
	t.Helper()
	key, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.Open(t.TempDir(), &engine.Options{
		Keys:   chain.NewKeyring(key),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return scanQuery{e}
}

// scanQuery gives the engine a Query method by scanning every record and
// keeping those query.Match accepts: the naive reference the index-backed
// Query must agree with, used until that lands.
type scanQuery struct{ *engine.Engine }

var _ Store = scanQuery{}

func (s scanQuery) Query(ctx context.Context, q query.Query) (query.Page, error) {
	var all []vellum.Record
	for r, err := range s.Scan(ctx, 1, 0) {
		if err != nil {
			return query.Page{}, err
		}
		if q.Match(&r) {
			all = append(all, r)
		}
	}
	if q.Desc {
		slices.Reverse(all)
	}
	var p query.Page
	if len(all) >= q.Limit {
		all = all[:q.Limit]
		pos := query.PositionOf(&all[len(all)-1])
		p.Next = &pos
	}
	p.Records = all
	return p, nil
}

// failedStore wraps a store that has failed closed: Err reports why and
// nothing is accepted.
type failedStore struct {
	Store
	err error
}

func (f *failedStore) Err() error { return f.err }
func (f *failedStore) Append(context.Context, ...vellum.Record) ([]uint64, error) {
	return nil, f.err
}

// blockingStore holds every Append until release is closed, to test that
// Shutdown waits for in-flight requests.
type blockingStore struct {
	Store
	entered chan struct{}
	release chan struct{}
}

func (b *blockingStore) Append(ctx context.Context, recs ...vellum.Record) ([]uint64, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.Store.Append(ctx, recs...)
}
