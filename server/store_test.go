package server

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/query"
)

// newTestStore returns the store the handler tests run against.
//
// TODO(engine): once package engine lands, this becomes the real store
// (the only line to change):
//
//	e, err := engine.Open(t.TempDir(), nil); if err != nil { t.Fatal(err) }; t.Cleanup(func() { e.Close() }); return e
func newTestStore(t testing.TB) Store {
	t.Helper()
	return &memStore{byEvent: map[[2]string]uint64{}}
}

// memStore is a stand-in for the engine until it lands: records in a
// slice, queried with query.Match itself. It implements the Store
// contract the engine must: seqs from 1, receipt times that never
// decrease, event_id idempotency per tenant, and the Page.Next rule.
type memStore struct {
	mu      sync.Mutex
	recs    []vellum.Record
	byEvent map[[2]string]uint64
	err     error
}

var _ Store = (*memStore)(nil)

func (m *memStore) Append(ctx context.Context, recs ...vellum.Record) ([]uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i := range recs {
		if err := recs[i].Validate(); err != nil {
			return nil, err
		}
	}
	seqs := make([]uint64, len(recs))
	for i, r := range recs {
		k := [2]string{r.TenantID, r.EventID}
		if s, dup := m.byEvent[k]; dup && r.EventID != "" {
			seqs[i] = s
			continue
		}
		r.Seq = uint64(len(m.recs) + 1)
		r.Time = time.Now().UTC()
		if n := len(m.recs); n > 0 && r.Time.Before(m.recs[n-1].Time) {
			r.Time = m.recs[n-1].Time
		}
		m.recs = append(m.recs, r)
		if r.EventID != "" {
			m.byEvent[k] = r.Seq
		}
		seqs[i] = r.Seq
	}
	return seqs, nil
}

func (m *memStore) Get(_ context.Context, seq uint64) (vellum.Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return vellum.Record{}, false, m.err
	}
	if seq == 0 || seq > uint64(len(m.recs)) {
		return vellum.Record{}, false, nil
	}
	return m.recs[seq-1], true, nil
}

func (m *memStore) Query(_ context.Context, q query.Query) (Page, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return Page{}, m.err
	}
	var p Page
	n := len(m.recs)
	for i := range n {
		r := &m.recs[i]
		if q.Desc {
			r = &m.recs[n-1-i]
		}
		if !q.Match(r) {
			continue
		}
		p.Records = append(p.Records, *r)
		if len(p.Records) == q.Limit {
			pos := query.PositionOf(r)
			p.Next = &pos
			break
		}
	}
	return p, nil
}

func (m *memStore) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// failedStore wraps a store that has failed closed: Err reports why and
// nothing is accepted. It wraps the real store too once it lands.
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

func TestMemStoreIsFaithful(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	ok := vellum.Outcome{Status: vellum.StatusSuccess}
	seqs, err := s.Append(ctx,
		vellum.Record{Action: "a", Outcome: ok, EventID: "e1", TenantID: "t"},
		vellum.Record{Action: "b", Outcome: ok},
		vellum.Record{Action: "c", Outcome: ok, EventID: "e1", TenantID: "t"},
	)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint64{1, 2, 1}; !equalSeqs(seqs, want) {
		t.Fatalf("seqs = %v, want %v", seqs, want)
	}
	if _, err := s.Append(ctx, vellum.Record{Action: "Bad Action", Outcome: ok}); !errors.Is(err, vellum.ErrInvalid) {
		t.Fatalf("invalid record: %v", err)
	}
	p, err := s.Query(ctx, query.Query{Limit: 1, Desc: true})
	if err != nil || len(p.Records) != 1 || p.Records[0].Seq != 2 || p.Next == nil {
		t.Fatalf("page %+v, %v", p, err)
	}
}

func equalSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
