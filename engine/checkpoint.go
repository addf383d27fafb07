package engine

// Signed checkpoints (segment/FORMAT.md, "Checkpoint log"). The tree
// goroutine signs one at every seal, every Options.CheckpointRecords
// records and every Options.CheckpointInterval while the log grows, and at
// Close. Before signing it proves the new tree consistent with the last
// signed one from the data on disk, so the log never signs two
// checkpoints that contradict each other.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/merkle"
)

// cpState is the checkpoint side of the tree goroutine.
type cpState struct {
	log      *checkpoint.Log
	origin   string
	latest   atomic.Pointer[checkpoint.Signed]
	lastTime time.Time
}

type signResult struct {
	s   *checkpoint.Signed
	err error
}

// Origin returns the origin line of the store's checkpoints.
func (e *Engine) Origin() string {
	if e.opts.Origin != "" {
		return e.opts.Origin
	}
	return DefaultOrigin(e.storeID)
}

// startTree opens the checkpoint log, checks its latest checkpoint against
// the data, and starts the tree goroutine. (Hook called from Open after
// recovery, before the writer starts.)
func (e *Engine) startTree() error {
	cp := &e.tree.cp
	cp.origin = e.Origin()
	cp.lastTime = e.opts.Now()
	if e.opts.Signer != nil {
		l, res, err := checkpoint.OpenLog(e.fs, filepath.Join(e.dir, checkpoint.LogName))
		if errors.Is(err, checkpoint.ErrCorrupt) {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		if err != nil {
			return fmt.Errorf("engine: %w", err)
		}
		if res.TornAt >= 0 {
			e.log.Warn("cut back a torn final checkpoint", slog.Int64("offset", res.TornAt), slog.String("reason", res.TornReason))
		}
		cp.log = l
		if n := len(res.Entries); n > 0 {
			if err := e.checkLatest(res.Entries[n-1]); err != nil {
				l.Close()
				return err
			}
		}
	}
	e.tree.running = true
	go e.treeLoop()
	return nil
}

// checkLatest verifies the checkpoint log's last entry against the data:
// it must not claim more records than the store holds, and its root must
// be the root of the store's first Size records.
func (e *Engine) checkLatest(en checkpoint.Entry) error {
	path := filepath.Join(e.dir, checkpoint.LogName)
	s, err := checkpoint.ParseNote(en.Note)
	if err != nil {
		return fmt.Errorf("%w: %s offset %d: %w", ErrCorrupt, path, en.Offset, err)
	}
	if s.Origin != e.tree.cp.origin {
		return fmt.Errorf("%w: %s offset %d: checkpoint of origin %q, this store's is %q", ErrCorrupt, path, en.Offset, s.Origin, e.tree.cp.origin)
	}
	size := e.tree.log.Size()
	if s.Size > size {
		return fmt.Errorf("%w: %s offset %d: the latest signed checkpoint covers %d records, the store holds %d (records were removed)", ErrCorrupt, path, en.Offset, s.Size, size)
	}
	root, err := merkle.RootAt(treeSource{e}, s.Size)
	if err != nil {
		return fmt.Errorf("%w: checking %s offset %d: %w", ErrCorrupt, path, en.Offset, err)
	}
	if root != s.Root {
		return fmt.Errorf("%w: %s offset %d: the latest signed checkpoint (size %d) does not match the data: %w", ErrCorrupt, path, en.Offset, s.Size,
			&merkle.RootMismatchError{Expected: s.Root, Calculated: root})
	}
	// Ed25519 is deterministic: our key reproduces its own signature.
	if again, err := checkpoint.Sign(s.Checkpoint, e.opts.Signer); err != nil || !bytes.Equal(again.Note, s.Note) {
		e.log.Warn("the latest checkpoint was signed by another key (was the signing key rotated?)", slog.Int64("offset", en.Offset))
	}
	e.tree.cp.latest.Store(&s)
	return nil
}

// treeLoop is the tree goroutine.
func (e *Engine) treeLoop() {
	defer close(e.tree.done)
	t := &e.tree
	var tick <-chan time.Time
	if e.opts.Signer != nil && e.opts.CheckpointInterval > 0 {
		tk := time.NewTicker(min(e.opts.CheckpointInterval, time.Second))
		defer tk.Stop()
		tick = tk.C
	}
	sinceCP := uint64(0)
	for {
		select {
		case m := <-t.in:
			switch {
			case m.batch != nil:
				t.hashBatch(m.batch)
				sinceCP += uint64(len(m.batch.encs))
				if e.opts.CheckpointRecords > 0 && sinceCP >= uint64(e.opts.CheckpointRecords) {
					e.signNow()
					sinceCP = 0
				}
			case m.seal != nil:
				m.seal <- t.seal()
				e.signNow() // the checkpoint of every seal
				sinceCP = 0
			case m.sign != nil:
				s, err := e.signNow()
				sinceCP = 0
				m.sign <- signResult{s, err}
			case m.stop != nil:
				e.signNow()
				if t.cp.log != nil {
					t.cp.log.Close()
				}
				close(m.stop)
				return
			}
		case <-tick:
			if e.opts.Now().Sub(t.cp.lastTime) >= e.opts.CheckpointInterval {
				e.signNow()
				sinceCP = 0
			}
		}
	}
}

// signNow signs and logs a checkpoint of the current tree if it grew since
// the last one, after proving the two consistent. It returns the latest
// checkpoint.
func (e *Engine) signNow() (*checkpoint.Signed, error) {
	cp := &e.tree.cp
	if e.opts.Signer == nil {
		return nil, ErrNoSigner
	}
	cp.lastTime = e.opts.Now()
	e.tree.mu.Lock()
	c := checkpoint.Checkpoint{Origin: cp.origin, Size: e.tree.log.Size(), Root: e.tree.log.Root()}
	e.tree.mu.Unlock()
	prev := cp.latest.Load()
	if prev != nil && prev.Size == c.Size && prev.Root == c.Root {
		return prev, nil
	}
	var proof *merkle.ConsistencyProof
	if prev != nil {
		p, err := merkle.ProveConsistency(treeSource{e}, prev.Size, c.Size)
		if err == nil {
			err = checkpoint.CheckConsistency(prev.Checkpoint, c, p)
		}
		if err != nil {
			err = fmt.Errorf("%w: refusing to sign a checkpoint: %w", ErrCorrupt, err)
			return nil, e.fail(err)
		}
		proof = p
	}
	s, err := checkpoint.Sign(c, e.opts.Signer)
	if err != nil {
		return nil, e.fail(err)
	}
	if err := cp.log.Append(s); err != nil {
		return nil, e.fail(err)
	}
	cp.latest.Store(&s)
	e.observeCheckpoint(&s) // metrics (observer.go)
	e.notifyCheckpoint(s, proof)
	return &s, nil
}

// stopTree signs the final checkpoint and stops the tree goroutine. (Hook
// called from Close after the writer stopped.)
func (e *Engine) stopTree() {
	if !e.tree.running {
		return
	}
	c := make(chan struct{})
	e.tree.in <- treeMsg{stop: c}
	<-c
	<-e.tree.done
	e.tree.running = false
}

// LatestCheckpoint returns the last signed checkpoint, or false when none
// was signed yet (or no Signer is configured).
func (e *Engine) LatestCheckpoint() (checkpoint.Signed, bool) {
	s := e.tree.cp.latest.Load()
	if s == nil {
		return checkpoint.Signed{}, false
	}
	return *s, true
}

// SignCheckpoint signs a checkpoint of every record durable so far (unless
// the latest already covers them) and returns it.
func (e *Engine) SignCheckpoint(ctx context.Context) (checkpoint.Signed, error) {
	if e.opts.Signer == nil {
		return checkpoint.Signed{}, ErrNoSigner
	}
	if err := e.Err(); err != nil {
		if s, ok := e.LatestCheckpoint(); ok && err == ErrClosed {
			return s, nil
		}
		return checkpoint.Signed{}, err
	}
	c := make(chan signResult, 1)
	select {
	case e.tree.in <- treeMsg{sign: c}:
	case <-e.tree.done:
		return checkpoint.Signed{}, ErrClosed
	case <-ctx.Done():
		return checkpoint.Signed{}, ctx.Err()
	}
	select {
	case r := <-c:
		if r.err != nil {
			return checkpoint.Signed{}, r.err
		}
		return *r.s, nil
	case <-ctx.Done():
		return checkpoint.Signed{}, ctx.Err()
	}
}

// TreeHead returns the size and root of the log-wide tree as far as the
// tree goroutine has hashed (it trails the durable log by at most the
// batches in flight).
func (e *Engine) TreeHead() (uint64, merkle.Hash) {
	e.tree.mu.Lock()
	defer e.tree.mu.Unlock()
	return e.tree.log.Size(), e.tree.log.Root()
}

// InclusionProof proves that the record with seq is in the tree of size
// records (0: the latest signed checkpoint's size). Verify it with
// merkle.VerifyInclusion against that checkpoint's root and the record's
// leaf hash, merkle.LeafHash(encoding, MAC); no key is needed.
func (e *Engine) InclusionProof(ctx context.Context, seq, size uint64) (*merkle.InclusionProof, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if size == 0 {
		s, ok := e.LatestCheckpoint()
		if !ok {
			return nil, fmt.Errorf("%w: no signed checkpoint yet", ErrNotFound)
		}
		size = s.Size
	}
	if last := e.LastSeq(); size > last {
		return nil, fmt.Errorf("%w: tree size %d, the store holds %d records", ErrNotFound, size, last)
	}
	if seq == 0 || seq > size {
		return nil, fmt.Errorf("%w: seq %d is not in the tree of %d records", ErrNotFound, seq, size)
	}
	p, err := merkle.ProveInclusion(treeSource{e}, seq-1, size)
	if err != nil {
		return nil, fmt.Errorf("engine: inclusion proof of seq %d: %w", seq, err)
	}
	return p, nil
}

// ConsistencyProof proves that the tree of size1 records is a prefix of
// the tree of size2 records.
func (e *Engine) ConsistencyProof(ctx context.Context, size1, size2 uint64) (*merkle.ConsistencyProof, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if last := e.LastSeq(); size2 > last || size1 > size2 {
		return nil, fmt.Errorf("%w: consistency from %d to %d, the store holds %d records", ErrNotFound, size1, size2, last)
	}
	p, err := merkle.ProveConsistency(treeSource{e}, size1, size2)
	if err != nil {
		return nil, fmt.Errorf("engine: consistency proof %d to %d: %w", size1, size2, err)
	}
	return p, nil
}
