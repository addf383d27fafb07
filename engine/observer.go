package engine

// Operational events for metrics (issue 15). The engine tells an Observer
// what it did, synchronously and cheaply; it never depends on one. The
// call sites are one line each (observe* below), so that the engine's
// restructuring can re-home them without reading this file:
//
//	Open        observeOpen(opts, start, ...)    engine.go, deferred
//	writeBatch  observeCommit(opts, b, n, dur)   committer.go, once a batch is durable
//	rotate      observeSeal(opts, num, ft)       rotate.go, once a segment is sealed (and at open, when a key rotation seals the active one)
//	signNow     observeCheckpoint(opts, &s)      checkpoint.go, once a checkpoint is logged
//	failLocked  observeFail(opts, cause)         committer.go, the first failure only
//	cutTornTail r.tornCuts++                     recovery.go, during Open

import (
	"errors"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/segment"
)

// Observer receives the engine's operational events, for metrics and
// alerts. Methods are called synchronously, on whichever goroutine did the
// work: Opened on Open's caller; Committed on the goroutine that wrote the
// batch (the committer's flush loop, or an appending goroutine that found
// the committer idle and wrote its own batch); Sealed on the flush loop;
// CheckpointSigned on the tree goroutine; Failed on whichever goroutine
// failed first (an appending goroutine, the flush loop or the tree
// goroutine). So an implementation must be safe for concurrent use, return
// quickly, never block, and never call back into the Engine: Committed
// runs before the batch's callers are released. Options.Observer nil costs
// nothing.
type Observer interface {
	// Opened reports the outcome of Open: how much it recovered and
	// verified, and the error when Open failed.
	Opened(OpenStats)
	// Committed reports a batch whose records are now durable, before its
	// callers are released.
	Committed(CommitStats)
	// Sealed reports a segment that was sealed (made read-only).
	Sealed(SealStats)
	// CheckpointSigned reports a signed checkpoint that was appended to
	// the checkpoint log.
	CheckpointSigned(CheckpointStats)
	// Failed reports that the engine failed closed: it acknowledges
	// nothing more until reopened. It is called once, with the cause.
	Failed(cause error)
}

// OpenStats describe one Open.
type OpenStats struct {
	// Segments is how many segment files the store holds after Open.
	Segments int
	// VerifiedSegments is how many segments had every record's MAC
	// checked: the active one always, every sealed one with
	// Options.VerifyOnOpen.
	VerifiedSegments int
	// TornTailsCut counts incomplete final batches cut back (each kept as
	// a .broken copy).
	TornTailsCut int
	// LastSeq is the seq of the last durable record after recovery.
	LastSeq uint64
	// Duration is how long Open took.
	Duration time.Duration
	// Err is nil when Open succeeded; otherwise why it failed (wrapping
	// ErrCorrupt when the data does not verify).
	Err error
}

// CommitStats describe one durable batch (one group commit, one fsync).
type CommitStats struct {
	// Records is how many new records the batch stored.
	Records int
	// Duplicates is how many records of the batch were retries of a
	// recent (tenant, event_id) and were not stored again.
	Duplicates int
	// Bytes is how many bytes the batch wrote to the segment file
	// (compressed blocks and the commit frame).
	Bytes int
	// SyncDuration is how long the batch's fdatasync took.
	SyncDuration time.Duration
	// Outcomes counts the new records by outcome status, indexed like
	// vellum.Statuses.
	Outcomes [8]int
}

// SealStats describe a sealed segment.
type SealStats struct {
	Segment uint64
	Records uint64
}

// CheckpointStats describe a signed checkpoint.
type CheckpointStats struct {
	// Size is how many records the checkpoint's tree covers.
	Size uint64
	// NoteBytes is the length of the signed note.
	NoteBytes int
	// Time is when it was signed (Options.Now).
	Time time.Time
}

// Stats is a snapshot of the engine's state for a metrics scrape. It takes
// the committer's and the preallocator's locks briefly, never one held
// across an fsync.
type Stats struct {
	// SealedSegments and ActiveSegments count segment files by state
	// (ActiveSegments is 1, or 0 after a failed rotation).
	SealedSegments, ActiveSegments int
	// ActiveBytes is the durable size of the active segment's data.
	ActiveBytes int64
	// Preallocated is the zero-filled room left in the active segment's
	// file after its data (0 when the file grows with every batch), and
	// NextPreallocated whether the next segment's file is ready
	// (Options.NoPreallocate).
	Preallocated     int64
	NextPreallocated bool
	// FirstSeq and LastSeq bound the records the store holds (LastSeq is
	// durable; 0 when empty).
	FirstSeq, LastSeq uint64
	// Checkpoint is the latest signed checkpoint's tree size and whether
	// there is one.
	CheckpointSize uint64
	HasCheckpoint  bool
	// Err is nil while the engine accepts records; otherwise why not
	// (ErrClosed, or ErrFailed wrapping the cause).
	Err error
}

// Stats returns a snapshot of the engine's state.
func (e *Engine) Stats() Stats {
	s := e.index.snapshot()
	st := Stats{SealedSegments: len(s.sealed), FirstSeq: s.first, LastSeq: s.last, Err: e.Err()}
	if s.active != nil {
		st.ActiveSegments = 1
		st.ActiveBytes = s.active.state.Size
		st.Preallocated = s.active.preallocated
		st.NextPreallocated = e.commit.prealloc.isReady(s.active.seg.num + 1)
	}
	if cp, ok := e.LatestCheckpoint(); ok {
		st.CheckpointSize, st.HasCheckpoint = cp.Size, true
	}
	return st
}

// observeOpen reports Open's outcome (err) and what it found; deferred by
// Open with its start time. ix is nil when Open failed before making it.
func observeOpen(o *Options, start time.Time, tornCuts int, ix *indexer, err error) {
	ob := o.Observer
	if ob == nil {
		return
	}
	st := OpenStats{TornTailsCut: tornCuts, Duration: time.Since(start), Err: err}
	if ix != nil && err == nil {
		s := ix.snapshot()
		st.Segments = len(s.sealed) + 1
		st.VerifiedSegments = 1
		if o.VerifyOnOpen {
			st.VerifiedSegments += len(s.sealed)
		}
		st.LastSeq = s.last
	}
	ob.Opened(st)
}

// observeCommit reports a batch writeBatch made durable: its new records'
// keys, its calls' records (dupes is the difference) and its bytes.
func observeCommit(o *Options, b *batch, bytes int, sync time.Duration) {
	ob := o.Observer
	if ob == nil {
		return
	}
	st := CommitStats{Records: len(b.keys), Duplicates: b.records - len(b.keys), SyncDuration: sync, Bytes: bytes}
	for _, k := range b.keys {
		if bit := k.Outcome(); bit != 0 {
			st.Outcomes[bitIndex(bit)]++
		}
	}
	ob.Committed(st)
}

func bitIndex(b uint8) int {
	i := 0
	for b > 1 {
		b >>= 1
		i++
	}
	return i
}

// observeSeal reports a sealed segment.
func observeSeal(o *Options, num uint64, ft *segment.Footer) {
	if ob := o.Observer; ob != nil {
		ob.Sealed(SealStats{Segment: num, Records: ft.Count})
	}
}

// observeCheckpoint reports a checkpoint signNow logged.
func observeCheckpoint(o *Options, s *checkpoint.Signed) {
	if ob := o.Observer; ob != nil {
		ob.CheckpointSigned(CheckpointStats{Size: s.Size, NoteBytes: len(s.Note), Time: o.Now()})
	}
}

// observeFail reports the engine's first failure.
func observeFail(o *Options, cause error) {
	if ob := o.Observer; ob != nil {
		ob.Failed(cause)
	}
}

// IsCorrupt reports whether err says the data does not verify (as opposed
// to an I/O or configuration problem); metrics label Open results with it.
func IsCorrupt(err error) bool {
	return errors.Is(err, ErrCorrupt) || errors.Is(err, segment.ErrCorrupt) || errors.Is(err, vellum.ErrCorrupt)
}
