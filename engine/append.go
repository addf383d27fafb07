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
	enc   []byte // canonical encoding with seq and time still zero
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
	items := make([]item, len(recs))
	size := 0
	for i := range recs {
		it, err := e.prepare(&recs[i])
		if err != nil {
			if len(recs) > 1 {
				return nil, fmt.Errorf("record %d: %w", i, err)
			}
			return nil, err
		}
		items[i] = it
		size += len(it.enc)
	}
	g, off, err := e.enqueue(items, size)
	if err != nil {
		return nil, err
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

// prepare validates, redacts and encodes one record on the caller's
// goroutine, so that this work runs in parallel; the writer only patches in
// seq and time.
func (e *Engine) prepare(in *vellum.Record) (item, error) {
	r := *in
	r.Seq, r.Time, r.KeyID, r.PrevMAC, r.MAC = 0, time.Time{}, "", vellum.MAC{}, vellum.MAC{}
	if err := r.Validate(); err != nil {
		return item{}, err
	}
	if e.opts.Redactor != nil {
		// The redactor rewrites in place; give it copies of what the
		// caller shares with us.
		r.Attributes = maps.Clone(r.Attributes)
		r.Redactions = slices.Clone(r.Redactions)
		e.opts.Redactor.Redact(&r)
	}
	enc, err := r.AppendBinary(make([]byte, 0, r.EncodedSize()))
	if err != nil {
		return item{}, err
	}
	if len(enc) > e.opts.MaxRecordSize {
		return item{}, fmt.Errorf("%w: %d bytes encoded, limit %d", ErrTooLarge, len(enc), e.opts.MaxRecordSize)
	}
	it := item{enc: enc, keys: keysOf(&r)}
	if r.EventID != "" && e.opts.DedupEntries > 0 {
		it.dedup = dedupKey(r.TenantID, r.EventID)
	}
	return it, nil
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

// run is the writer goroutine: it takes the pending group, writes and syncs
// it, releases its callers, and rotates segments.
func (e *Engine) run() {
	defer close(e.done)
	tick := time.NewTicker(ageCheckInterval(e.opts.SegmentAge))
	defer tick.Stop()
	for {
		select {
		case <-e.wake:
		case <-tick.C:
			e.rotateIfOld()
			continue
		case <-e.quit:
			// Commit what callers handed in before Close, then stop.
			if g := e.take(); g != nil {
				e.commit(g)
			}
			return
		}
		if g := e.take(); g != nil {
			e.commit(g)
		}
	}
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

// commit writes one group and releases its callers.
func (e *Engine) commit(g *group) {
	defer close(g.done)
	if err := e.Err(); err != nil && err != ErrClosed {
		g.err = err
		return
	}
	g.seqs = make([]uint64, len(g.items))
	now := e.opts.Now().UnixNano()
	e.entries = e.entries[:0]
	var added []string
	for i, it := range g.items {
		if it.dedup != "" {
			if s, ok := e.dedup.get(it.dedup); ok {
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
			e.w.Discard()
			e.treeDiscard()
			e.restore()
			g.err = e.fail(err)
			return
		}
		if e.opts.OnCommit != nil {
			e.entries = append(e.entries, segment.Entry{Seq: seq, Time: t, Record: it.enc, MAC: mac, PrevMAC: e.prev})
		}
		if it.dedup != "" {
			e.dedup.put(it.dedup, seq)
			added = append(added, it.dedup)
		}
		e.ix.noteKeys(seq, &g.items[i].keys)
		e.treeAdd(it.enc, mac) // leaf input for the Merkle tree (merkle.go)
		e.prev, e.nextSeq, e.lastTime = mac, seq+1, t
		g.seqs[i] = seq
	}
	if err := e.w.Commit(); err != nil {
		e.treeDiscard()
		for _, k := range added {
			e.dedup.forget(k)
		}
		g.err = e.fail(err)
		return
	}
	if e.opts.OnCommit != nil && len(e.entries) > 0 {
		e.opts.OnCommit(e.active.num, e.entries)
	}
	e.publish()
	e.treeFlush() // hash the batch off the critical path (merkle.go)
	if e.w.State().Size >= e.opts.SegmentSize {
		e.rotate()
	}
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
		e.space.Broadcast()
	}
	return e.failErr
}

func (e *Engine) rotateIfOld() {
	if e.Err() != nil {
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
	e.log.Info("segment sealed", slog.Uint64("segment", old.num), slog.Uint64("records", ft.Count), slog.Uint64("last_seq", ft.LastSeq))
}
