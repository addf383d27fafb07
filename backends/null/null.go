// Package null is the AuditStore that accepts records and keeps nothing:
// for development only, when what is stored does not matter (load tests of
// an agent server, say). It validates every record like a real store and
// returns increasing seqs, but Get finds nothing and Query returns empty
// pages. Open logs a warning that says so, loudly.
//
//	s := null.Open(logger) // audit.store: null
//
// A Store is safe for concurrent use.
package null

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/backends/internal/sqlrec"
	"github.com/vellumlog/vellum/query"
)

// Warning is what Open logs.
const Warning = "audit.store is null: every audit record is DISCARDED; nothing is stored, nothing can be queried or proven. Development only: never run this in production"

// Store discards records.
type Store struct {
	maxSize int
	next    atomic.Uint64
	closed  atomic.Bool
}

var _ backends.Store = (*Store)(nil)

// Open returns a null store after logging Warning at error level to log
// (slog.Default() when nil). maxRecordSize bounds records as a real store
// would (0: 1 MiB).
func Open(log *slog.Logger, maxRecordSize int) *Store {
	if log == nil {
		log = slog.Default()
	}
	log.Error(Warning, slog.String("component", "null-store"))
	return &Store{maxSize: maxRecordSize}
}

// Append validates recs and discards them, returning new seqs.
func (s *Store) Append(ctx context.Context, recs ...vellum.Record) ([]uint64, error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	if _, err := sqlrec.Prepare(recs, nil, s.maxSize, ""); err != nil {
		return nil, err
	}
	seqs := make([]uint64, len(recs))
	last := s.next.Add(uint64(len(recs)))
	for i := range seqs {
		seqs[i] = last - uint64(len(recs)) + uint64(i) + 1
	}
	return seqs, nil
}

// LastSeq returns the last seq handed out.
func (s *Store) LastSeq() uint64 { return s.next.Load() }

// Get finds nothing.
func (s *Store) Get(ctx context.Context, seq uint64) (vellum.Record, error) {
	return vellum.Record{}, fmt.Errorf("%w: seq %d (the null store keeps nothing)", backends.ErrNotFound, seq)
}

// Query returns an empty page (after checking q).
func (s *Store) Query(ctx context.Context, q query.Query) (query.Page, error) {
	if err := q.Normalize(); err != nil {
		return query.Page{}, err
	}
	return query.Page{}, nil
}

// Err returns ErrClosed after Close.
func (s *Store) Err() error {
	if s.closed.Load() {
		return fmt.Errorf("%w: null store", backends.ErrClosed)
	}
	return nil
}

// Close closes the store.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}
