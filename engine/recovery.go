package engine

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/index"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/merkle"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

// recovery opens a data directory's segments when the store opens
// (segment/FORMAT.md, "Durability and recovery"): it checks that every
// segment belongs to the store and links to the one before it (package
// layout), cuts back a torn tail of the last one, checks the active
// segment's records against the MAC chain, and rebuilds what the other
// parts need of them. It runs once, on Open's goroutine, before any other
// goroutine starts; what it found (the fields after signedSize) is then
// handed to the indexer, the tree and the committer, which own it from
// then on.
type recovery struct {
	fs    vfs.FS
	dir   string
	opts  *Options
	log   *slog.Logger
	files *segmentFiles

	storeID [16]byte
	// signedSize is how many records the latest signed checkpoint covers:
	// they were acknowledged, so damage to them is never a torn tail.
	signedSize uint64

	sealed   []*segInfo
	active   *segInfo        // nil when there is no segment, or the last one is sealed
	writer   *segment.Writer // the active segment's, after its committed records
	index    activeIndex     // the active segment's span summaries and open span's keys
	leaves   []merkle.Hash   // the active segment's Merkle leaves
	lastTime int64           // receipt time of the newest record in a sealed segment
	tornCuts int             // torn tails cut back, for Options.Observer
	purged   *layout.Purged  // the retention manifest, nil when nothing was purged
	pruned   *merkle.Range   // the purged prefix of the log-wide tree
}

// run reads the directory and its segments in order.
func (r *recovery) run() error {
	nums, err := layout.ListSegments(r.fs, r.dir)
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	if r.storeID, err = layout.LoadOrCreateStore(r.fs, r.dir, len(nums) > 0, r.opts.Now()); err != nil {
		return corruptOr(err)
	}
	if r.purged, err = layout.ReadPurged(r.fs, r.dir); err != nil {
		return corruptOr(err)
	}
	var prev *layout.End
	switch {
	case r.purged != nil:
		if nums, err = r.finishPurge(nums, r.purged); err != nil {
			return err
		}
		prev = &layout.End{Number: r.purged.Through, LastSeq: r.purged.LastSeq, LastMAC: r.purged.LastMAC}
	case len(nums) > 0 && nums[0] != 1:
		return fmt.Errorf("%w: segment 1 is missing (the store starts at segment %d) and no purge removed it (%s has no record of one): segments removed outside a purge are tampering",
			ErrCorrupt, nums[0], layout.PurgedName)
	}
	if i := layout.FirstGap(nums); i >= 0 {
		return fmt.Errorf("%w: segment %d is missing (found %d then %d)", ErrCorrupt, nums[i-1]+1, nums[i-1], nums[i])
	}
	r.signedSize = latestSignedSize(r.fs, r.dir)
	for i, n := range nums {
		si, err := r.openSegment(n, prev, i == len(nums)-1)
		if err != nil {
			return err
		}
		if si == nil { // a segment whose creation never finished, set aside
			break
		}
		if si.footer == nil {
			r.active = si
			break
		}
		compactFooter(si, r.log) // postings.go
		r.sealed = append(r.sealed, si)
		end := layout.SealedEnd(&si.hdr, si.footer)
		prev = &end
		if si.footer.Count > 0 {
			r.lastTime = si.footer.LastTime
		}
	}
	return nil
}

// closeFiles closes what recovery opened, when Open fails: the active
// segment's writer. Every segment reader it opened is in the engine's
// segmentFiles (files.adopt), which Open's failure path closes all at once
// (segmentFiles.closeAll), with those of segments recovery did not keep.
func (r *recovery) closeFiles() {
	if r.writer != nil {
		r.writer.Close()
	}
}

// size returns how many records the recovered log holds.
func (r *recovery) size() uint64 {
	if r.writer != nil {
		return r.writer.State().LastSeq
	}
	if n := len(r.sealed); n > 0 {
		return lastSeqOf(r.sealed[n-1])
	}
	return 0
}

// openSegment opens segment n, checks its header against the store and
// prev, the end of the segment before it, and checks and recovers it as far
// as Open must: a sealed segment's records only with VerifyOnOpen, the last
// segment's always. It returns nil for a last segment that was never fully
// created (it is set aside as .broken).
func (r *recovery) openSegment(n uint64, prev *layout.End, last bool) (*segInfo, error) {
	path := layout.SegmentPath(r.dir, n)
	rd, err := segment.Open(r.fs, path, r.opts.segmentOptions())
	if err != nil {
		return r.openFailed(n, path, prev, last, err)
	}
	si := &segInfo{num: n, path: path, hdr: rd.Header(), footer: rd.Footer(), files: r.files}
	if errs := layout.CheckLink(n, r.storeID, &si.hdr, prev); len(errs) > 0 {
		rd.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, path, errs[0])
	}
	r.files.adopt(si, rd) // kept open while the LRU has room (files.go)
	sealed := si.footer != nil
	if !sealed && !last {
		return nil, fmt.Errorf("%w: %s is not sealed but later segments exist", ErrCorrupt, path)
	}
	if sealed && !last && !r.opts.VerifyOnOpen {
		return si, nil
	}
	key, err := r.opts.Keys.Lookup(si.hdr.KeyID)
	if err != nil {
		return nil, fmt.Errorf("%w: segment %s was written with key id %s, but the configured key has id %s; configure that key (or list it as a retired key after a rotation)",
			ErrKeyMismatch, path, si.hdr.KeyID, r.opts.Keys.Active().ID())
	}
	switch {
	case sealed && r.opts.VerifyOnOpen:
		return si, r.verifySealed(si, key)
	case sealed:
		return si, nil
	}
	return si, r.recoverActive(si, key)
}

// openFailed handles a segment whose header or footer does not verify.
// Only the last segment may be unfinished: one whose creation never
// finished is set aside, and one whose seal was cut short by a crash
// (footer not durable) is a torn tail, cut back so the segment continues
// as the active one. Anything else is corruption, reported as it is.
func (r *recovery) openFailed(n uint64, path string, prev *layout.End, last bool, err error) (*segInfo, error) {
	if last && errors.Is(err, segment.ErrCorrupt) {
		if fi, serr := r.fs.Stat(path); serr == nil && fi.Size() <= segment.HeaderSize {
			// Created, but its header never became durable: nothing in
			// it was acknowledged.
			broken := layout.BrokenPath(path, time.Now())
			if rerr := r.fs.Rename(path, broken); rerr != nil {
				return nil, fmt.Errorf("engine: set aside incomplete segment %s: %w", path, rerr)
			}
			r.log.Warn("removed a segment whose creation did not finish", slog.String("segment", path), slog.String("kept_as", broken))
			return nil, r.fs.SyncDir(layout.SegmentsPath(r.dir))
		}
		sr, serr := segment.Scan(r.fs, path, r.opts.segmentOptions(), nil)
		if serr == nil && !sr.Sealed && sr.TornAt >= 0 {
			if err := r.cutTornTail(path, sr); err != nil {
				return nil, err
			}
			return r.openSegment(n, prev, last)
		}
	}
	return nil, corruptOr(err)
}

// verifySealed checks every record of a sealed segment against the MAC
// chain (VerifyOnOpen), and its footer's span summaries against those its
// records give: queries skip spans by them, so forged ones would hide
// records.
func (r *recovery) verifySealed(si *segInfo, key *chain.Key) error {
	hs := key.NewHasher()
	var f vellum.Fields
	var sums index.Summarizer
	var post index.PostingsBuilder
	_, err := segment.Scan(r.fs, si.path, r.opts.segmentOptions(), func(en segment.Entry) error {
		if _, err := hs.Check(en.Seq, en.PrevMAC, en.Record, en.MAC); err != nil {
			return fmt.Errorf("%w: %s block at offset %d: %w", ErrCorrupt, si.path, en.Offset, err)
		}
		if err := vellum.PeekFields(en.Record, &f); err != nil {
			return fmt.Errorf("%w: %s block at offset %d seq %d: %w", ErrCorrupt, si.path, en.Offset, en.Seq, err)
		}
		k := index.KeysOfFields(&f)
		sums.Add(en.Span, &k)
		post.AddFields(&f)
		return nil
	})
	if err != nil {
		return corruptOr(err)
	}
	if sec, ok := si.footer.Sections[segment.SectionSummaries]; ok && !bytes.Equal(sec, index.MarshalSummaries(sums.Finish())) {
		return fmt.Errorf("%w: %s offset %d: the footer's span summaries differ from those the records give", ErrCorrupt, si.path, si.footer.Offset)
	}
	if sec, ok := si.footer.Sections[index.SectionPostings]; ok && !bytes.Equal(sec, post.MarshalVersion(index.VersionOf(sec))) {
		return fmt.Errorf("%w: %s offset %d: the footer's postings differ from those the records give", ErrCorrupt, si.path, si.footer.SectionOffsets[index.SectionPostings])
	}
	return nil
}

// recoverActive checks every record of the active segment against the MAC
// chain, hashes its Merkle leaves and rebuilds its span summaries in the
// same pass (its records are read once on open), cuts back a torn tail,
// and opens its writer after the last committed record.
func (r *recovery) recoverActive(si *segInfo, key *chain.Key) error {
	hs := key.NewHasher()
	var (
		f    vellum.Fields
		lh   merkle.Hasher
		span uint64
		// Keys are kept for the current span only: a slice per record
		// for a whole segment cost more in page faults than all the rest
		// of Open.
		keys []index.Keys
		post = &index.PostingsBuilder{}
	)
	sr, err := segment.Scan(r.fs, si.path, r.opts.segmentOptions(), func(en segment.Entry) error {
		if _, err := hs.Check(en.Seq, en.PrevMAC, en.Record, en.MAC); err != nil {
			return fmt.Errorf("%w: %s block at offset %d: %w", ErrCorrupt, si.path, en.Offset, err)
		}
		if err := vellum.PeekFields(en.Record, &f); err != nil {
			return fmt.Errorf("%w: %s block at offset %d seq %d: %w", ErrCorrupt, si.path, en.Offset, en.Seq, err)
		}
		r.leaves = append(r.leaves, lh.Leaf(en.Record, en.MAC))
		if en.Span != span {
			if len(keys) > 0 {
				r.index.sums = append(r.index.sums, buildSummary(keys))
			}
			keys, span = keys[:0], en.Span
		}
		keys = append(keys, index.KeysOfFields(&f))
		post.AddFields(&f)
		return nil
	})
	if err != nil {
		return corruptOr(err)
	}
	if sr.TornAt >= 0 {
		if err := r.cutTornTail(si.path, sr); err != nil {
			return err
		}
	}
	if r.writer, err = segment.OpenAppend(r.fs, si.path, sr, r.opts.segmentOptions()); err != nil {
		return err
	}
	r.index.post = post
	// Closed spans have their summaries; the open span's keys wait in the
	// indexer for the records still to come.
	if spans := sr.Spans(); len(spans) > 0 && len(keys) > 0 {
		r.index.spans, r.index.keys, r.index.keysFirst = spans, keys, spans[len(spans)-1].FirstSeq
	} else {
		r.index.sums = nil
	}
	return nil
}

func buildSummary(keys []index.Keys) index.Summary {
	var b index.Builder
	for i := range keys {
		b.Add(&keys[i])
	}
	return b.Build()
}

// cutTornTail cuts an incomplete final batch back, keeping a .broken copy,
// unless the latest signed checkpoint covers records the cut would remove:
// checkpoints are signed only over durable records, so such bytes were
// acknowledged and their damage is corruption, reported without changing
// anything.
func (r *recovery) cutTornTail(path string, sr *segment.ScanResult) error {
	if r.signedSize > sr.State.LastSeq {
		return fmt.Errorf("%w: %s offset %d (seq %d): %s; the latest signed checkpoint covers %d records, so these were acknowledged and are not a torn tail",
			ErrCorrupt, path, sr.TornAt, sr.State.LastSeq+1, sr.TornReason, r.signedSize)
	}
	broken, err := segment.Truncate(r.fs, path, sr)
	if err != nil {
		return err
	}
	r.tornCuts++ // metrics (observer.go)
	r.log.Warn("cut back an incomplete final batch", slog.String("segment", path),
		slog.Int64("offset", sr.State.Size), slog.String("reason", sr.TornReason), slog.String("kept_as", broken))
	return nil
}

// corruptOr wraps an error that reports damaged data with ErrCorrupt and
// returns I/O trouble as it is.
func corruptOr(err error) error {
	switch {
	case errors.Is(err, ErrCorrupt):
		return err
	case errors.Is(err, segment.ErrCorrupt), errors.Is(err, segment.ErrVersion), errors.Is(err, layout.ErrCorrupt):
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return err
}

// latestSignedSize returns the tree size of the checkpoint log's last entry
// that parses, or 0. Problems with the log itself are reported later, when
// the tree starts; here it only guards recovery against cutting records a
// checkpoint vouches for.
func latestSignedSize(fs vfs.FS, dir string) uint64 {
	res, err := checkpoint.ReadLog(fs, filepath.Join(dir, checkpoint.LogName))
	if err != nil {
		return 0
	}
	for i := len(res.Entries) - 1; i >= 0; i-- {
		if s, err := checkpoint.ParseNote(res.Entries[i].Note); err == nil {
			return s.Size
		}
	}
	return 0
}
