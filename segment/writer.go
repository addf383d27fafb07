package segment

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/vfs"
)

// Defaults for Options.
const (
	DefaultBlockSize = 64 << 10
	// DefaultDictBlockSize is the block size after the dictionary of an
	// S2-dictionary segment (FORMAT.md, "Dictionary blocks" has the
	// measurements behind it).
	DefaultDictBlockSize = 8 << 10
	DefaultMaxRecordSize = 1 << 20
	// MaxRecordSizeLimit bounds Options.MaxRecordSize so that a block's raw
	// length always fits the format's u32 fields with room to spare.
	MaxRecordSizeLimit = 64 << 20
	// DefaultMaxFooterSize bounds how much a reader allocates for a footer.
	DefaultMaxFooterSize = 256 << 20
)

// Options tune writers and readers. The zero value (or nil) means defaults.
type Options struct {
	// BlockSize is the target raw size of a block and of a span, in bytes.
	BlockSize int
	// MaxRecordSize is the largest encoded record accepted or read.
	MaxRecordSize int
	// Codec compresses new blocks; CodecS2 when zero-valued Options are
	// used. Set NoCompression to write uncompressed blocks.
	Codec Codec
	// NoCompression forces CodecNone.
	NoCompression bool
	// MaxFooterSize bounds a footer a reader will load.
	MaxFooterSize int
	// DictBlockSize is the target raw size of the blocks that an
	// S2-dictionary segment (CodecS2Dict) writes after its first DictSize
	// raw bytes; spans keep BlockSize. Default DefaultDictBlockSize.
	DictBlockSize int

	// codec is the codec of the segment being read (set by adopt): a
	// block that names another is corrupt.
	codec Codec
}

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.BlockSize <= 0 {
		r.BlockSize = DefaultBlockSize
	}
	if r.MaxRecordSize <= 0 {
		r.MaxRecordSize = DefaultMaxRecordSize
	}
	if r.MaxRecordSize > MaxRecordSizeLimit {
		r.MaxRecordSize = MaxRecordSizeLimit
	}
	if r.Codec == CodecNone {
		r.Codec = CodecS2
	}
	if r.NoCompression {
		r.Codec = CodecNone
	}
	if r.MaxFooterSize <= 0 {
		r.MaxFooterSize = DefaultMaxFooterSize
	}
	if r.DictBlockSize <= 0 {
		r.DictBlockSize = DefaultDictBlockSize
	}
	r.DictBlockSize = min(r.DictBlockSize, r.BlockSize)
	return r
}

// maxSpanTarget bounds the span target a reader adopts from a header.
const maxSpanTarget = 32 << 20

// adopt widens the block size and record limit to those the segment was
// written with (within the format's limits), so what a writer with larger
// settings produced stays readable by tools with the defaults.
func (o *Options) adopt(h *Header) {
	o.codec = h.Codec
	if t := int(h.SpanTarget); t > o.BlockSize && t <= maxSpanTarget {
		o.BlockSize = t
	}
	if m := int(h.MaxRecordSize); m > o.MaxRecordSize && m <= MaxRecordSizeLimit {
		o.MaxRecordSize = m
	}
}

// maxRaw is the largest raw block length a reader accepts.
func (o *Options) maxRaw() int {
	m := o.MaxRecordSize + 64<<10
	if o.BlockSize*2 > m {
		m = o.BlockSize * 2
	}
	return m
}

// State is where a segment's committed data ends: what a Writer has made
// durable, or what a scan found.
type State struct {
	Size      int64 // bytes up to the end of the last commit frame
	Count     uint64
	FirstSeq  uint64 // 0 when empty
	LastSeq   uint64 // FirstSeq-1 of the header when empty
	FirstTime int64
	LastTime  int64
	LastMAC   vellum.MAC
}

// Writer appends batches of records to one segment file and seals it.
//
// A Writer is not safe for concurrent use, with one exception that lets a
// group commit prepare the next batch while the previous one syncs: the
// buffered side (Add, Tip, Discard, Flush, FlushedSize) may run on one
// goroutine while another runs Sync for the batch Flush returned last. The
// durable side (State, Spans, SpanView) belongs to the goroutine that calls
// Sync. Pending, StartAfter, Seal and Close need the Writer to themselves.
//
// The Writer is the one place that knows where the chain ends (Tip): the
// seq the next record must carry, the MAC it chains from, and the time it
// may not precede.
type Writer struct {
	fs   vfs.FS
	f    vfs.File
	path string
	hdr  Header
	opts Options

	// Durable side, updated by Sync.
	st    State
	spans spanBuilder

	// mu guards failed and spare, which Flush/Add and Sync share.
	mu     sync.Mutex
	failed error
	spare  []byte
	sealed bool

	// flushedEnd is the file offset after the last flushed batch: where
	// the next batch is written (in place, WriteAt).
	flushedEnd int64
	// fileSize is the file's length: more than flushedEnd while a
	// preallocated zero tail remains. Flush (under the caller's lock)
	// and Seal update it.
	fileSize int64

	// The batch being built: frames not yet written, the raw payload of
	// the block being filled, and the blocks finished in this batch.
	out   []byte
	raw   []byte
	cur   blockHeader
	batch []pendingBlock
	// flushed are the two Flushed that Flush hands out in turn, with
	// their blocks' arrays: a serial writer's batch then allocates
	// neither (issue 14). flushedNext is the one the next Flush fills.
	flushed     [2]Flushed
	flushedNext int
	nextSeq     uint64
	nextPrev    vellum.MAC
	lastTime    int64
	// timeFloor is the time of the record before this segment (StartAfter).
	timeFloor int64

	// S2-dictionary segments: the raw bytes in finished blocks (rawPos;
	// durableRaw of them synced), the first DictSize of them (prefix) and,
	// once there are that many, the dictionary made of them.
	rawPos     int64
	durableRaw int64
	prefix     []byte
	dict       *s2.Dict
}

// Tip is the end of the chain as far as records were added: the seq the
// next record must carry, the MAC it chains from, and the receipt time of
// the last record (Unix ns) that the next may not precede.
type Tip struct {
	Seq     uint64
	PrevMAC vellum.MAC
	Time    int64
}

type pendingBlock struct {
	off int // offset in out
	h   blockHeader
}

// Create makes a new segment file at path, writes and syncs its header and
// syncs the directory, so the file exists durably before any record goes
// into it. Header.Codec is taken from opts.
func Create(fs vfs.FS, path string, h Header, opts *Options) (*Writer, error) {
	o, err := prepareHeader(&h, opts)
	if err != nil {
		return nil, err
	}
	f, err := fs.Create(path)
	if err != nil {
		return nil, fmt.Errorf("segment: create %s: %w", path, err)
	}
	if _, err := f.Write(h.marshal()); err != nil {
		f.Close()
		return nil, fmt.Errorf("segment: write header of %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("segment: sync header of %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("segment: close %s: %w", path, err)
	}
	if err := fs.SyncDir(dirOf(path)); err != nil {
		return nil, fmt.Errorf("segment: sync directory of %s: %w", path, err)
	}
	// Batches are written in place (WriteAt), as into a preallocated file.
	if f, err = fs.OpenWriteAt(path); err != nil {
		return nil, fmt.Errorf("segment: open %s: %w", path, err)
	}
	st := State{Size: HeaderSize, LastSeq: h.FirstSeq - 1, LastMAC: h.PrevMAC}
	return newWriter(fs, f, path, h, o, st, spanBuilder{target: int(h.SpanTarget)}, HeaderSize), nil
}

// PreallocSuffix ends the name of a file being preallocated for a segment:
// <segment path> + PreallocSuffix. It holds only zeros until CreateIn
// renames it.
const PreallocSuffix = ".prealloc"

// Preallocate creates path holding size zero bytes, written (not only
// reserved, so that later writes into them change no metadata: FORMAT.md,
// "Preallocated files") and fdatasynced, for CreateIn. It writes in 1 MiB
// pieces and gives up, removing the file, when stop (if not nil) reports
// true between them. The file's directory entry is not synced: CreateIn's
// rename is what must become durable.
func Preallocate(fs vfs.FS, path string, size int64, stop func() bool) (err error) {
	f, err := fs.Create(path)
	if err != nil {
		return fmt.Errorf("segment: preallocate %s: %w", path, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("segment: preallocate %s: %w", path, cerr)
		}
		if err != nil {
			fs.Remove(path)
		}
	}()
	zeros := make([]byte, min(size, 1<<20))
	for left := size; left > 0; left -= int64(len(zeros)) {
		if stop != nil && stop() {
			return fmt.Errorf("segment: preallocate %s: %w", path, ErrStopped)
		}
		if _, err := f.Write(zeros[:min(left, int64(len(zeros)))]); err != nil {
			return fmt.Errorf("segment: preallocate %s: %w", path, err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("segment: preallocate %s: fdatasync: %w", path, err)
	}
	return nil
}

// CreateIn makes a new segment at path out of prealloc, a file Preallocate
// filled with zeros: it writes and syncs the header at offset 0, renames
// the file to path and syncs the directory, so the segment exists durably,
// with its header, before any record goes into it. Batches are then
// written into the zeros. Header.Codec is taken from opts.
func CreateIn(fs vfs.FS, prealloc, path string, h Header, opts *Options) (*Writer, error) {
	o, err := prepareHeader(&h, opts)
	if err != nil {
		return nil, err
	}
	f, err := fs.OpenWriteAt(prealloc)
	if err != nil {
		return nil, fmt.Errorf("segment: open preallocated %s: %w", prealloc, err)
	}
	size, err := f.Size()
	if err == nil && size < HeaderSize {
		err = fmt.Errorf("file is %d bytes, shorter than a header", size)
	}
	if err == nil {
		_, err = f.WriteAt(h.marshal(), 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fs.Rename(prealloc, path)
	}
	if err == nil {
		err = fs.SyncDir(dirOf(path))
	}
	if err == nil {
		f, err = fs.OpenWriteAt(path) // under its name, for errors and metrics
	}
	if err != nil {
		return nil, fmt.Errorf("segment: create %s from %s: %w", path, prealloc, err)
	}
	st := State{Size: HeaderSize, LastSeq: h.FirstSeq - 1, LastMAC: h.PrevMAC}
	return newWriter(fs, f, path, h, o, st, spanBuilder{target: int(h.SpanTarget)}, size), nil
}

// prepareHeader fills in what a new segment's header takes from opts.
func prepareHeader(h *Header, opts *Options) (Options, error) {
	o := opts.withDefaults()
	h.Codec = o.Codec
	if o.BlockSize > maxSpanTarget {
		return o, fmt.Errorf("segment: block size %d exceeds the format's %d-byte limit", o.BlockSize, maxSpanTarget)
	}
	h.SpanTarget = uint32(o.BlockSize)
	if o.Codec == CodecS2Dict {
		// Spans of 64 KiB blocks averaged about two blocks; spans of
		// small blocks close right after the target. Twice the block
		// size keeps spans (and their index entries and summaries) as
		// few as before.
		h.SpanTarget = uint32(min(2*o.BlockSize, maxSpanTarget))
	}
	h.MaxRecordSize = uint32(o.MaxRecordSize)
	if h.Created.IsZero() {
		h.Created = time.Now()
	}
	return o, nil
}

// OpenAppend continues writing an unsealed segment whose committed content
// a Scan described (after any torn tail was cut). The file must be exactly
// sc.State.Size bytes long, or end in the zero tail the scan found after
// them (a preallocated file), which the writer then writes into.
func OpenAppend(fs vfs.FS, path string, sc *ScanResult, opts *Options) (*Writer, error) {
	o := opts.withDefaults()
	f, err := fs.OpenWriteAt(path)
	if err != nil {
		return nil, fmt.Errorf("segment: open %s for append: %w", path, err)
	}
	n, err := f.Size()
	if err == nil && n != sc.State.Size+sc.ZeroTail {
		err = fmt.Errorf("file is %d bytes, committed data ends at %d with %d zero bytes after it", n, sc.State.Size, sc.ZeroTail)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("segment: open %s for append: %w", path, err)
	}
	sb := sc.spans
	sb.done = slices.Clone(sb.done)
	sb.blocks = sb.blocks.clone()
	w := newWriter(fs, f, path, sc.Header, o, sc.State, sb, n)
	w.rawPos, w.durableRaw = sc.raw, sc.raw
	w.prefix = append([]byte(nil), sc.prefix...)
	if len(w.prefix) >= DictSize {
		w.dict = newDict(w.prefix)
	}
	return w, nil
}

func newWriter(fs vfs.FS, f vfs.File, path string, h Header, o Options, st State, sb spanBuilder, fileSize int64) *Writer {
	// Blocks keep the codec and span target the header promised, whatever
	// the options now say, so one segment never mixes them.
	o.Codec = h.Codec
	o.BlockSize = int(h.SpanTarget)
	return &Writer{
		fs: fs, f: f, path: path, hdr: h, opts: o, st: st, spans: sb,
		nextSeq: st.LastSeq + 1, nextPrev: st.LastMAC, lastTime: st.LastTime,
		flushedEnd: st.Size, fileSize: fileSize,
	}
}

// Preallocated returns how many bytes of zero tail are left after the
// flushed batches: the room the next batches are written into without
// growing the file.
func (w *Writer) Preallocated() int64 { return max(w.fileSize-w.flushedEnd, 0) }

// Path returns the segment's file name.
func (w *Writer) Path() string { return w.path }

// Header returns the segment's header.
func (w *Writer) Header() Header { return w.hdr }

// State returns what is durable: it changes only when Sync (or Commit)
// succeeds.
func (w *Writer) State() State { return w.st }

// Tip returns the end of the chain including records added but not yet
// durable. After Discard it is the durable end again.
func (w *Writer) Tip() Tip { return Tip{Seq: w.nextSeq, PrevMAC: w.nextPrev, Time: w.lastTime} }

// StartAfter tells an empty segment's Writer the receipt time of the
// record before the segment, so that Tip keeps times increasing across
// segments (a header does not record it). It is an error once the segment
// holds or buffers records.
func (w *Writer) StartAfter(t int64) error {
	if w.st.Count > 0 || w.Pending() > 0 {
		return fmt.Errorf("segment: StartAfter on %s, which holds records", w.path)
	}
	w.timeFloor = t
	w.lastTime = max(w.lastTime, t)
	return nil
}

// Spans returns the spans of durable records, the last of which may still
// grow. It allocates; see SpanView for the cheap form.
func (w *Writer) Spans() []Span { return w.spans.view() }

// SpanView returns the closed spans of durable records, which never change
// and may be shared with readers (later spans are appended beyond the
// slice's length), and the open span that is still growing, if any.
func (w *Writer) SpanView() (closed []Span, open Span, hasOpen bool) {
	return w.spans.done[:len(w.spans.done):len(w.spans.done)], w.spans.open, w.spans.have
}

// FlushedSize returns the file size once every flushed batch is synced: the
// durable size plus the batch in flight.
func (w *Writer) FlushedSize() int64 { return w.flushedEnd }

// Pending reports how many records are buffered and not yet committed.
func (w *Writer) Pending() int { return int(w.nextSeq - w.st.LastSeq - 1) }

// Err returns the error that failed the writer, or nil.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed
}

// Add buffers one record: its seq (which must follow the previous one), its
// receipt time, its canonical encoding and its chain MAC. Nothing reaches
// the file until Flush (or Commit). A record over the maximum size is
// refused with ErrTooLarge before anything is buffered.
func (w *Writer) Add(seq uint64, t int64, encoded []byte, mac vellum.MAC) error {
	if err := w.Err(); err != nil {
		return err
	}
	if w.sealed {
		return fmt.Errorf("%w: %s", ErrSealed, w.path)
	}
	if len(encoded) > w.opts.MaxRecordSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(encoded), w.opts.MaxRecordSize)
	}
	if len(encoded) == 0 {
		return fmt.Errorf("segment: empty record at seq %d", seq)
	}
	if seq != w.nextSeq {
		return fmt.Errorf("segment: seq %d added, %d expected", seq, w.nextSeq)
	}
	if t < w.lastTime {
		return fmt.Errorf("segment: time of seq %d goes backwards", seq)
	}
	if w.cur.count > 0 && len(w.raw)+len(encoded) > w.blockTarget() {
		w.finishBlock()
	}
	if w.cur.count == 0 {
		w.cur = blockHeader{codec: w.hdr.Codec, firstSeq: seq, firstTime: t, prevMAC: w.nextPrev}
	}
	w.raw = binary.AppendUvarint(w.raw, uint64(len(encoded)))
	w.raw = append(w.raw, encoded...)
	w.raw = append(w.raw, mac[:]...)
	w.cur.count++
	w.cur.lastTime = t
	w.nextSeq++
	w.nextPrev = mac
	w.lastTime = t
	return nil
}

// blockTarget is the raw size at which the block being filled closes: the
// span target, except in an S2-dictionary segment once its dictionary is
// complete (or the block would complete it).
func (w *Writer) blockTarget() int {
	if w.hdr.Codec != CodecS2Dict {
		return w.opts.BlockSize
	}
	return max(w.opts.DictBlockSize, DictSize-int(min(w.rawPos, DictSize)))
}

// finishBlock compresses the raw payload into a block frame in out.
func (w *Writer) finishBlock() {
	start := len(w.out)
	w.out = grow(w.out, BlockHeaderSize)
	codec := w.hdr.Codec
	if codec == CodecS2Dict {
		// The blocks that start within the first DictSize raw bytes make
		// the dictionary and are plain S2; the blocks after use it.
		if w.rawPos < DictSize {
			codec = CodecS2
			w.prefix = append(w.prefix, w.raw[:min(len(w.raw), DictSize-len(w.prefix))]...)
		} else if w.dict == nil {
			w.dict = newDict(w.prefix)
		}
		w.rawPos += int64(len(w.raw))
	}
	w.out = compress(codec, w.out, w.raw, w.dict)
	h := w.cur
	h.codec = codec
	h.rawLen = uint32(len(w.raw))
	h.storedLen = uint32(len(w.out) - start - BlockHeaderSize)
	frame := w.out[start:]
	h.put(frame)
	h.crc = crcUpdate(crc(frame[:72]), frame[BlockHeaderSize:])
	h.put(frame)
	w.batch = append(w.batch, pendingBlock{off: start, h: h})
	w.raw = w.raw[:0]
	w.cur = blockHeader{}
}

// Commit writes the buffered records as block frames and a commit frame in
// one write, then fdatasyncs. Only when it returns nil are the records
// durable. After a failed write or sync the writer is failed: the error is
// returned again by every later call, and nothing more is acknowledged. A
// sync is never retried, because after a failed fsync the kernel may have
// dropped the dirty pages and a second fsync can succeed without them.
func (w *Writer) Commit() error {
	fl, err := w.Flush()
	if err != nil || fl == nil {
		return err
	}
	return w.Sync(fl)
}

// Flushed is a batch that Flush wrote to the file and Sync has not yet made
// durable.
type Flushed struct {
	buf      []byte
	blocks   []pendingBlock
	base     int64 // file offset of the batch
	lastSeq  uint64
	lastMAC  vellum.MAC
	lastTime int64
}

// Records returns how many records the batch holds.
func (fl *Flushed) Records() int {
	n := 0
	for _, b := range fl.blocks {
		n += int(b.h.count)
	}
	return n
}

// Flush writes the buffered records (block frames and a commit frame) to
// the file in one write, without syncing, and returns the batch for Sync;
// nil when nothing is buffered. Records added after Flush form the next
// batch. Flush and Sync exist apart so that a caller may prepare the next
// batch (Add) while the previous one syncs on another goroutine: Add may
// run concurrently with Sync, but Flush must not be called until the
// previous batch's Sync has returned, so at most one batch is ever unsynced.
// The Flushed returned stays valid until the second Flush after this one,
// which reuses it.
func (w *Writer) Flush() (*Flushed, error) {
	if err := w.Err(); err != nil {
		return nil, err
	}
	if w.cur.count > 0 {
		w.finishBlock()
	}
	if len(w.batch) == 0 {
		return nil, nil
	}
	covered := len(w.out)
	if uint64(covered) > math.MaxUint32-CommitSize {
		// The commit frame's covered length is a u32: refuse before
		// writing anything rather than write a frame that cannot verify.
		w.Discard()
		return nil, fmt.Errorf("%w: a batch of %d bytes exceeds the format's 4 GiB limit", ErrTooLarge, covered)
	}
	c := crc(w.out)
	w.out = grow(w.out, CommitSize)
	putCommit(w.out[covered:], uint32(covered), w.nextSeq-1, c)
	fl := &w.flushed[w.flushedNext]
	w.flushedNext ^= 1
	reuse := fl.blocks[:0] // the batch before the previous one's: synced, and its Flushed given up
	*fl = Flushed{buf: w.out, blocks: w.batch, base: w.flushedEnd, lastSeq: w.nextSeq - 1, lastMAC: w.nextPrev, lastTime: w.lastTime}
	if _, err := w.f.WriteAt(w.out, w.flushedEnd); err != nil {
		return nil, w.fail(fmt.Errorf("segment: write batch to %s at offset %d: %w", w.path, fl.base, err))
	}
	w.flushedEnd += int64(len(w.out))
	w.fileSize = max(w.fileSize, w.flushedEnd)
	w.out = w.takeSpare()
	w.batch = reuse
	return fl, nil
}

// Sync fdatasyncs the file and makes the flushed batch part of the durable
// State and Spans.
func (w *Writer) Sync(fl *Flushed) error {
	if err := w.Err(); err != nil {
		return err
	}
	if err := w.f.Sync(); err != nil {
		return w.fail(fmt.Errorf("segment: fdatasync %s: %w", w.path, err))
	}
	for _, b := range fl.blocks {
		w.spans.block(fl.base+int64(b.off), &b.h)
		if w.st.Count == 0 {
			w.st.FirstSeq = b.h.firstSeq
			w.st.FirstTime = b.h.firstTime
		}
		w.st.Count += uint64(b.h.count)
		w.durableRaw += int64(b.h.rawLen)
	}
	w.st.Size = fl.base + int64(len(fl.buf))
	w.spans.commit(w.st.Size)
	w.st.LastSeq = fl.lastSeq
	w.st.LastMAC = fl.lastMAC
	w.st.LastTime = fl.lastTime
	w.giveSpare(fl.buf[:0])
	return nil
}

// takeSpare and giveSpare pass a frame buffer between Flush and Sync, which
// may run on different goroutines.
func (w *Writer) takeSpare() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := w.spare
	w.spare = nil
	return b
}

func (w *Writer) giveSpare(b []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if cap(b) > cap(w.spare) {
		w.spare = b
	}
}

// Discard drops buffered records that were not committed, so the writer
// continues from its durable state.
//
// Discard must not be called while a flushed batch awaits Sync.
func (w *Writer) Discard() {
	w.out = w.out[:0]
	w.raw = w.raw[:0]
	w.batch = w.batch[:0]
	w.cur = blockHeader{}
	w.nextSeq = w.st.LastSeq + 1
	w.nextPrev = w.st.LastMAC
	w.lastTime = max(w.st.LastTime, w.timeFloor)
	if w.rawPos = w.durableRaw; w.rawPos < DictSize {
		w.prefix = w.prefix[:w.rawPos]
		w.dict = nil
	}
}

func (w *Writer) fail(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed == nil {
		w.failed = fmt.Errorf("%w: %w", ErrFailed, err)
	}
	return w.failed
}

// SealOptions carries what the sealer adds to the footer.
type SealOptions struct {
	// MerkleRoot, when non-nil, is stored in the trailer.
	MerkleRoot *[32]byte
	// Sections are extra footer sections by type (not SectionSpans).
	Sections map[uint16][]byte
}

// Seal writes the footer and trailer, fdatasyncs, closes the file and makes
// it read-only. Buffered records that were not committed are an error.
func (w *Writer) Seal(so *SealOptions) (*Footer, error) {
	if err := w.Err(); err != nil {
		return nil, err
	}
	if w.Pending() > 0 || w.flushedEnd != w.st.Size {
		return nil, fmt.Errorf("segment: seal %s with %d uncommitted records", w.path, w.Pending())
	}
	if so == nil {
		so = &SealOptions{}
	}
	ft := &Footer{
		Offset:    w.st.Size,
		Count:     w.st.Count,
		FirstSeq:  w.st.FirstSeq,
		LastSeq:   w.st.LastSeq,
		FirstTime: w.st.FirstTime,
		LastTime:  w.st.LastTime,
		LastMAC:   w.st.LastMAC,
		Spans:     w.spans.finish(),
		Sections:  so.Sections,
	}
	if w.st.Count == 0 {
		ft.LastSeq = 0
	}
	if so.MerkleRoot != nil {
		ft.MerkleRoot, ft.HasRoot = *so.MerkleRoot, true
	}
	if _, ok := ft.Sections[SectionSpans]; ok {
		return nil, fmt.Errorf("segment: seal %s: section %d is reserved", w.path, SectionSpans)
	}
	if _, ok := ft.Sections[SectionBlocks]; ok {
		return nil, fmt.Errorf("segment: seal %s: section %d is reserved", w.path, SectionBlocks)
	}
	if w.hdr.Codec == CodecS2Dict && w.st.Count > 0 {
		// Small blocks: a reader of a few records finds theirs here.
		secs := maps.Clone(ft.Sections)
		if secs == nil {
			secs = map[uint16][]byte{}
		}
		secs[SectionBlocks] = w.spans.blocks.section()
		ft.Sections = secs
	}
	if w.fileSize > w.st.Size {
		// A sealed file ends with its trailer: cut the zero tail first;
		// the fdatasync below commits the cut with the footer.
		if err := w.f.Truncate(w.st.Size); err != nil {
			return nil, w.fail(fmt.Errorf("segment: cut the zero tail of %s at %d: %w", w.path, w.st.Size, err))
		}
		w.fileSize = w.st.Size
	}
	if _, err := w.f.WriteAt(ft.marshal(), w.st.Size); err != nil {
		return nil, w.fail(fmt.Errorf("segment: write footer of %s: %w", w.path, err))
	}
	if err := w.f.Sync(); err != nil {
		return nil, w.fail(fmt.Errorf("segment: fdatasync footer of %s: %w", w.path, err))
	}
	w.sealed = true
	if err := w.f.Close(); err != nil {
		return nil, w.fail(fmt.Errorf("segment: close %s: %w", w.path, err))
	}
	if err := w.fs.Chmod(w.path, 0o444); err != nil {
		return nil, fmt.Errorf("segment: make %s read-only: %w", w.path, err)
	}
	return ft, nil
}

// Close closes the file without sealing; the segment stays active and a
// later OpenAppend continues it. Uncommitted records are dropped.
func (w *Writer) Close() error {
	if w.sealed || w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	w.sealed = true // no further writes through this Writer
	return err
}

func dirOf(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			if i == 0 {
				return "/"
			}
			return path[:i]
		}
	}
	return "."
}

// spanBuilder groups committed block frames into spans of at least target
// raw bytes. Writer and Scan feed it the same way, so a scan rebuilds the
// spans a writer would have produced.
type spanBuilder struct {
	target  int
	done    []Span
	open    Span
	openRaw int
	have    bool
	blocks  blockIndexBuilder
}

func (sb *spanBuilder) block(off int64, h *blockHeader) {
	if sb.have && sb.openRaw >= sb.target {
		sb.open.Length = off - sb.open.Offset
		sb.done = append(sb.done, sb.open)
		sb.have = false
	}
	opens := !sb.have
	if opens {
		sb.open = Span{Offset: off, FirstSeq: h.firstSeq, FirstTime: h.firstTime}
		sb.openRaw = 0
		sb.have = true
	}
	sb.blocks.block(off, off, h.count, opens)
	sb.open.Count += h.count
	sb.open.LastTime = h.lastTime
	sb.openRaw += int(h.rawLen)
}

// commit extends the open span to a commit frame's end.
func (sb *spanBuilder) commit(end int64) {
	if sb.have {
		sb.open.Length = end - sb.open.Offset
	}
}

// view returns closed spans plus the open one.
func (sb *spanBuilder) view() []Span {
	if !sb.have {
		return sb.done
	}
	return append(sb.done[:len(sb.done):len(sb.done)], sb.open)
}

func (sb *spanBuilder) finish() []Span {
	if sb.have {
		sb.done = append(sb.done, sb.open)
		sb.have = false
	}
	return sb.done
}
