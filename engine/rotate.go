package engine

// The active segment's life, owned by the committer: Open takes over the
// segment recovery found (or starts one); the flush loop seals it between
// batches, when the first record after it reached Options.SegmentSize
// arrives or once it is Options.SegmentAge old, and starts the next, which
// continues the chain from the sealed one's tip.
// The footer carries the span summaries (indexer) and the Merkle root and
// section (tree).

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/index"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/segment"
)

// open takes over what recovery found and leaves the committer ready to
// append: a segment written under a retired key is sealed and a new one
// started under the active key (a key rotation), and a store without an
// unsealed segment gets one. Readers then see the active segment.
func (c *committer) open(r *recovery) error {
	if err := c.prealloc.removeLeftovers(); err != nil {
		return fmt.Errorf("engine: remove leftover preallocated files: %w", err)
	}
	c.seg, c.writer = r.active, r.writer
	active := c.opts.Keys.Active().ID()
	tip := segment.Tip{Seq: 1, PrevMAC: chain.Genesis(c.storeID, active)}
	num := uint64(1)
	switch {
	case c.writer != nil:
		if c.writer.State().Count == 0 {
			if err := c.writer.StartAfter(r.lastTime); err != nil {
				return err
			}
		}
		if c.seg.hdr.KeyID == active {
			c.index.publish(c.seg, c.writer)
			return nil
		}
		c.log.Info("key rotated; sealing the active segment", slog.String("old_key_id", c.seg.hdr.KeyID.String()),
			slog.String("new_key_id", active.String()))
		tip, num = c.writer.Tip(), c.seg.num+1
		ft, err := c.seal()
		if err != nil {
			return err
		}
		observeSeal(c.opts, c.seg.num, ft) // metrics (observer.go), as rotate does
	case len(r.sealed) > 0:
		last := r.sealed[len(r.sealed)-1]
		tip = segment.Tip{Seq: lastSeqOf(last) + 1, PrevMAC: last.footer.LastMAC, Time: r.lastTime}
		num = last.num + 1
	}
	seg, w, err := c.createSegment(num, tip)
	if err != nil {
		return err
	}
	c.seg, c.writer = seg, w
	c.index.publish(seg, w)
	return nil
}

// newAgeTicker ticks often enough to seal a segment close to its age
// (a tenth of it), at most once a second and at least once a millisecond.
func newAgeTicker(age time.Duration) *time.Ticker {
	return time.NewTicker(min(max(age/10, time.Millisecond), time.Second))
}

// rotateIfOld seals a non-empty active segment older than SegmentAge
// (when a batch is being written, at the next tick). Flush loop only.
func (c *committer) rotateIfOld() {
	c.mu.Lock()
	old := !c.flushing && c.failErr == nil && c.writer.FlushedSize() > segment.HeaderSize &&
		c.opts.Now().Sub(c.seg.hdr.Created) >= c.opts.SegmentAge
	if old {
		c.sealing = true // no appending goroutine starts a batch of its own now
	}
	c.mu.Unlock()
	if old {
		c.rotate()
		return
	}
	if c.seg != nil && c.opts.Now().Sub(c.seg.hdr.Created) >= c.opts.SegmentAge/2 {
		c.prealloc.start(c.seg.num + 1) // sealed by age soon: zero-fill the next file
	}
}

// rotate seals the active segment and starts the next one. Its caller set
// sealing (enqueue found the segment full, or rotateIfOld found it old):
// appends wait until rotate ends, so no record goes into the sealed segment
// after its last batch. Flush loop only; a failure fails the engine.
func (c *committer) rotate() {
	defer func() {
		c.mu.Lock()
		c.sealing = false
		c.wakeWaiters()
		c.mu.Unlock()
	}()
	// Records added before the seal began belong to this segment. With
	// sealing set, flush reports a seal wanted unless the committer failed.
	if !c.flush() {
		return
	}
	old, tip := c.seg, c.writer.Tip()
	ft, err := c.seal()
	if err != nil {
		c.fail(err)
		return
	}
	seg, w, err := c.createSegment(old.num+1, tip)
	c.mu.Lock()
	c.seg, c.writer = seg, w // nil after a failure: the sealed segment is complete, and a reopen starts the next
	if err != nil {
		c.failLocked(err)
	}
	c.mu.Unlock()
	if err != nil {
		return
	}
	c.index.publish(seg, w)
	observeSeal(c.opts, old.num, ft) // metrics (observer.go)
	c.log.Info("segment sealed", slog.Uint64("segment", old.num), slog.Uint64("records", ft.Count), slog.Uint64("last_seq", ft.LastSeq))
}

// seal seals the active segment, every record of which is durable, with
// its span summaries and Merkle tree in the footer, and makes it a sealed
// segment for readers.
func (c *committer) seal() (*segment.Footer, error) {
	secSums, sums := c.index.sealSection(c.seg, c.writer)
	so := &segment.SealOptions{Sections: map[uint16][]byte{segment.SectionSummaries: secSums}}
	if sec := c.index.postingsSection(c.writer.State().Count); sec != nil {
		so.Sections[index.SectionPostings] = sec
	}
	if err := c.tree.seal(c.seg.num, so); err != nil {
		return nil, err
	}
	ft, err := c.writer.Seal(so)
	if err != nil {
		return nil, err
	}
	c.seg.footer = ft
	if len(sums) == len(ft.Spans) {
		c.seg.sums = sums // the index's own, not parsed again
	}
	compactFooter(c.seg, c.log) // postings.go
	c.index.sealed(c.seg, ft)
	return ft, nil
}

// createSegment creates segment num, whose chain starts at tip, and opens
// a reader on it.
func (c *committer) createSegment(num uint64, tip segment.Tip) (*segInfo, *segment.Writer, error) {
	path := layout.SegmentPath(c.dir, num)
	h := segment.Header{
		Number:   num,
		StoreID:  c.storeID,
		FirstSeq: tip.Seq,
		KeyID:    c.opts.Keys.Active().ID(),
		PrevMAC:  tip.PrevMAC,
		Created:  c.opts.Now(),
	}
	var w *segment.Writer
	var err error
	if from, ok := c.prealloc.take(num); ok {
		w, err = segment.CreateIn(c.fs, from, path, h, c.opts.segmentOptions())
	} else {
		w, err = segment.Create(c.fs, path, h, c.opts.segmentOptions())
	}
	if err != nil {
		return nil, nil, err
	}
	if err := w.StartAfter(tip.Time); err != nil {
		w.Close()
		return nil, nil, err
	}
	si := &segInfo{num: num, path: path, hdr: w.Header(), files: c.files}
	r, err := c.files.openData(si) // its spans come from the writer, later the footer
	if err != nil {
		w.Close()
		return nil, nil, err
	}
	c.files.adopt(si, r)
	return si, w, nil
}
