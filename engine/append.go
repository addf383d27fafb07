package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/index"
)

// Append stores records and returns their sequence numbers, in order, only
// after their bytes are fsync'd. The engine assigns Seq and the receipt Time
// (UTC, strictly increasing with Seq); fields the store assigns are ignored
// on input. Each record is validated and, when a Redactor is configured,
// redacted before it is encoded; the caller's records are not modified.
// Append is Prepare followed by AppendPrepared.
//
// A record whose tenant and event_id match one of the recent records (see
// Options.DedupEntries) is not stored again; its original seq is returned.
//
// Append fails with a *RecordError wrapping ErrTooLarge or vellum.ErrInvalid
// (nothing of the call is written), with ErrClosed, or with ErrFailed after
// an I/O error, in which case none of the records are acknowledged. If ctx
// ends first, Append returns ctx.Err() and the records may or may not be
// stored.
func (e *Engine) Append(ctx context.Context, recs ...vellum.Record) ([]uint64, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	p, err := e.Prepare(recs...)
	if err != nil {
		return nil, err
	}
	return e.AppendPrepared(ctx, p)
}

// Prepared is records made ready to append, once: validated, redacted and
// encoded in the canonical encoding with seq and time still zero (the
// committer stamps them, vellum.StampEncoded). A caller that must check
// sizes before it appends (an HTTP server answering 413) reads them here
// instead of encoding the records a second time. A Prepared may be appended
// once, to the engine that prepared it.
type Prepared struct {
	items []item
	size  int
	used  atomic.Bool
	// seqs receives the records' seqs (committer.enqueue) and is what
	// AppendPrepared returns: its own allocation, so that a caller keeping
	// it does not keep the records. The items of a one-record call, the
	// common case, are one instead of another allocation.
	seqs []uint64
	one  [1]item
}

type item struct {
	// enc is the canonical encoding. It becomes the stored bytes and a
	// Merkle leaf (tree.go): never reused once appended.
	enc       []byte
	dedup     string     // dedupKey(tenant, event id), or "" when not deduplicated
	dedupHash uint64     // dedupHash(dedup), computed here rather than under the committer's lock
	keys      index.Keys // summary keys, whose hashes serve the postings too (postings.go)
}

// Len returns the number of records.
func (p *Prepared) Len() int { return len(p.items) }

// Size returns the encoded size of record i in bytes, the size
// Options.MaxRecordSize bounds.
func (p *Prepared) Size(i int) int { return len(p.items[i].enc) }

// Bytes returns the encoded size of all the records.
func (p *Prepared) Bytes() int { return p.size }

// RecordError is a record of a call that cannot be stored: its index in the
// call and why (an error wrapping vellum.ErrInvalid or ErrTooLarge).
// Nothing of the call was written.
type RecordError struct {
	Index int
	Err   error
}

func (e *RecordError) Error() string { return fmt.Sprintf("record %d: %v", e.Index, e.Err) }

// Unwrap returns the reason.
func (e *RecordError) Unwrap() error { return e.Err }

// Prepare validates, redacts (with Options.Redactor) and encodes records on
// the caller's goroutine, so that this work runs in parallel across
// callers; the committer only stamps seq and time and chains the MACs. All
// encodings share one exactly sized buffer: one allocation per call, not
// per record. An error is a *RecordError naming the first record that
// cannot be stored.
func (e *Engine) Prepare(recs ...vellum.Record) (*Prepared, error) {
	return e.prep.prepare(recs, false)
}

// PrepareOwned is Prepare for a caller that hands recs over: the Redactor
// rewrites them in place (their fields, attribute maps and redaction
// lists), sparing the copy of every record, its attributes and its
// redactions that Prepare makes so that it leaves the caller's records as
// they were. The HTTP server passes the records it has just decoded from
// a request body, which it does not read again.
func (e *Engine) PrepareOwned(recs []vellum.Record) (*Prepared, error) {
	return e.prep.prepare(recs, true)
}

// preparer makes records ready to append (Prepare). Its fields are set by
// Open and never change: every appending goroutine uses it at once,
// without a lock.
type preparer struct {
	redactor      Redactor // Options.Redactor, or nil
	maxRecordSize int      // Options.MaxRecordSize
	dedup         bool     // Options.DedupEntries > 0
}

func newPreparer(o *Options) preparer {
	return preparer{redactor: o.Redactor, maxRecordSize: o.MaxRecordSize, dedup: o.DedupEntries > 0}
}

// prepare validates, redacts and encodes recs into a Prepared; owned
// says the caller hands recs over (PrepareOwned).
func (pr *preparer) prepare(recs []vellum.Record, owned bool) (*Prepared, error) {
	if pr.redactor == nil && len(recs) > 1 {
		return pr.prepareOnePass(recs)
	}
	src := recs
	copied := pr.redactor != nil && !owned
	if copied {
		src = make([]vellum.Record, len(recs))
	}
	size := 0
	for i := range recs {
		if err := recs[i].Validate(); err != nil {
			return nil, &RecordError{Index: i, Err: err}
		}
		if pr.redactor != nil && owned {
			pr.redactor.Redact(&recs[i])
		} else if pr.redactor != nil {
			// The redactor rewrites in place; give it copies of what the
			// caller shares with us.
			r := recs[i]
			r.Attributes = maps.Clone(r.Attributes)
			r.Redactions = slices.Clone(r.Redactions)
			pr.redactor.Redact(&r)
			src[i] = r
		}
		n := src[i].EncodedSize()
		if n > pr.maxRecordSize {
			return nil, &RecordError{Index: i, Err: fmt.Errorf("%w: the record is %d bytes encoded, over the maximum of %d", ErrTooLarge, n, pr.maxRecordSize)}
		}
		size += n
	}
	p, buf := newPreparedBuf(len(src), size)
	for i := range src {
		r := &src[i]
		start := len(buf)
		var err error
		if buf, err = r.AppendBinary(buf); err != nil {
			return nil, &RecordError{Index: i, Err: err}
		}
		it := &p.items[i]
		it.enc, it.keys = buf[start:len(buf):len(buf)], keysOf(r)
		if r.EventID != "" && pr.dedup {
			p.items[i].dedup = dedupKey(r.TenantID, r.EventID)
			p.items[i].dedupHash = dedupHash(p.items[i].dedup)
		}
	}
	return p, nil
}

// prepareOnePass is prepare for calls of many records without a
// Redactor, which does not change them: their sizes first, from their
// fields' lengths alone, then each record validated, encoded and keyed in
// turn, so that encoding and hashing find its fields still in the cache
// where validation read them (a call of 1,000 records is more than the
// cache holds). A call is refused for the same record and reason as
// prepare refuses it: the first too large record is refused only once
// every record before it, and itself, is valid.
func (pr *preparer) prepareOnePass(recs []vellum.Record) (*Prepared, error) {
	size, tooLarge := 0, len(recs)
	for i := range recs {
		n := recs[i].EncodedSize()
		if n > pr.maxRecordSize {
			tooLarge = i
			break
		}
		size += n
	}
	if tooLarge < len(recs) {
		for i := range recs[:tooLarge+1] {
			if err := recs[i].Validate(); err != nil {
				return nil, &RecordError{Index: i, Err: err}
			}
		}
		n := recs[tooLarge].EncodedSize()
		return nil, &RecordError{Index: tooLarge, Err: fmt.Errorf("%w: the record is %d bytes encoded, over the maximum of %d", ErrTooLarge, n, pr.maxRecordSize)}
	}
	p, buf := newPreparedBuf(len(recs), size)
	for i := range recs {
		r := &recs[i]
		if err := r.Validate(); err != nil {
			return nil, &RecordError{Index: i, Err: err}
		}
		start := len(buf)
		var err error
		if buf, err = r.AppendBinary(buf); err != nil {
			return nil, &RecordError{Index: i, Err: err}
		}
		it := &p.items[i]
		it.enc, it.keys = buf[start:len(buf):len(buf)], keysOf(r)
		if r.EventID != "" && pr.dedup {
			it.dedup = dedupKey(r.TenantID, r.EventID)
			it.dedupHash = dedupHash(it.dedup)
		}
	}
	return p, nil
}

// newPrepared makes a Prepared for n records of size encoded bytes.
func newPrepared(n, size int) *Prepared {
	p := &Prepared{size: size, seqs: make([]uint64, n)}
	if n == 1 {
		p.items = p.one[:]
	} else {
		p.items = make([]item, n)
	}
	return p
}

// oneRecordBytes is how large the encoding of a one-record call may be to
// share the Prepared's allocation (preparedOne): with the Prepared's 216
// bytes, the seq's 8 and the allocator's 8-byte header, 640 bytes, one of
// its size classes.
const oneRecordBytes = 408

// preparedOne is a Prepared of one record of at most oneRecordBytes
// encoded, with its seq and its encoding's buffer: one allocation instead
// of three for the most common call of many callers (PERFORMANCE.md,
// issue 8). The three live as long as one another anyway: the postings
// keep the item's keys, and the Merkle tree its encoding, until both are
// done with the batch. A caller that keeps the seqs keeps the 640 bytes.
type preparedOne struct {
	p   Prepared
	seq [1]uint64
	buf [oneRecordBytes]byte
}

// newPreparedBuf makes a Prepared for n records of size encoded bytes and
// the empty buffer of capacity size to encode them into.
func newPreparedBuf(n, size int) (*Prepared, []byte) {
	if n == 1 && size <= oneRecordBytes {
		o := &preparedOne{}
		o.p.size, o.p.seqs, o.p.items = size, o.seq[:], o.p.one[:]
		return &o.p, o.buf[:0:size]
	}
	return newPrepared(n, size), make([]byte, 0, size)
}

// AppendPrepared appends records Prepare made ready, as Append does, and
// returns their seqs once they are durable.
func (e *Engine) AppendPrepared(ctx context.Context, p *Prepared) ([]uint64, error) {
	if p == nil || len(p.items) == 0 {
		return nil, nil
	}
	if p.used.Swap(true) {
		return nil, ErrPreparedUsed
	}
	return e.commit.commit(ctx, p)
}

// keysOf computes a record's summary keys on the appending goroutine.
func keysOf(r *vellum.Record) index.Keys {
	return index.KeysOf(r.TenantID, r.UserID, r.Action, r.Tool.Name, r.Model.Name, r.Outcome.Status)
}
