package collector

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/step"
)

// Sink is where the collector appends records: *engine.Engine, every
// backends.Store and server.Store satisfy it. Append returns only once
// the records are durable, and stores a retried (tenant, event_id) once.
// It must be safe for concurrent use.
type Sink interface {
	Append(ctx context.Context, recs ...vellum.Record) ([]uint64, error)
}

// AuditCollector observes agents' step streams and appends one audit
// record per significant step to a Sink, under a failure policy. It is
// safe for concurrent use: any number of streams may be wrapped at once.
type AuditCollector struct {
	opts Options
	sink atomic.Pointer[sinkBox]

	events, records, appended, failures, spilled, replayed, dropped atomic.Uint64
	reported                                                        atomic.Uint64 // dropped records reported by an audit.dropped record
	spillPending, spillBytes                                        atomic.Int64
	lastErr                                                         atomic.Pointer[string]

	// fail_open: the writer goroutine owns sp and unreported.
	queue      chan []vellum.Record
	wake       chan struct{}
	flushReq   chan chan struct{}
	closing    chan struct{}
	stopped    chan struct{}
	closeOnce  sync.Once
	closed     atomic.Bool
	sp         *spill
	unreported uint64 // dropped records not yet recorded as audit.dropped
	spilling   bool
	lastLog    time.Time
}

type sinkBox struct{ Sink }

// New returns a collector appending to sink. Nil opts means fail_closed
// with the defaults. With fail_open it opens (or creates) the spill file,
// and records found there from an earlier run are replayed first.
func New(sink Sink, opts *Options) (*AuditCollector, error) {
	if sink == nil {
		return nil, fmt.Errorf("%w: nil sink", ErrOptions)
	}
	c := &AuditCollector{}
	if opts != nil {
		c.opts = *opts
	}
	c.opts.setDefaults()
	if err := c.opts.validate(); err != nil {
		return nil, err
	}
	c.sink.Store(&sinkBox{sink})
	if c.opts.Policy == FailOpen {
		sp, err := openSpill(c.opts.FS, c.opts.SpillPath, c.opts.SpillMaxBytes, c.opts.SpillMaxRecords)
		if err != nil {
			return nil, err
		}
		c.sp = sp
		c.publishSpill()
		c.queue = make(chan []vellum.Record, c.opts.Queue)
		c.wake = make(chan struct{}, 1)
		c.flushReq = make(chan chan struct{})
		c.closing = make(chan struct{})
		c.stopped = make(chan struct{})
		if sp.pending > 0 {
			c.spilling = true
			c.opts.Logger.Warn("audit spill holds records from an earlier run; replaying them first", "records", sp.pending)
		}
		go c.run()
	}
	return c, nil
}

// SetSink makes the collector append to s from now on: an embedding agent
// server that reopened its store after a failure hands the new one here,
// and fail_open replays its spill into it.
func (c *AuditCollector) SetSink(s Sink) {
	if s == nil {
		return
	}
	c.sink.Store(&sinkBox{s})
	if c.wake != nil {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// Wrap returns steps observed: every event and error passes through
// unchanged and in order, and each significant step's records (the table
// in docs/events.md) are appended with the Request that ctx carries
// (WithRequest). Tool calls being assembled from deltas are recorded when
// the next other step arrives, or when the stream ends (also when the
// consumer stops early). An error from steps is recorded as request.end
// with status failure.
//
// In fail_closed a step is yielded only once its records are durable; if
// they cannot be made so within Options.Timeout the stream yields a zero
// Event with an error wrapping ErrNotDurable and ends. In fail_open the
// records are queued for the background writer and the step goes on at
// once.
func (c *AuditCollector) Wrap(ctx context.Context, steps iter.Seq2[step.Event, error]) iter.Seq2[step.Event, error] {
	return func(yield func(step.Event, error) bool) {
		req, _ := RequestFrom(ctx)
		m := NewMapper(req)
		var buf []vellum.Record
		for ev, err := range steps {
			if err != nil {
				// Recorded as a request_end step with the error: the
				// record a failed stream gets over HTTP too.
				end := step.Event{Type: step.RequestEnd, Error: err.Error()}
				buf = m.Map(&end, c.opts.Now(), buf[:0])
				if derr := c.emit(ctx, buf); derr != nil {
					yield(step.Event{}, derr)
					return
				}
				if !yield(ev, err) {
					return
				}
				continue
			}
			c.events.Add(1)
			buf = m.Map(&ev, c.opts.Now(), buf[:0])
			if len(buf) > 0 {
				if derr := c.emit(ctx, buf); derr != nil {
					yield(step.Event{}, derr)
					return
				}
			}
			if !yield(ev, nil) {
				// The consumer stopped: what it saw is still recorded.
				if m.Pending() {
					c.emit(ctx, m.Flush(c.opts.Now(), buf[:0]))
				}
				return
			}
		}
		if m.Pending() {
			if derr := c.emit(ctx, m.Flush(c.opts.Now(), buf[:0])); derr != nil {
				yield(step.Event{}, derr)
			}
		}
	}
}

// emit hands recs to the store under the policy.
func (c *AuditCollector) emit(ctx context.Context, recs []vellum.Record) error {
	c.records.Add(uint64(len(recs)))
	if c.opts.Policy == FailClosed {
		actx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
		defer cancel()
		if err := c.append(actx, recs); err != nil {
			return fmt.Errorf("%w: %w", ErrNotDurable, err)
		}
		return nil
	}
	if c.closed.Load() {
		c.dropped.Add(uint64(len(recs)))
		c.opts.Logger.Error("audit records dropped: the collector is closed", "records", len(recs))
		return ErrClosed
	}
	select {
	case c.queue <- slices.Clone(recs):
		return nil
	case <-c.stopped:
		c.dropped.Add(uint64(len(recs)))
		c.opts.Logger.Error("audit records dropped: the collector is closed", "records", len(recs))
		return ErrClosed
	}
}

// append appends recs to the sink, counting the outcome.
func (c *AuditCollector) append(ctx context.Context, recs []vellum.Record) error {
	_, err := c.sink.Load().Append(ctx, recs...)
	if err != nil {
		c.failures.Add(1)
		msg := err.Error()
		c.lastErr.Store(&msg)
		if c.opts.Policy == FailClosed {
			c.opts.Logger.Error("audit records not durable: failing the step (fail_closed)", "records", len(recs), "err", err)
		}
		return err
	}
	c.appended.Add(uint64(len(recs)))
	return nil
}

// run is fail_open's writer: it appends queued records, spills them while
// the store fails, and replays the spill when it recovers.
func (c *AuditCollector) run() {
	defer close(c.stopped)
	t := time.NewTicker(c.opts.RetryInterval)
	defer t.Stop()
	for {
		select {
		case recs := <-c.queue:
			c.write(c.more(recs))
		case <-t.C:
			c.replay()
		case <-c.wake:
			c.replay()
		case ch := <-c.flushReq:
			c.drain()
			c.replay()
			close(ch)
		case <-c.closing:
			c.drain()
			c.replay()
			if c.sp.pending > 0 {
				c.opts.Logger.Warn("audit collector closed with records in its spill; they are replayed when it opens again", "records", c.sp.pending)
			}
			c.sp.close()
			return
		}
	}
}

// maxBatch bounds the records the writer appends at once.
const maxBatch = 512

// more adds to recs what else is queued, up to maxBatch records.
func (c *AuditCollector) more(recs []vellum.Record) []vellum.Record {
	for len(recs) < maxBatch {
		select {
		case r := <-c.queue:
			recs = append(recs, r...)
		default:
			return recs
		}
	}
	return recs
}

func (c *AuditCollector) drain() {
	for {
		select {
		case r := <-c.queue:
			c.write(c.more(r))
		default:
			return
		}
	}
}

// write appends recs, unless records wait in the spill (then recs join
// them, to keep the order; the spill is replayed every RetryInterval, on
// SetSink and on Flush, not on every write, so a hung store costs the
// writer one Timeout per retry, not per batch); what cannot be appended
// goes to the spill.
func (c *AuditCollector) write(recs []vellum.Record) {
	if c.sp.pending == 0 && !c.spilling {
		err := c.store(recs)
		if err == nil {
			return
		}
		c.spilling = true
		c.opts.Logger.Error("audit store failing: spilling records (fail_open)", "err", err)
	}
	switch err := c.sp.add(recs); {
	case err == nil:
		c.spilled.Add(uint64(len(recs)))
	case errors.Is(err, errSpillFull):
		c.drop(len(recs), "audit records dropped: the spill is full", nil)
	default:
		c.drop(len(recs), "audit records dropped: the spill cannot be written", err)
	}
	c.publishSpill()
}

// store appends recs within Timeout. If the store refuses a record itself
// (invalid, or larger than its limit: no retry can store it), the records
// are appended one by one and each refused one is dropped — counted,
// logged and reported like a full spill — so that it cannot block the
// records behind it forever. Any other error is returned: the store is
// failing.
func (c *AuditCollector) store(recs []vellum.Record) error {
	err := c.appendWithin(recs)
	if err == nil || !refused(err) {
		return err
	}
	for i := range recs {
		err := c.appendWithin(recs[i : i+1])
		switch {
		case err == nil:
		case refused(err):
			c.drop(1, "audit record dropped: the store refuses it", err)
		default:
			return err
		}
	}
	return nil
}

func (c *AuditCollector) appendWithin(recs []vellum.Record) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	defer cancel()
	return c.append(ctx, recs)
}

// refused reports an append error that is the record's fault.
func refused(err error) bool {
	return errors.Is(err, vellum.ErrInvalid) || errors.Is(err, backends.ErrTooLarge) || errors.Is(err, vellum.ErrTooLarge)
}

// drop counts and logs lost records (at most one log line per retry
// interval, with the running total); they are recorded as an
// audit.dropped record once the store takes records again.
func (c *AuditCollector) drop(n int, msg string, err error) {
	c.dropped.Add(uint64(n))
	c.unreported += uint64(n)
	if now := time.Now(); now.Sub(c.lastLog) >= c.opts.RetryInterval {
		c.lastLog = now
		args := []any{"records", n, "dropped_total", c.dropped.Load(), "spill_records", c.sp.pending, "spill_max_records", c.opts.SpillMaxRecords, "spill_max_bytes", c.opts.SpillMaxBytes}
		if err != nil {
			args = append(args, "err", err)
		}
		c.opts.Logger.Error(msg, args...)
	}
}

// replay appends the spilled records in order, and then the report of
// dropped ones; it stops at the first failure, to try again later.
func (c *AuditCollector) replay() {
	defer c.publishSpill()
	for c.sp.pending > 0 {
		recs, off, err := c.sp.next(maxBatch)
		if err != nil {
			msg := err.Error()
			c.lastErr.Store(&msg)
			c.opts.Logger.Error("audit spill cannot be read; replay stopped", "err", err)
			return
		}
		if err := c.store(recs); err != nil {
			return
		}
		c.replayed.Add(uint64(len(recs)))
		if err := c.sp.advance(off, len(recs)); err != nil {
			c.opts.Logger.Error("audit spill cannot be truncated after its replay", "err", err)
			return
		}
	}
	if c.unreported > 0 {
		r := vellum.Record{EventID: "st-dropped-" + strconv.FormatInt(time.Now().UnixNano(), 36), EventTime: c.opts.Now(),
			Action: "audit.dropped", Outcome: vellum.Outcome{Status: vellum.StatusFailure,
				Reason: fmt.Sprintf("%d audit records were dropped: the store failed and the spill was full or could not be written", c.unreported)},
			Attributes: map[string]string{"dropped": strconv.FormatUint(c.unreported, 10)}}
		if err := c.appendWithin([]vellum.Record{r}); err != nil {
			return
		}
		c.reported.Add(c.unreported)
		c.unreported = 0
	}
	if c.spilling {
		c.spilling = false
		c.opts.Logger.Info("audit store recovered: the spill is replayed", "replayed_total", c.replayed.Load())
	}
}

func (c *AuditCollector) publishSpill() {
	c.spillPending.Store(int64(c.sp.pending))
	c.spillBytes.Store(c.sp.size - c.sp.readOff)
}

// Flush waits until fail_open's queue is written (to the store or the
// spill) and one replay of the spill was tried. It returns an error if
// records still wait in the spill, or ctx's error. In fail_closed there is
// nothing to flush.
func (c *AuditCollector) Flush(ctx context.Context) error {
	if c.opts.Policy == FailClosed {
		return nil
	}
	ch := make(chan struct{})
	select {
	case c.flushReq <- ch:
	case <-c.stopped:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ch:
	case <-ctx.Done():
		return ctx.Err()
	}
	if n := c.spillPending.Load(); n > 0 {
		return fmt.Errorf("collector: %d records wait in the spill: %s", n, c.Stats().LastError)
	}
	return nil
}

// Close stops fail_open's writer after it wrote what is queued (to the
// store or the spill). Streams must not be wrapped after Close. It is
// safe to call more than once.
func (c *AuditCollector) Close() error {
	if c.opts.Policy == FailClosed {
		return nil
	}
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		close(c.closing)
	})
	<-c.stopped
	return nil
}

// Stats are a collector's counters since New.
type Stats struct {
	Policy   Policy
	Events   uint64 // steps seen
	Records  uint64 // records made from them
	Appended uint64 // records the store acknowledged (replayed ones included)
	Failures uint64 // failed appends
	Spilled  uint64 // records written to the spill
	Replayed uint64 // records replayed from the spill
	Dropped  uint64 // records lost: spill full or unwritable, or the collector closed
	// SpillPending and SpillBytes are what waits in the spill now.
	SpillPending int
	SpillBytes   int64
	// Queued is how many steps' records wait for the writer.
	Queued int
	// LastError is the last append or spill error (no record contents).
	LastError string
}

// Stats returns the counters. Safe to call at any time.
func (c *AuditCollector) Stats() Stats {
	s := Stats{Policy: c.opts.Policy, Events: c.events.Load(), Records: c.records.Load(), Appended: c.appended.Load(),
		Failures: c.failures.Load(), Spilled: c.spilled.Load(), Replayed: c.replayed.Load(), Dropped: c.dropped.Load(),
		SpillPending: int(c.spillPending.Load()), SpillBytes: c.spillBytes.Load(), Queued: len(c.queue)}
	if p := c.lastErr.Load(); p != nil {
		s.LastError = *p
	}
	return s
}

// SpillDepth reports what waits in the spill: records and bytes. Its
// signature is metrics.SpillDepthFunc, so a collector plugs into the
// vellum_spill_events and vellum_spill_bytes series with
// m.WatchSpill("collector", c.SpillDepth).
func (c *AuditCollector) SpillDepth() (events int, bytes int64) {
	return int(c.spillPending.Load()), c.spillBytes.Load()
}

// Ready returns nil while records reach the store, and otherwise why not:
// records waiting in the spill or dropped. An agent server reports it in
// its readiness check.
func (c *AuditCollector) Ready() error {
	s := c.Stats()
	switch {
	case s.SpillPending > 0:
		return fmt.Errorf("collector: %d audit records wait in the spill (store failing: %s)", s.SpillPending, s.LastError)
	case s.Dropped > c.reported.Load():
		return fmt.Errorf("collector: %d audit records dropped and not yet reported to the store", s.Dropped-c.reported.Load())
	}
	return nil
}
