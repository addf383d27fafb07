package replicate

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/backends/internal/sqlrec"
)

// Source is the log replicated: *engine.Engine.
type Source interface {
	Scan(ctx context.Context, from, to uint64) iter.Seq2[vellum.Record, error]
	Get(ctx context.Context, seq uint64) (vellum.Record, error)
	LastSeq() uint64
	FirstSeq() uint64
	StoreID() [16]byte
	SegmentOf(seq uint64) (uint64, bool)
	Published() <-chan struct{}
}

// Target is the database replicated into: *sqlite.Replica or
// *postgres.Replica.
type Target interface {
	// Cursor registers the writer on first use and returns how far the
	// database holds its records.
	Cursor(ctx context.Context, writer string, source [16]byte) (sqlrec.Cursor, error)
	// Write stores rows that follow the cursor and moves it, in one
	// transaction.
	Write(ctx context.Context, writer string, rows []sqlrec.Row) error
	// Purge removes the writer's rows up to seq through (an engine purge
	// removed those records) through the database's append-only-safe
	// path, and records through as the writer's purge horizon (the
	// cursor's Purged), in one transaction; a through at or below it
	// changes nothing.
	Purge(ctx context.Context, writer string, through uint64) error
	// Row returns one stored row.
	Row(ctx context.Context, writer string, seq uint64) (sqlrec.Row, error)
	// Name names the database, without password.
	Name() string
	Close() error
}

// Defaults for Options.
const (
	DefaultBatchSize     = 10000
	DefaultFlushInterval = 100 * time.Millisecond
	DefaultRetryMax      = 5 * time.Second
)

// Options configure a Replicator. The zero value works (for SQLite; a
// PostgreSQL fleet needs Writer).
type Options struct {
	// Writer is this server's writer id in the database: one per engine.
	Writer string
	// IncludeArguments keeps the (already redacted) tool arguments as
	// JSON instead of only their SHA-256 and size.
	IncludeArguments bool
	// BatchSize bounds the records per transaction; default 10,000. The
	// replicator holds at most two batches: one being written, and the
	// next, read from the engine meanwhile.
	BatchSize int
	// FlushInterval is the longest a record waits for its batch to fill
	// before it is written; default 100 ms.
	FlushInterval time.Duration
	// RetryMax bounds the backoff while the database is down; default 5 s.
	RetryMax time.Duration
	// Logger receives structured events (never record contents or
	// passwords); slog.Default() when nil.
	Logger *slog.Logger
	// Now is the clock for lag; time.Now when nil.
	Now func() time.Time
}

// Lag is how far the replica is behind the engine.
type Lag struct {
	// Target names the database.
	Target string `json:"target"`
	// Records is how many durable records are not yet replicated.
	Records uint64 `json:"lag_records"`
	// Seconds is how long the oldest of them has waited (0 when none).
	Seconds float64 `json:"lag_seconds"`
	// Replicated is the last seq the database holds.
	Replicated uint64 `json:"replicated_seq"`
	// Error is why the last attempt failed, while it keeps failing.
	Error string `json:"error,omitempty"`
	// Stopped is true after a problem retrying cannot fix (Err says).
	Stopped bool `json:"stopped,omitempty"`
}

// Replicator tails one engine into one database.
type Replicator struct {
	src  Source
	open func(context.Context) (Target, error)
	opts Options
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	target   Target
	cur      uint64 // last replicated seq (valid when known)
	purged   uint64 // the replica's purge horizon (valid when known)
	known    bool
	lastErr  error
	fatal    error
	batches  uint64
	rows     uint64
	caughtUp chan struct{} // closed and replaced whenever cur moves

	// pending is the last seq the engine purged (Purged); the run
	// goroutine applies it to the replica, kicked by purgeKick.
	pending   atomic.Uint64
	purgeKick chan struct{}

	// ahead is the next batch, read while the previous one was written
	// (only the run goroutine touches it).
	ahead []sqlrec.Row
}

// ErrStopped reports a replicator that met a problem retrying cannot fix
// (another engine's rows, a newer schema); the wrapped error says which.
var ErrStopped = errors.New("replicate: stopped")

// Start starts replicating src into the database open returns (called
// again after it fails, with backoff).
func Start(src Source, open func(context.Context) (Target, error), opts *Options) *Replicator {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.RetryMax <= 0 {
		o.RetryMax = DefaultRetryMax
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &Replicator{src: src, open: open, opts: o, done: make(chan struct{}), caughtUp: make(chan struct{}), purgeKick: make(chan struct{}, 1),
		log: o.Logger.With(slog.String("component", "replicate"), slog.String("writer", o.Writer))}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	go r.run()
	return r
}

// Purged tells the replicator that the engine purged every record up to
// seq through (engine.Retainer.OnPurge, and the retention manifest's last
// purged seq at start): the replica removes their rows too, as soon as it
// can, retrying while the database is down (the horizon it reached is kept
// in the database, so a restart applies whatever is pending again). Only
// replicated rows are removed; a purge beyond the cursor is applied up to
// it, and the rest as the rows arrive. It does not block.
func (r *Replicator) Purged(through uint64) {
	for {
		p := r.pending.Load()
		if through <= p || r.pending.CompareAndSwap(p, through) {
			break
		}
	}
	select {
	case r.purgeKick <- struct{}{}:
	default:
	}
}

// PurgedSeq returns the replica's purge horizon as last read or moved:
// its rows up to it are gone.
func (r *Replicator) PurgedSeq() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.purged
}

// Close stops replicating (a batch in flight is finished or rolled back)
// and closes the database.
func (r *Replicator) Close() error {
	r.cancel()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.target != nil {
		return r.target.Close()
	}
	return nil
}

// Err returns why the replicator stopped for good, or nil.
func (r *Replicator) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fatal
}

// Lag returns how far the replica is behind, in records and seconds. It
// is cheap enough for /readyz and a metrics scrape.
func (r *Replicator) Lag() Lag {
	r.mu.Lock()
	l := Lag{Replicated: r.cur, Stopped: r.fatal != nil}
	if r.target != nil {
		l.Target = r.target.Name()
	}
	if r.fatal != nil {
		l.Error = r.fatal.Error()
	} else if r.lastErr != nil {
		l.Error = r.lastErr.Error()
	}
	cur, known := r.cur, r.known
	r.mu.Unlock()
	last := r.src.LastSeq()
	if !known {
		// Until the database answers, everything since the store's first
		// record may be unreplicated.
		cur = r.src.FirstSeq() - 1
	}
	if last > cur {
		l.Records = last - cur
		if rec, err := r.src.Get(context.Background(), cur+1); err == nil {
			l.Seconds = max(0, r.opts.Now().Sub(rec.Time).Seconds())
		}
	}
	return l
}

// Replicated returns the last replicated seq, and a channel closed when
// it next moves.
func (r *Replicator) Replicated() (uint64, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur, r.caughtUp
}

// WaitFor waits until seq is replicated or ctx ends.
func (r *Replicator) WaitFor(ctx context.Context, seq uint64) error {
	for {
		cur, ch := r.Replicated()
		if cur >= seq {
			return nil
		}
		if err := r.Err(); err != nil {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (r *Replicator) setErr(err error) {
	r.mu.Lock()
	r.lastErr = err
	r.mu.Unlock()
}

func (r *Replicator) run() {
	defer close(r.done)
	backoff := 50 * time.Millisecond
	failing := false
	var lastWrite time.Time
	for r.ctx.Err() == nil {
		err := r.step(&lastWrite)
		if err == nil {
			if failing {
				r.log.Info("replication resumed", slog.String("target", r.targetName()))
				failing = false
			}
			backoff = 50 * time.Millisecond
			r.setErr(nil)
			continue
		}
		if r.ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrStopped) || errors.Is(err, backends.ErrSchema) {
			r.mu.Lock()
			r.fatal = err
			r.mu.Unlock()
			r.log.Error("replication stopped; fix the cause and restart", slog.String("error", err.Error()))
			return
		}
		r.setErr(err)
		if !failing {
			r.log.Warn("replication failing; the engine goes on acknowledging and the replica will catch up", slog.String("error", err.Error()))
			failing = true
		}
		// The batch may or may not have landed: read the cursor again.
		r.mu.Lock()
		r.known = false
		r.mu.Unlock()
		select {
		case <-time.After(backoff):
		case <-r.ctx.Done():
			return
		}
		backoff = min(backoff*2, r.opts.RetryMax)
	}
}

func (r *Replicator) targetName() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.target == nil {
		return ""
	}
	return r.target.Name()
}

// step does one unit of work: open the target, read the cursor, or write
// one batch (after waiting for records). It returns nil when it made
// progress or waited.
func (r *Replicator) step(lastWrite *time.Time) error {
	ctx := r.ctx
	r.mu.Lock()
	t, known, cur := r.target, r.known, r.cur
	r.mu.Unlock()
	if t == nil {
		t, err := r.open(ctx)
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.target = t
		r.mu.Unlock()
		return nil
	}
	if !known {
		c, err := t.Cursor(ctx, r.opts.Writer, r.src.StoreID())
		if err != nil {
			return err
		}
		if err := r.checkCursor(ctx, c); err != nil {
			return err
		}
		r.mu.Lock()
		r.cur, r.purged, r.known = c.Seq, c.Purged, true
		r.mu.Unlock()
		return nil
	}
	if p := r.pending.Load(); p > r.PurgedSeq() && cur > r.PurgedSeq() {
		return r.applyPurge(ctx, t, min(p, cur))
	}
	wake := r.src.Published()
	last := r.src.LastSeq()
	if last <= cur {
		select {
		case <-wake:
		case <-r.purgeKick:
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
		return nil
	}
	if last-cur < uint64(r.opts.BatchSize) {
		// Let a small batch fill for up to FlushInterval since the last
		// write, so a trickle does not cost a transaction per record.
		if wait := r.opts.FlushInterval - time.Since(*lastWrite); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
			return nil
		}
	}
	to := min(last, cur+uint64(r.opts.BatchSize))
	from := cur + 1
	if first := r.src.FirstSeq(); from < first {
		return fmt.Errorf("%w: the replica ends at seq %d but the engine's oldest record is %d (retention removed the rest); the gap cannot be filled: start a new replica", ErrStopped, cur, first)
	}
	rows := r.ahead
	r.ahead = nil
	if len(rows) == 0 || rows[0].Seq != from {
		var err error
		if rows, err = r.read(ctx, from, to); err != nil {
			return err
		}
	}
	// While the database takes this batch, read and summarize the next
	// one if it is full (catching up): one batch ahead, no more.
	done := make(chan error, 1)
	go func() { done <- t.Write(ctx, r.opts.Writer, rows) }()
	next := rows[len(rows)-1].Seq + 1
	if end := next + uint64(r.opts.BatchSize) - 1; r.src.LastSeq() >= end {
		// A failure here is met again, and reported, by the next step.
		r.ahead, _ = r.read(ctx, next, end)
	}
	if err := <-done; err != nil {
		r.ahead = nil
		return err
	}
	*lastWrite = time.Now()
	r.mu.Lock()
	r.cur = rows[len(rows)-1].Seq
	r.batches++
	r.rows += uint64(len(rows))
	close(r.caughtUp)
	r.caughtUp = make(chan struct{})
	r.mu.Unlock()
	return nil
}

// applyPurge removes the replica's rows up to through (an engine purge's).
func (r *Replicator) applyPurge(ctx context.Context, t Target, through uint64) error {
	if err := t.Purge(ctx, r.opts.Writer, through); err != nil {
		return fmt.Errorf("replicate: apply the engine's purge through seq %d: %w", through, err)
	}
	r.mu.Lock()
	r.purged = through
	r.mu.Unlock()
	r.log.Info("replica purged", slog.String("target", t.Name()), slog.Uint64("through_seq", through))
	return nil
}

// read returns the summaries of the engine's records from..to.
func (r *Replicator) read(ctx context.Context, from, to uint64) ([]sqlrec.Row, error) {
	rows := make([]sqlrec.Row, 0, to-from+1)
	for rec, err := range r.src.Scan(ctx, from, to) {
		if err != nil {
			return nil, fmt.Errorf("replicate: read the engine at seq %d: %w", from+uint64(len(rows)), err)
		}
		row, err := Summarize(&rec, r.segment(rec.Seq), r.opts.IncludeArguments)
		if err != nil {
			return nil, fmt.Errorf("%w: seq %d: %v", ErrStopped, rec.Seq, err)
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 || rows[0].Seq != from || rows[len(rows)-1].Seq != from+uint64(len(rows))-1 {
		return nil, fmt.Errorf("replicate: the engine's scan of %d..%d returned %d records", from, to, len(rows))
	}
	return rows, nil
}

func (r *Replicator) segment(seq uint64) uint64 {
	n, _ := r.src.SegmentOf(seq)
	return n
}

// checkCursor makes sure the database's rows came from this engine's
// chain: the cursor is not ahead of the engine, and its MAC is the
// engine's for that seq (when the engine still holds it).
func (r *Replicator) checkCursor(ctx context.Context, c sqlrec.Cursor) error {
	if c.Seq == 0 {
		return nil
	}
	if last := r.src.LastSeq(); c.Seq > last {
		return fmt.Errorf("%w: %s holds writer %q up to seq %d, but this engine ends at seq %d: it replicated another data directory (or this one lost records); use another writer id or database",
			ErrStopped, r.targetName(), r.opts.Writer, c.Seq, last)
	}
	if c.Seq < r.src.FirstSeq() {
		return nil
	}
	rec, err := r.src.Get(ctx, c.Seq)
	if err != nil {
		return fmt.Errorf("replicate: read the engine at seq %d: %w", c.Seq, err)
	}
	if rec.MAC != c.MAC {
		return fmt.Errorf("%w: %s holds writer %q up to seq %d with a MAC that is not this engine's: it replicated another chain; use another writer id or database",
			ErrStopped, r.targetName(), r.opts.Writer, c.Seq)
	}
	return nil
}

// Stats returns the batches and rows written since Start.
func (r *Replicator) Stats() (batches, rows uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.batches, r.rows
}
