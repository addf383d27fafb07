package engine

// The group commit. One record's path, top to bottom in this file:
//
//  1. commit (on the appending goroutine): under mu, add stamps each
//     record with the next seq and its receipt time, chains its MAC from
//     the segment writer's tip, and adds it to the writer's buffer and to
//     the filling batch. The caller then wakes the flush loop and waits
//     for the batch to be released.
//  2. flushLoop → flush → writeBatch (on the flush loop goroutine, or on
//     the caller when it found the committer idle): the filling batch is
//     taken (a new one starts filling at once), written with its commit
//     frame in one write, and fsynced while callers fill the next.
//  3. durable: the batch's summary keys go to the indexer, OnCommit sees
//     its entries, readers get a new snapshot, its leaves go to the tree
//     goroutine, and its callers are released.
//  4. Between batches the loop seals a full or old segment and starts the
//     next (rotate.go). A full segment is sealed when the next record
//     comes: the appending goroutine that finds it full asks for the seal
//     and waits.
//
// The policy is that of pebble's LogWriter flush loop and etcd's WAL:
// whatever arrived while the last batch was written and synced is the next
// batch: a slow fsync makes batches larger, a fast one smaller. One bounded
// wait is added, because a same-run benchmark shows it pays (rejoin: the
// callers just released may join the next batch). At most one
// batch is ever written and not yet synced, which recovery relies on: the
// loop writes a batch only after the previous batch's fsync returned.

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/index"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

// committer takes records from every appending goroutine, chains them, and
// makes them durable, one write and one fsync per batch.
//
// Who owns what:
//   - mu guards what appending goroutines touch: the filling batch, the
//     buffered side of the segment writer (Add, Tip, Flush), the HMAC
//     hasher, the dedup window, the active segment's identity and the
//     state flags. Appending goroutines hold it while they add their
//     records; the flush loop holds it while it takes a batch and writes
//     it, and while it swaps segments.
//   - The holder of the flusher's role (flushing) alone writes and syncs
//     a batch and does everything after the sync (the indexer's keys,
//     publishing, handing leaves to the tree, OnCommit, releasing
//     callers), and reads the writer's durable side (State, SpanView)
//     without mu. It is the flush loop, or an appending goroutine that
//     found the committer idle and writes its own batch. Only the flush
//     loop seals and creates segments.
//   - Open uses all of it before the loop starts.
type committer struct {
	opts    *Options
	log     *slog.Logger
	fs      vfs.FS
	dir     string
	storeID [16]byte
	files   *segmentFiles
	index   *indexer
	tree    *tree
	// prealloc zero-fills the next segment's file (prealloc.go); the
	// flush loop takes it at rotation.
	prealloc *preallocator

	mu      sync.Mutex
	space   *sync.Cond // waited on for room in the filling batch; see wakeWaiters
	filling *batch
	// syncing is the batch being written and synced, if any. Nothing in
	// the engine reads it: it is kept (two stores per batch, under mu) so
	// that TestGroupCommitPolicy can tell when every call it started is
	// queued, which it cannot see from outside once a call's batch is taken.
	syncing *batch
	seg     *segInfo        // the active segment; nil only after a failed rotation
	writer  *segment.Writer // its writer: the one place that knows where the chain ends (Tip)
	hasher  *chain.Hasher
	dedup   *dedupWindow
	waiting int  // appending goroutines that found no room since the last wakeWaiters
	sealing bool // the active segment must be sealed first, or is being sealed: appends wait
	// flushing: a flusher holds the writer's durable side, between taking
	// a batch and releasing it (and through a seal): the flush loop, or an
	// appending goroutine that found the committer idle and writes its own
	// batch. flushFree is broadcast when it is given back.
	flushing  bool
	flushFree *sync.Cond
	closed    bool  // Close was called: appends are refused
	failErr   error // set once; the engine then acknowledges nothing more

	pace pace // the disk's usual fsync time, which bounds the rejoin wait; the flusher's

	wake chan struct{} // a batch is filling; capacity 1
	quit chan struct{} // closed by close
	done chan struct{} // closed when the flush loop has exited
}

// batch is one group commit: the records callers added while the previous
// batch was being written and synced, released together once their fsync
// returned.
type batch struct {
	bytes     int // encoded bytes, bounded by Options.MaxBatchBytes
	callers   int
	records   int           // the calls' records, duplicates included
	firstSeq  uint64        // seq of the first new record
	firstPrev vellum.MAC    // the chain value before it
	keys      []*index.Keys // summary keys of the new records, in seq order
	leaves    leafBatch     // encodings and MACs, for the Merkle tree

	// done is closed when the batch is durable or failed. It is made
	// (under mu) by the first caller that waits for the batch: a caller
	// that writes its own batch (enqueue's inline) does not wait, so a
	// serial append allocates none (issue 14).
	done chan struct{}
	err  error // set before done is closed
}

// newBatch makes an empty batch with room for sizeHint records (the size
// of the batch before it). No more: a serial caller's batch holds one
// record, and room for 16 was a kilobyte to allocate and clear per
// append (PERFORMANCE.md, serial appends).
func newBatch(sizeHint int) *batch {
	n := max(sizeHint, 1)
	if n == 1 {
		// A serial caller's batch: one allocation for the batch and its
		// three one-element slices, instead of four (issue 14). A second
		// record grows the slices as usual.
		o := &oneBatch{}
		o.b.keys, o.b.leaves = o.keys[:0], leafBatch{encs: o.encs[:0], macs: o.macs[:0]}
		return &o.b
	}
	return &batch{
		keys:   make([]*index.Keys, 0, n),
		leaves: leafBatch{encs: make([][]byte, 0, n), macs: make([]vellum.MAC, 0, n)},
	}
}

// oneBatch is a batch with room for one record, in one allocation
// (newBatch).
type oneBatch struct {
	b    batch
	keys [1]*index.Keys
	encs [1][]byte
	macs [1]vellum.MAC
}

// entries returns the OnCommit entries of b's new records. They are made
// here, exactly sized, once the batch is durable, rather than grown record
// by record under mu: the seqs follow firstSeq, each record's time is in
// its encoding, and each prev MAC is the MAC before it.
func (b *batch) entries() []segment.Entry {
	encs, macs := b.leaves.encs, b.leaves.macs
	es := make([]segment.Entry, len(encs))
	prev := b.firstPrev
	for i, enc := range encs {
		_, t, _ := vellum.DecodeSeqTime(enc) // stamped by add: cannot fail
		es[i] = segment.Entry{Seq: b.firstSeq + uint64(i), Time: t, Record: enc, MAC: macs[i], PrevMAC: prev}
		prev = macs[i]
	}
	return es
}

func newCommitter(opts *Options, log *slog.Logger, dir string, storeID [16]byte, files *segmentFiles, index *indexer, tree *tree) *committer {
	c := &committer{
		opts: opts, log: log, fs: opts.FS, dir: dir, storeID: storeID, files: files, index: index, tree: tree,
		prealloc: newPreallocator(opts.FS, dir, log, preallocSize(opts)),
		filling:  newBatch(0),
		hasher:   opts.Keys.Active().NewHasher(),
		dedup:    newDedupWindow(opts.DedupEntries),
		wake:     make(chan struct{}, 1),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	c.space = sync.NewCond(&c.mu)
	c.flushFree = sync.NewCond(&c.mu)
	return c
}

// commit appends one call's prepared records and returns their seqs once
// they are durable.
func (c *committer) commit(ctx context.Context, p *Prepared) ([]uint64, error) {
	if len(p.seqs) != len(p.items) { // a Prepared not made by newPrepared
		p.seqs = make([]uint64, len(p.items))
	}
	b, inline, err := c.enqueue(p)
	if err != nil {
		return nil, err
	}
	if inline {
		// The committer was idle: write and sync the batch here, and
		// spare the caller two goroutine switches (serial appends:
		// PERFORMANCE.md). The batch written is b, the filling batch,
		// which no one else could take while this caller held the
		// flusher's role: it is released when writeBatch returns.
		c.writeBatch()
		c.endFlush()
		if b.err != nil {
			return nil, b.err
		}
		return p.seqs, nil
	}
	if cancel := ctx.Done(); cancel == nil {
		<-b.done // a context that never ends: a plain receive is cheaper than a select
	} else {
		select {
		case <-b.done:
		case <-cancel:
			return nil, ctx.Err()
		}
	}
	if b.err != nil {
		return nil, b.err
	}
	return p.seqs, nil
}

// enqueue adds the records to the filling batch, waiting while a full batch
// or a seal holds them back, and fills in p.seqs. A call's records always go
// into one batch. It wakes the flush loop, unless the committer was idle:
// nothing being written, nobody else in the batch. Then the caller takes
// the flusher's role and writes the batch itself (inline is true).
func (c *committer) enqueue(p *Prepared) (b *batch, inline bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if c.failErr != nil {
			return nil, false, c.failErr
		}
		if c.closed {
			return nil, false, ErrClosed
		}
		if !c.sealing && c.filling.callers == 0 && c.writer.FlushedSize() >= c.opts.SegmentSize {
			// Everything added so far is in the segment and it is full:
			// the flush loop seals it before these records go in.
			c.sealing = true
			c.wakeLoop()
		}
		if !c.sealing && (c.filling.bytes == 0 || c.filling.bytes+p.size <= c.opts.MaxBatchBytes) {
			break
		}
		c.waiting++
		c.space.Wait()
	}
	b = c.filling
	now := c.opts.Now().UnixNano()
	for i := range p.items {
		seq, err := c.add(b, &p.items[i], now)
		if err != nil {
			// Only a broken invariant gets here. Nothing of the batch is
			// written: the flush loop releases it with the failure.
			return nil, false, c.failLocked(err)
		}
		p.seqs[i] = seq
	}
	b.bytes += p.size
	b.callers++
	b.records += len(p.items)
	if !c.flushing && !c.sealing && b.callers == 1 {
		c.flushing = true
		return b, true, nil
	}
	if b.done == nil {
		b.done = make(chan struct{})
	}
	c.wakeLoop()
	return b, false, nil
}

// wakeLoop tells the flush loop there is work: a batch to write, a seal to
// make, or a failure to release callers with.
func (c *committer) wakeLoop() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// add chains one record onto the end of the log and returns its seq. A
// record whose (tenant, event id) is in the dedup window is not stored
// again: its first seq is returned, whose batch is this one or an earlier
// one, so it is durable when this batch is. The caller holds mu.
func (c *committer) add(b *batch, it *item, now int64) (uint64, error) {
	if it.dedup != "" {
		if seq, ok := c.dedup.get(it.dedup, it.dedupHash); ok {
			return seq, nil
		}
	}
	tip := c.writer.Tip()
	t := max(now, tip.Time+1) // receipt times increase strictly with seq
	vellum.StampEncoded(it.enc, tip.Seq, t)
	mac := c.hasher.Next(tip.PrevMAC, it.enc)
	if err := c.writer.Add(tip.Seq, t, it.enc, mac); err != nil {
		return 0, err
	}
	if len(b.keys) == 0 {
		b.firstSeq, b.firstPrev = tip.Seq, tip.PrevMAC
	}
	b.keys = append(b.keys, &it.keys)
	b.leaves.encs = append(b.leaves.encs, it.enc)
	b.leaves.macs = append(b.leaves.macs, mac)
	if it.dedup != "" {
		c.dedup.put(it.dedup, it.dedupHash, tip.Seq)
	}
	return tip.Seq, nil
}

// flushLoop is the flush loop goroutine.
func (c *committer) flushLoop() {
	defer close(c.done)
	tick := newAgeTicker(c.opts.SegmentAge)
	defer tick.Stop()
	for {
		select {
		case <-c.wake:
			if c.flush() { // an appending goroutine found the segment full
				c.rotate()
			}
		case <-tick.C:
			c.rotateIfOld()
		case <-c.quit:
			c.flush() // what callers handed in before Close
			return
		}
	}
}

// flush is the flush loop's turn: it takes the flusher's role (waiting
// for an appending goroutine that writes its own batch), writes the filling
// batch, and lets the callers it released rejoin. It reports whether a seal
// waits (endFlush).
func (c *committer) flush() (sealWanted bool) {
	c.mu.Lock()
	for c.flushing {
		c.flushFree.Wait()
	}
	c.flushing = true
	c.mu.Unlock()
	c.rejoin(c.writeBatch())
	return c.endFlush()
}

// writeBatch writes the filling batch, syncs it, and releases its callers
// once it is durable; records that arrive meanwhile fill the next batch. It
// returns how many calls it released and, when they were several, how many
// were queued for the next batch just before it released them (rejoin
// waits for both). The caller holds the flusher's role.
func (c *committer) writeBatch() (released, queued int) {
	c.mu.Lock()
	b := c.filling
	if b.callers == 0 {
		c.mu.Unlock()
		return 0, 0
	}
	c.filling, c.syncing = newBatch(len(b.keys)), b
	c.wakeWaiters()
	err := c.failErr
	var fl *segment.Flushed
	if err == nil {
		fl, err = c.writer.Flush() // one write(2); under mu, as Add shares the writer's buffer
	}
	c.mu.Unlock()
	var took time.Duration
	if err == nil && fl != nil {
		t0 := c.opts.Now()
		err = c.writer.Sync(fl)
		took = c.opts.Now().Sub(t0)
		c.pace.note(took)
	}
	if err != nil {
		c.release(b, c.fail(err))
		return b.callers, 0
	}
	if fl != nil {
		observeCommit(c.opts, b, fl.Bytes(), took) // metrics (observer.go)
		if c.writer.FlushedSize() >= c.opts.SegmentSize/2 {
			// Half full: time to zero-fill the next segment's file. The
			// flusher reads seg without mu, as only a seal, which no
			// flusher overlaps, changes it.
			c.prealloc.start(c.seg.num + 1)
		}
	}
	c.durable(b)
	if b.callers >= 2 {
		// Counted before the release: a released caller quick to append
		// again must not count twice (once queued, once released), or the
		// wait would run to its bound for a caller that never comes.
		queued = c.queued()
	}
	c.release(b, nil)
	return b.callers, queued
}

// endFlush ends a flusher's turn. It hands the records gathered for the
// postings to the postings goroutine when no records wait to be written
// (no batch is coming to add to them), gives the flusher's role back, and
// wakes the flush loop when records or a seal wait. It reports whether a
// seal waits and the committer has not failed: the flush loop then seals.
func (c *committer) endFlush() (sealWanted bool) {
	if c.queued() == 0 {
		c.index.handPostings() // still the flusher's: before the role is given back
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushing = false
	c.flushFree.Broadcast()
	if c.filling.callers > 0 || c.sealing {
		c.wakeLoop()
	}
	return c.sealing && c.failErr == nil
}

// rejoin is the one wait in the policy. It gives the callers of the batch
// just released a moment to append again before the next batch is taken:
// a closed loop of callers then shares each fsync, instead of splitting
// into two cohorts that alternate (the callers who arrived during an fsync
// are written at once while those just released are still waking up, and
// each fsync carries half of them: PERFORMANCE.md, 64 callers). It waits
// until as many calls are queued as were queued when the batch was released
// plus those it released, and never longer than an eighth of the disk's
// usual fsync time (pace), so that when nobody comes back it costs at
// most about an eighth of the disk's time. A lone caller is never waited
// for, and after a wait that ran out the next one is skipped (pace.bound).
// Flush loop only.
func (c *committer) rejoin(released, queued int) {
	bound, ok := c.pace.bound(released)
	if !ok {
		return
	}
	want := queued + released
	timer := time.NewTimer(bound)
	defer timer.Stop()
	defer c.wakeLoop() // the arrivals' wake-ups were taken here
	for c.queued() < want {
		select {
		case <-c.wake:
		case <-timer.C:
			c.pace.missed = true
			return
		case <-c.quit:
			return
		}
	}
}

// queued returns how many calls are in the filling batch or wait for room.
func (c *committer) queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.filling.callers + c.waiting
}

// wakeWaiters wakes the callers waiting for room, when the filling batch
// was taken, a seal ended, or the committer closed or failed. Each checks
// again and counts itself in waiting if it still finds none. The caller
// holds mu.
func (c *committer) wakeWaiters() {
	c.waiting = 0
	c.space.Broadcast()
}

// durable hands a batch that just became durable to the parts that follow
// the log, before its callers are released.
func (c *committer) durable(b *batch) {
	c.index.noteKeys(b.firstSeq, b.keys)
	c.index.queuePostings(c.seg, b.firstSeq, b.keys, b.leaves.encs) // added off this path (postings.go)
	if c.opts.OnCommit != nil && len(b.leaves.encs) > 0 {
		c.opts.OnCommit(c.seg.num, b.entries())
	}
	c.index.publish(c.seg, c.writer)
	c.tree.hand(&b.leaves) // hashed on the tree goroutine, off this path, unless small (tree.hand)
}

// release ends a batch's wait with err (nil: durable).
func (c *committer) release(b *batch, err error) {
	c.mu.Lock()
	c.syncing = nil
	c.mu.Unlock()
	b.err = err
	if b.done != nil { // made, under mu, before the batch was taken: no caller adds one now
		close(b.done)
	}
}

// fail puts the engine in the failed state: nothing more is acknowledged,
// reads go on, Close still works. The first cause wins; fail returns the
// engine's error.
func (c *committer) fail(cause error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failLocked(cause)
}

func (c *committer) failLocked(cause error) error {
	if c.failErr == nil {
		c.failErr = fmt.Errorf("%w: %w", ErrFailed, cause)
		c.log.Error("store failed; refusing further appends until reopened", slog.String("error", cause.Error()))
		observeFail(c.opts, cause) // metrics (observer.go)
		c.wakeWaiters()
		c.wakeLoop() // the filling batch's callers are released with the failure
	}
	return c.failErr
}

// err returns why the committer refuses records: its failure, else
// ErrClosed after close, else nil.
func (c *committer) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failErr != nil {
		return c.failErr
	}
	if c.closed {
		return ErrClosed
	}
	return nil
}

// close stops accepting records, lets the flush loop commit what callers
// handed in, waits for it to exit, and closes what the committer holds
// open: the preallocator and the active segment's file.
func (c *committer) close() error {
	c.mu.Lock()
	c.closed = true
	c.wakeWaiters()
	c.mu.Unlock()
	close(c.quit)
	<-c.done
	c.prealloc.close()
	if c.writer == nil { // a failed rotation left none
		return nil
	}
	return c.writer.Close()
}

// pace is the disk's usual fsync time as the flusher measures it, and the
// rejoin wait it bounds. It is the flusher's: writeBatch notes each fsync,
// rejoin (flush loop only) asks for its bound.
type pace struct {
	usual  time.Duration // a moving average of fsync times; 0 until the first
	missed bool          // the last rejoin wait ran out of time
}

// note folds one fsync's time into usual, a moving average that weighs the
// newest fsync by an eighth. It is what bounds the rejoin wait, rather
// than the last fsync alone: a batch of a few records syncs much faster
// than a full one (on a preallocated file, ~130 µs against milliseconds),
// and a bound that followed it would shrink to a few microseconds, miss,
// and let the callers still on their way back be written one or a few at
// a time, each fast fsync shortening the next wait again (PERFORMANCE.md,
// "a dribble of tiny, fast fsyncs").
func (p *pace) note(d time.Duration) {
	if p.usual <= 0 {
		p.usual = d
		return
	}
	p.usual += (d - p.usual) / 8
}

// bound returns how long rejoin may wait after released calls were
// released: an eighth of the usual fsync time. It reports false, and no
// wait, for a lone caller (or none), before the first fsync was timed, and
// once after a wait that ran out (more callers than come back in that
// time: 1,024 of them take longer to wake and prepare than the disk takes
// to sync), so that a wait that does not pay costs every other batch at
// most.
func (p *pace) bound(released int) (time.Duration, bool) {
	if released < 2 || p.usual <= 0 || p.missed {
		p.missed = false
		return 0, false
	}
	return p.usual / 8, true
}
