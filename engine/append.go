package engine

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/index"
	"github.com/vellumlog/vellum/segment"
)

// group is one group commit: the records of every caller that arrived while
// the previous group was being written, committed with one fsync.
type group struct {
	items []item
	bytes int
	seqs  []uint64 // per item, set before done is closed
	err   error
	done  chan struct{}
}

type item struct {
	// enc is the canonical encoding with seq and time still zero. The
	// Merkle tree goroutine hashes it after commit (merkle.go): never
	// recycle it.
	enc   []byte
	dedup string // tenant + "\x00" + event_id, or ""
	keys  index.Keys
}

// Append stores records and returns their sequence numbers, in order, only
// after their bytes are fsync'd. The engine assigns Seq and the receipt Time
// (UTC, strictly increasing with Seq); fields the store assigns are ignored
// on input. Each record is validated and, when a Redactor is configured,
// redacted before it is encoded; the caller's records are not modified.
//
// A record whose tenant and event_id match one of the recent records (see
// Options.DedupEntries) is not stored again; its original seq is returned.
//
// Append fails with ErrTooLarge (nothing of the call is written), with a
// wrapped vellum.ErrInvalid, with ErrClosed, or with ErrFailed after an I/O
// error, in which case none of the records are acknowledged. If ctx ends
// first, Append returns ctx.Err() and the records may or may not be stored.
func (e *Engine) Append(ctx context.Context, recs ...vellum.Record) ([]uint64, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	items, size, err := e.prepare(recs)
	if err != nil {
		return nil, err
	}
	g, off := e.commitInline(items, size), 0
	if g == nil {
		if g, off, err = e.enqueue(items, size); err != nil {
			return nil, err
		}
	}
	select {
	case <-g.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if g.err != nil {
		return nil, g.err
	}
	return g.seqs[off : off+len(items) : off+len(items)], nil
}

// prepare validates, redacts and encodes the records of one call on the
// caller's goroutine, so that this work runs in parallel; the writer only
// patches in seq and time. All encodings share one exactly sized buffer:
// one allocation per call, not per record.
func (e *Engine) prepare(recs []vellum.Record) ([]item, int, error) {
	wrap := func(i int, err error) error {
		if len(recs) > 1 {
			return fmt.Errorf("record %d: %w", i, err)
		}
		return err
	}
	src := recs
	if e.opts.Redactor != nil {
		src = make([]vellum.Record, len(recs))
	}
	size := 0
	for i := range recs {
		if err := recs[i].Validate(); err != nil {
			return nil, 0, wrap(i, err)
		}
		if e.opts.Redactor != nil {
			// The redactor rewrites in place; give it copies of what the
			// caller shares with us.
			r := recs[i]
			r.Attributes = maps.Clone(r.Attributes)
			r.Redactions = slices.Clone(r.Redactions)
			e.opts.Redactor.Redact(&r)
			src[i] = r
		}
		n := src[i].EncodedSize()
		if n > e.opts.MaxRecordSize {
			return nil, 0, wrap(i, fmt.Errorf("%w: %d bytes encoded, limit %d", ErrTooLarge, n, e.opts.MaxRecordSize))
		}
		size += n
	}
	buf := make([]byte, 0, size)
	items := make([]item, len(src))
	for i := range src {
		r := &src[i]
		start := len(buf)
		var err error
		// Seq and time are encoded as the caller left them and patched
		// by the writer; the fields are fixed-width, so sizes hold.
		if buf, err = r.AppendBinary(buf); err != nil {
			return nil, 0, wrap(i, err)
		}
		items[i] = item{enc: buf[start:len(buf):len(buf)], keys: keysOf(r)}
		if r.EventID != "" && e.opts.DedupEntries > 0 {
			items[i].dedup = dedupKey(r.TenantID, r.EventID)
		}
	}
	return items, size, nil
}

// commitInline commits a caller's records on its own goroutine when the
// writer is idle: nothing queued, nothing syncing, nobody holding the
// writer's state. An uncontended caller then pays no goroutine hand-offs,
// which cost a quarter of an fsync on this project's VM. Under contention
// the writer goroutine's group commit takes over as before. It returns nil
// when it did not take the records.
func (e *Engine) commitInline(items []item, size int) *group {
	if !e.wmu.TryLock() {
		return nil
	}
	defer e.wmu.Unlock()
	// Only while the load looks serial (the last batch had one caller's
	// records): under concurrency a caller committing alone would split
	// the group that settle gathers, and each fsync would carry less.
	if e.inflight || e.lastBatch > len(items) {
		return nil
	}
	e.mu.Lock()
	idle := !e.closed && e.failErr == nil && len(e.pending.items) == 0
	e.mu.Unlock()
	if !idle {
		return nil
	}
	g := &group{items: items, bytes: size, done: make(chan struct{})}
	e.commit(g)
	return g
}

// enqueue adds items to the pending group, waiting while the group is full,
// and wakes the writer. It returns the group and the items' offset in it.
func (e *Engine) enqueue(items []item, size int) (*group, int, error) {
	e.mu.Lock()
	for {
		if e.closed {
			e.mu.Unlock()
			return nil, 0, ErrClosed
		}
		if e.failErr != nil {
			err := e.failErr
			e.mu.Unlock()
			return nil, 0, err
		}
		if e.pending.bytes == 0 || e.pending.bytes+size <= e.opts.MaxBatchBytes {
			break
		}
		e.space.Wait()
	}
	g := e.pending
	off := len(g.items)
	g.items = append(g.items, items...)
	g.bytes += size
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
	return g, off, nil
}

// The writer is a two-stage pipeline. The writer goroutine (run) takes the
// pending group, assigns seqs and times, chains MACs and builds the batch's
// frames (segment.Writer.Add), then writes them (Flush) and hands the batch
// to the sync goroutine (syncLoop), which fdatasyncs it, publishes it to
// readers and releases its callers. While one batch syncs, the next one is
// prepared, so the CPU work of a batch overlaps the previous fsync. The
// writer flushes a batch only after the previous one's sync has returned:
// at most one batch is ever unsynced, which recovery relies on.

// job is one batch between the two stages.
type job struct {
	g       *group
	fl      *segment.Flushed // nil when every record was a duplicate
	added   []keyed          // the batch's new records, for the index
	leaves  *leafBatch       // the batch's Merkle leaves (merkle.go)
	entries []segment.Entry  // for Options.OnCommit
}

type keyed struct {
	seq  uint64
	keys *index.Keys
}

// run is the writer goroutine.
//
// The writer's state (the segment writer, the chain, inflight, the index
// keys) belongs to whoever holds wmu: this goroutine, or a caller
// committing inline (commitInline).
func (e *Engine) run() {
	defer close(e.done)
	syncerDone := make(chan struct{})
	go func() {
		defer close(syncerDone)
		e.syncLoop()
	}()
	defer func() {
		e.wmu.Lock()
		defer e.wmu.Unlock()
		e.waitSync()
		close(e.syncCh)
		<-syncerDone
	}()
	tick := time.NewTicker(ageCheckInterval(e.opts.SegmentAge))
	defer tick.Stop()
	settleTimer := time.NewTimer(time.Hour)
	settleTimer.Stop()
	for {
		// Age rotation must not starve while callers keep work pending.
		select {
		case <-tick.C:
			e.wmu.Lock()
			e.waitSync()
			e.rotateIfOld()
			e.wmu.Unlock()
		default:
		}
		// Wait for work unless some is already pending (settle may have
		// consumed the wake-up that announced it).
		if e.pendingCount() == 0 {
			select {
			case <-e.wake:
			case <-tick.C:
				e.wmu.Lock()
				e.waitSync()
				e.rotateIfOld()
				e.wmu.Unlock()
				continue
			case <-e.quit:
				// Commit what callers handed in before Close, then stop.
				e.wmu.Lock()
				if g := e.take(); g != nil {
					e.commit(g)
				}
				e.wmu.Unlock()
				return
			}
		}
		e.wmu.Lock()
		// While a batch syncs, a small group is left to grow: the callers
		// that sync releases will join it, and one fsync then covers them
		// all. Only a group big enough that preparing it takes about as
		// long as an fsync is prepared at once, overlapping the sync.
		if e.inflight && e.pendingBytes() < pipelineMinBytes {
			e.waitSync()
		}
		if g := e.take(); g != nil {
			e.commit(g)
			e.settle(len(g.items), settleTimer)
		}
		e.wmu.Unlock()
	}
}

// settle gives the callers a batch just released a moment to append again
// before the next group is taken, so that a closed loop of callers shares
// one fsync instead of splitting into cohorts that alternate (each waiting
// out the other's fsync). It waits, without spinning, until as many records
// are pending as were just released (on top of those already waiting), or
// an eighth of the last fsync's duration has passed: a bounded delay that
// buys a larger batch. A single caller is never waited for.
func (e *Engine) settle(released int, timer *time.Timer) {
	if released < 2 || e.inflight || e.lastSync <= 0 {
		return
	}
	want := e.pendingCount() + released
	timer.Reset(e.lastSync / 8)
	defer timer.Stop()
	for e.pendingCount() < want {
		select {
		case <-e.wake:
		case <-timer.C:
			return
		case <-e.quit:
			return
		}
	}
}

func (e *Engine) pendingCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.pending.items)
}

// pipelineMinBytes is the size of a group worth preparing while the previous
// batch is still syncing (about 700 records of 350 bytes: roughly one fsync
// of CPU work on the writer).
const pipelineMinBytes = 256 << 10

func (e *Engine) pendingBytes() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pending.bytes
}

func ageCheckInterval(age time.Duration) time.Duration {
	d := age / 10
	if d > time.Second {
		d = time.Second
	}
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return d
}

// take swaps out the pending group.
func (e *Engine) take() *group {
	e.mu.Lock()
	defer e.mu.Unlock()
	g := e.pending
	if len(g.items) == 0 {
		return nil
	}
	e.pending = &group{done: make(chan struct{}), items: make([]item, 0, len(g.items))}
	e.space.Broadcast()
	return g
}

// waitSync waits until the batch handed to the sync goroutine, if any, is
// synced (or failed).
func (e *Engine) waitSync() {
	if e.inflight {
		<-e.synced
		e.inflight = false
	}
}

// commit prepares one group as a batch, writes it once the previous batch
// is durable, and hands it to the sync goroutine.
func (e *Engine) commit(g *group) {
	if err := e.failed(); err != nil {
		e.release(g, err)
		return
	}
	// A segment that is full once the batches in flight land is sealed
	// before this batch goes into a new one.
	if e.w.FlushedSize() >= e.opts.SegmentSize {
		e.waitSync()
		if err := e.failed(); err != nil {
			e.release(g, err)
			return
		}
		e.rotate()
		if err := e.failed(); err != nil {
			e.release(g, err)
			return
		}
	}
	j := &job{g: g}
	e.lastBatch = len(g.items)
	g.seqs = make([]uint64, len(g.items))
	now := e.opts.Now().UnixNano()
	var dupKeys []string
	for i := range g.items {
		it := &g.items[i]
		if it.dedup != "" {
			if s, ok := e.dedup.get(it.dedup); ok {
				// The first copy is durable, or in an earlier batch that
				// is released before this one.
				g.seqs[i] = s
				continue
			}
		}
		seq := e.nextSeq
		t := now
		if t <= e.lastTime {
			t = e.lastTime + 1
		}
		binary.LittleEndian.PutUint64(it.enc[1:], seq)
		binary.LittleEndian.PutUint64(it.enc[9:], uint64(t))
		mac := e.hasher.Next(e.prev, it.enc)
		if err := e.w.Add(seq, t, it.enc, mac); err != nil {
			// Only a broken invariant gets here; nothing was written.
			e.waitSync()
			e.w.Discard()
			e.treeDiscard()
			e.restore()
			e.release(g, e.fail(err))
			return
		}
		if e.opts.OnCommit != nil {
			j.entries = append(j.entries, segment.Entry{Seq: seq, Time: t, Record: it.enc, MAC: mac, PrevMAC: e.prev})
		}
		if it.dedup != "" {
			e.dedup.put(it.dedup, seq)
			dupKeys = append(dupKeys, it.dedup)
		}
		j.added = append(j.added, keyed{seq, &it.keys})
		e.treeAdd(it.enc, mac) // leaf input for the Merkle tree (merkle.go)
		e.prev, e.nextSeq, e.lastTime = mac, seq+1, t
		g.seqs[i] = seq
	}
	j.leaves = e.treeTake()
	e.waitSync()
	err := e.failed()
	if err == nil {
		j.fl, err = e.w.Flush()
	}
	if err != nil {
		for _, k := range dupKeys {
			e.dedup.forget(k)
		}
		e.release(g, e.fail(err))
		return
	}
	// Hand the batch to the sync goroutine only when a big group is
	// already waiting to be prepared meanwhile; otherwise sync here and
	// spare the callers a goroutine switch.
	if e.pendingBytes() >= pipelineMinBytes {
		e.inflight = true
		e.syncCh <- j
		return
	}
	e.syncJob(j)
}

// release fails a group's callers.
func (e *Engine) release(g *group, err error) {
	g.err = err
	close(g.done)
}

// syncLoop is the sync goroutine: it makes each batch durable, publishes
// it and releases its callers, in order.
func (e *Engine) syncLoop() {
	for j := range e.syncCh {
		e.syncJob(j)
		e.synced <- struct{}{}
	}
}

func (e *Engine) syncJob(j *job) {
	defer close(j.g.done)
	if err := e.failed(); err != nil {
		j.g.err = err
		return
	}
	if j.fl != nil {
		t0 := time.Now()
		if err := e.w.Sync(j.fl); err != nil {
			j.g.err = e.fail(err)
			return
		}
		e.lastSync = time.Since(t0)
	}
	e.observeCommit(j, e.lastSync) // metrics (observer.go)
	for _, k := range j.added {
		e.ix.noteKeys(k.seq, k.keys)
	}
	if e.opts.OnCommit != nil && len(j.entries) > 0 {
		e.opts.OnCommit(e.active.num, j.entries)
	}
	e.publish()
	e.treeHand(j.leaves) // hash the batch off the critical path (merkle.go)
}

// restore rewinds the writer goroutine's chain state to the durable end
// after a batch that was not written.
func (e *Engine) restore() {
	st := e.w.State()
	e.nextSeq, e.prev = st.LastSeq+1, st.LastMAC
	if st.Count > 0 {
		e.lastTime = st.LastTime
	}
}

// fail puts the engine in the failed state: nothing more is acknowledged,
// reads go on, Close still works. The first cause wins.
func (e *Engine) fail(cause error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.failErr == nil {
		e.failErr = fmt.Errorf("%w: %w", ErrFailed, cause)
		e.log.Error("store failed; refusing further appends until reopened", slog.String("error", cause.Error()))
		e.observeFail(cause) // metrics (observer.go)
		e.space.Broadcast()
	}
	return e.failErr
}

func (e *Engine) rotateIfOld() {
	if e.failed() != nil {
		return
	}
	st := e.w.State()
	if st.Count > 0 && e.opts.Now().Sub(e.active.hdr.Created) >= e.opts.SegmentAge {
		e.rotate()
	}
}

// rotate seals the active segment and starts the next one.
func (e *Engine) rotate() {
	ft, err := e.sealActive()
	if err != nil {
		e.fail(err)
		return
	}
	old := e.active
	old.footer = ft
	if err := e.createSegment(old.num + 1); err != nil {
		// The sealed segment is complete; a reopen starts the next one.
		e.fail(err)
		e.imu.Lock()
		s := e.snap.Load()
		e.snap.Store(&snapshot{sealed: append(s.sealed, old), first: s.first, last: s.last})
		e.imu.Unlock()
		e.active = nil
		return
	}
	e.imu.Lock()
	s := e.snap.Load()
	e.snap.Store(&snapshot{sealed: append(s.sealed, old), first: s.first, last: s.last, active: s.active})
	e.imu.Unlock()
	e.publish()
	e.observeSeal(old.num, ft) // metrics (observer.go)
	e.log.Info("segment sealed", slog.Uint64("segment", old.num), slog.Uint64("records", ft.Count), slog.Uint64("last_seq", ft.LastSeq))
}
