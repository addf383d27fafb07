package server

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/engine"
)

// newTestStore opens a real engine in a temporary directory for the
// handler tests. Swapping the store is this one function.
func newTestStore(t testing.TB) Store { return newTestStoreOpts(t, nil) }

// newTestStoreOpts is newTestStore with the engine options set by mod.
func newTestStoreOpts(t testing.TB, mod func(*engine.Options)) Store {
	t.Helper()
	key, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	o := &engine.Options{
		Keys:   chain.NewKeyring(key),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(o)
	}
	e, err := engine.Open(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
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

// blockingStore holds every append until release is closed, to test that
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
