package verify

import (
	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/merkle"
	"github.com/vellumlog/vellum/segment"
)

// Most of a record's verification is two SHA-256 computations over its
// bytes: its HMAC and its Merkle leaf hash. Neither depends on anything
// computed from another record (a record's MAC is checked against the MAC
// stored in the record before it), so a segment's records are hashed in
// batches by a pool of workers while the segment's own goroutine scans
// (decompression, CRCs, summaries, postings) and folds the results into
// the chain and tree checks in seq order. The report is the same as when
// one goroutine does everything: only the order in which hashes are
// computed changes, never the order in which they are used.

// hashBatchSize is how many records a batch holds, and hashDepth how many
// batches of one segment may be in flight: memory stays bounded (about
// hashDepth × hashBatchSize × the record size per segment being checked)
// however large the segment.
const (
	hashBatchSize = 256
	hashDepth     = 8
)

// hashRec is one record's hashing work and its outcome.
type hashRec struct {
	rec    []byte // the record's encoding (the batch's copy, or the scan's buffer when inline)
	seq    uint64
	offset int64
	mac    vellum.MAC // found
	prev   vellum.MAC // the chain value before it
	want   vellum.MAC // the MAC the key gives, when checked
	bad    bool       // the MAC does not verify
	leaf   merkle.Hash
}

// compute hashes one record: its MAC under h (when not nil) and its leaf.
func (x *hashRec) compute(h *chain.Hasher, lh *merkle.Hasher) {
	if h != nil {
		want, err := h.Check(x.seq, x.prev, x.rec, x.mac)
		x.want, x.bad = want, err != nil
	}
	x.leaf = lh.Leaf(x.rec, x.mac)
}

// hashBatch is a batch of one segment's records, hashed by a pool worker.
type hashBatch struct {
	key  *chain.Key // nil: no MAC check
	data []byte     // the records' bytes, back to back
	recs []hashRec
	done chan struct{}
}

// hashPool computes batches on its workers. Submit may block when every
// worker is busy and the queue is full; workers never wait on submitters,
// so that cannot deadlock.
type hashPool struct {
	jobs chan *hashBatch
}

func newHashPool(workers int) *hashPool {
	p := &hashPool{jobs: make(chan *hashBatch, workers*2)}
	for range workers {
		go p.work()
	}
	return p
}

func (p *hashPool) work() {
	var (
		key *chain.Key
		h   *chain.Hasher
		lh  merkle.Hasher
	)
	for b := range p.jobs {
		if b.key != key {
			key, h = b.key, nil
			if key != nil {
				h = key.NewHasher()
			}
		}
		for i := range b.recs {
			b.recs[i].compute(h, &lh)
		}
		close(b.done)
	}
}

// close stops the workers once the queued batches are done.
func (p *hashPool) close() { close(p.jobs) }

// hashQueue is a segment's batches in flight, oldest first, and the batch
// being filled. Not safe for concurrent use: the segment's goroutine owns
// it.
type hashQueue struct {
	pool    *hashPool
	size    int // records per batch
	key     *chain.Key
	cur     *hashBatch
	pending []*hashBatch
	free    []*hashBatch
	// The chain as the scan sees it, to give each record the MAC before
	// it: that of the record read before it when it follows it, else the
	// one its block carries (as segCheck.fold decides).
	count   uint64
	lastSeq uint64
	lastMAC vellum.MAC
}

// add copies en into the current batch, submitting the batch when full.
// fold is called, in order, for the records of batches that are done
// whenever too many are in flight.
func (q *hashQueue) add(en *segment.Entry, fold func(*hashRec)) {
	if q.cur == nil {
		if n := len(q.free); n > 0 {
			q.cur, q.free = q.free[n-1], q.free[:n-1]
			q.cur.data, q.cur.recs = q.cur.data[:0], q.cur.recs[:0]
		} else {
			q.cur = &hashBatch{recs: make([]hashRec, 0, q.size)}
		}
		q.cur.key = q.key
	}
	prev := en.PrevMAC
	if q.count > 0 && en.Seq == q.lastSeq+1 {
		prev = q.lastMAC
	}
	q.count++
	q.lastSeq, q.lastMAC = en.Seq, en.MAC
	b := q.cur
	start := len(b.data)
	b.data = append(b.data, en.Record...)
	b.recs = append(b.recs, hashRec{seq: en.Seq, offset: en.Offset, mac: en.MAC, prev: prev, rec: b.data[start:len(b.data):len(b.data)]})
	if len(b.recs) >= q.size {
		q.submit(fold)
	}
}

func (q *hashQueue) submit(fold func(*hashRec)) {
	b := q.cur
	q.cur = nil
	// The records' slices were taken while data grew: point them at its
	// final array.
	off := 0
	for i := range b.recs {
		n := len(b.recs[i].rec)
		b.recs[i].rec = b.data[off : off+n : off+n]
		off += n
	}
	b.done = make(chan struct{})
	q.pending = append(q.pending, b)
	q.pool.jobs <- b
	for len(q.pending) > hashDepth {
		q.foldOldest(fold)
	}
}

func (q *hashQueue) foldOldest(fold func(*hashRec)) {
	b := q.pending[0]
	<-b.done
	for i := range b.recs {
		fold(&b.recs[i])
	}
	q.pending = q.pending[1:]
	q.free = append(q.free, b)
}

// flush submits the batch being filled and folds every batch in order.
func (q *hashQueue) flush(fold func(*hashRec)) {
	if q.cur != nil && len(q.cur.recs) > 0 {
		q.submit(fold)
	}
	for len(q.pending) > 0 {
		q.foldOldest(fold)
	}
}
