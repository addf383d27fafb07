package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/merkle"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

// Redactor rewrites personal data in a record before it is encoded, and
// records which rules fired. It must be safe for concurrent use.
type Redactor interface {
	Redact(r *vellum.Record)
}

// Defaults for Options.
const (
	DefaultSegmentSize   = 32 << 20
	DefaultSegmentAge    = time.Hour
	DefaultMaxBatchBytes = 4 << 20
	DefaultDedupEntries  = 100_000
	// DefaultMaxOpenSegments bounds the segment files kept open for reads.
	DefaultMaxOpenSegments = 64
	// DefaultPostingsCache bounds the decoded postings lists kept for
	// queries and counts (Options.PostingsCache).
	DefaultPostingsCache = 64 << 20
	// DefaultCheckpointRecords and DefaultCheckpointInterval: a signed
	// checkpoint at least this often while the log grows (and at every
	// seal).
	DefaultCheckpointRecords  = 100_000
	DefaultCheckpointInterval = 10 * time.Second
)

// Options configure an Engine. Only Keys is required; the zero value of
// every other field means its default.
type Options struct {
	// Keys holds the active HMAC key, which chains new records, and any
	// retired keys older segments were written under.
	Keys *chain.Keyring
	// FS is the file system; vfs.Default when nil.
	FS vfs.FS
	// SegmentSize seals the active segment once it has reached this many
	// bytes, when the next record arrives. Default 32 MiB, which bounds what Open must rescan and
	// verify after a crash (about half a second).
	SegmentSize int64
	// SegmentAge seals a non-empty active segment this long after it was
	// created. Default 1 h. Retention expires whole segments, so this
	// bounds how late a record can expire.
	SegmentAge time.Duration
	// BlockSize is the raw size of a compression block and index span.
	// Default 64 KiB.
	BlockSize int
	// MaxRecordSize bounds one record's encoding. Default 1 MiB.
	MaxRecordSize int
	// NoCompression writes blocks uncompressed.
	NoCompression bool
	// NoPostings neither builds nor writes record-level postings (footer
	// section 4, segment/FORMAT.md) for new segments, and answers every
	// query as before they existed: by the time index and span summaries.
	// It saves their bytes and append CPU, and is the baseline the
	// benchmarks compare postings with.
	NoPostings bool
	// PostingsCache bounds the bytes of sealed segments' postings lists
	// kept decoded in memory for the next query or count (least recently
	// used first out; a dense list as a bitmap of one bit per record of
	// its segment, a sparse one as its ordinals). Default 64 MiB; negative
	// keeps none (every query reads and decodes its lists from the file).
	PostingsCache int64
	// postingsHook, in tests, runs before the postings goroutine applies
	// each batch (to hold it back).
	postingsHook func()
	// Codec compresses the blocks of new segments: segment.CodecS2 (the
	// default; the zero value means it), plain S2 blocks of BlockSize;
	// segment.CodecS2Dict, S2 blocks of DictBlockSize that share a
	// dictionary, the segment's first 64 KiB of records, so that reading
	// one record decompresses a few KiB (segment/FORMAT.md, "Dictionary
	// blocks"; faster selective reads for more append CPU); or
	// segment.CodecZstd, about a fifth smaller on disk for several times
	// the CPU (PERFORMANCE.md).
	// A segment keeps the codec it was created with.
	Codec segment.Codec
	// DictBlockSize is the raw size of the blocks of S2-dictionary
	// segments after their dictionary. Default
	// segment.DefaultDictBlockSize; at most BlockSize.
	DictBlockSize int
	// MaxOpenSegments bounds how many segment files the engine keeps open
	// for reads (least recently used first closed; reopened on demand),
	// so that file descriptors stay flat however many segments the store
	// holds. Default 64. Reads in progress may briefly exceed it.
	MaxOpenSegments int
	// NoPreallocate turns off preallocated segment files. By default,
	// while a segment fills, the next one's file (SegmentSize plus room
	// for one batch) is zero-filled and synced in the background, so its
	// commits write into allocated blocks and their fdatasync need not
	// commit a size change (segment/FORMAT.md, "Preallocated files";
	// PERFORMANCE.md, "Soak with preallocated segments": 1.17-1.42x
	// serial appends in the same run). It costs writing each segment's
	// size in zeros once. The file is prepared from the moment the active
	// segment is half full or half SegmentAge old, so a segment created by
	// Open itself grows as before. Readers and recovery accept zero tails
	// either way.
	NoPreallocate bool
	// MaxBatchBytes bounds the records one group commit gathers; callers
	// wait while the queue is full, which bounds memory. Default 4 MiB.
	MaxBatchBytes int
	// DedupEntries is how many recent (tenant, event_id) pairs are
	// remembered so a retried event is stored once. Default 100,000;
	// negative disables.
	DedupEntries int
	// VerifyOnOpen checks every record's MAC of every segment on Open, not
	// just the active segment's. Slower; `vellum verify` does the same
	// offline.
	VerifyOnOpen bool
	// Redactor, when set, is applied to every record before it is encoded.
	Redactor Redactor
	// Now is the clock; time.Now when nil. It is called from appending
	// goroutines and the engine's own, so it must be safe for concurrent
	// use.
	Now func() time.Time
	// Logger receives structured events (never record contents or keys);
	// slog.Default() when nil.
	Logger *slog.Logger
	// Observer, when set, receives commit, seal, checkpoint, open and
	// failure events for metrics (observer.go). Nil costs nothing.
	Observer Observer
	// OnCommit, when set, is called after each batch is durable, with the
	// batch's new records (seq, time, encoding, MAC, prev MAC) and the
	// number of their segment, before the batch's callers are released. It
	// runs on the goroutine that wrote the batch (the committer's flush
	// loop, or an appending goroutine that found the committer idle), one
	// batch at a time, in seq order; it must not block for long, must not
	// call the Engine's Append, and must not keep the slices.
	OnCommit func(seg uint64, entries []segment.Entry)

	// Signer signs checkpoints of the log-wide Merkle tree (an Ed25519
	// note signer, e.g. from checkpoint.LoadSigner). Without one the
	// engine still keeps Merkle roots in segment trailers but writes no
	// checkpoints, so an auditor without the HMAC key can check little.
	Signer note.Signer
	// Origin is the first line of every checkpoint, naming the log;
	// "vellum/<store id in hex>" by default.
	Origin string
	// CheckpointRecords signs a checkpoint once this many records arrived
	// since the last one. Default 100,000; negative disables.
	CheckpointRecords int
	// CheckpointInterval signs a checkpoint this long after the last one
	// when the log grew. Default 10 s; negative disables.
	CheckpointInterval time.Duration
	// OnCheckpoint, when set, is called with every checkpoint the engine
	// signs, after it is durable in the checkpoint log (on the tree
	// goroutine, in signing order), with the consistency proof from the
	// previous checkpoint (nil for the first). It must not block or keep
	// the proof's hashes for writing: a witness pusher hands both to its
	// own goroutines (engine/observe.go).
	OnCheckpoint func(checkpoint.Signed, *merkle.ConsistencyProof)

	// Retention says when sealed segments expire and how often they are
	// purged (retention.go); the zero value keeps everything.
	Retention Retention
}

func (o *Options) withDefaults() (Options, error) {
	if o == nil || o.Keys == nil || o.Keys.Active() == nil {
		return Options{}, errors.New("engine: Options.Keys is required (the HMAC key that chains records)")
	}
	r := *o
	if r.FS == nil {
		r.FS = vfs.Default
	}
	if err := r.Retention.check(); err != nil {
		return Options{}, err
	}
	if r.SegmentSize <= 0 {
		r.SegmentSize = DefaultSegmentSize
	}
	if r.SegmentSize <= segment.HeaderSize {
		// A new segment would already count as full: every append would
		// wait for a seal that makes another full segment.
		return Options{}, fmt.Errorf("engine: SegmentSize %d is not above the %d-byte segment header", r.SegmentSize, segment.HeaderSize)
	}
	if r.SegmentAge <= 0 {
		r.SegmentAge = DefaultSegmentAge
	}
	if r.BlockSize <= 0 {
		r.BlockSize = segment.DefaultBlockSize
	}
	if r.BlockSize > 32<<20 {
		return Options{}, fmt.Errorf("engine: BlockSize %d exceeds 32 MiB", r.BlockSize)
	}
	if r.MaxRecordSize <= 0 {
		r.MaxRecordSize = segment.DefaultMaxRecordSize
	}
	if r.Codec == segment.CodecNone {
		r.Codec = segment.CodecS2
	}
	if r.DictBlockSize <= 0 {
		r.DictBlockSize = segment.DefaultDictBlockSize
	}
	r.DictBlockSize = min(r.DictBlockSize, r.BlockSize)
	if r.MaxRecordSize > segment.MaxRecordSizeLimit {
		return Options{}, fmt.Errorf("engine: MaxRecordSize %d exceeds the format's limit %d", r.MaxRecordSize, segment.MaxRecordSizeLimit)
	}
	if r.MaxBatchBytes <= 0 {
		r.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if r.PostingsCache == 0 {
		r.PostingsCache = DefaultPostingsCache
	}
	if r.MaxOpenSegments <= 0 {
		r.MaxOpenSegments = DefaultMaxOpenSegments
	}
	if r.DedupEntries == 0 {
		r.DedupEntries = DefaultDedupEntries
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.CheckpointRecords == 0 {
		r.CheckpointRecords = DefaultCheckpointRecords
	}
	if r.CheckpointInterval == 0 {
		r.CheckpointInterval = DefaultCheckpointInterval
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	return r, nil
}

func (o *Options) segmentOptions() *segment.Options {
	return &segment.Options{BlockSize: o.BlockSize, DictBlockSize: o.DictBlockSize, MaxRecordSize: o.MaxRecordSize, NoCompression: o.NoCompression, Codec: o.Codec}
}

// LogValue describes the options for slog without secrets.
func (o Options) LogValue() slog.Value {
	key := ""
	if o.Keys != nil && o.Keys.Active() != nil {
		key = o.Keys.Active().ID().String()
	}
	return slog.GroupValue(
		slog.String("key_id", key),
		slog.Int64("segment_size", o.SegmentSize),
		slog.Duration("segment_age", o.SegmentAge),
		slog.Int("block_size", o.BlockSize),
		slog.Int("dict_block_size", o.DictBlockSize),
		slog.Int("max_record_size", o.MaxRecordSize),
		slog.Bool("compression", !o.NoCompression),
		slog.String("codec", o.Codec.String()),
		slog.Int("dedup_entries", o.DedupEntries),
		slog.Bool("verify_on_open", o.VerifyOnOpen),
		slog.Bool("preallocate", !o.NoPreallocate),
		slog.Int("max_open_segments", o.MaxOpenSegments),
		slog.Bool("redaction", o.Redactor != nil),
		slog.Bool("checkpoints", o.Signer != nil),
		slog.Int("checkpoint_records", o.CheckpointRecords),
		slog.Duration("checkpoint_interval", o.CheckpointInterval),
	)
}
