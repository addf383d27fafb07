package backends

import (
	"context"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/query"
)

// Store is the AuditStore contract. Implementations must be safe for
// concurrent use.
type Store interface {
	// Append stores records in order and returns their seqs, only once
	// they are durable. The store validates each record, stamps Seq and
	// the receipt Time (UTC, strictly increasing with Seq), chains it
	// (KeyID, PrevMAC, MAC), and stores a retried (tenant, event_id) once,
	// returning its first seq. An error means none of them is
	// acknowledged; errors wrapping ErrInvalid or ErrTooLarge are the
	// caller's fault.
	Append(ctx context.Context, recs ...vellum.Record) ([]uint64, error)
	// Get returns the record with seq, with KeyID, PrevMAC and MAC, or an
	// error wrapping ErrNotFound.
	Get(ctx context.Context, seq uint64) (vellum.Record, error)
	// Query returns the next page of records matching q (q.Match), in q's
	// order, at most q.Limit of them, with Next set when the page is full.
	// q is normalized first; a bad q is a *query.ParamError.
	Query(ctx context.Context, q query.Query) (query.Page, error)
	// Err returns nil while the store works, and the reason once it has
	// failed closed or been closed; it then accepts nothing.
	Err() error
	// Close releases the store; calls after it fail with ErrClosed. It is
	// safe to call more than once.
	Close() error
}
