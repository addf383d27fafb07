package engine

// Signed checkpoints (segment/FORMAT.md, "Checkpoint log"): the
// checkpointer half of the tree. The tree goroutine signs one at every
// seal, every Options.CheckpointRecords records and every
// Options.CheckpointInterval while the log grows, on request
// (SignCheckpoint) and at Close. Before signing it proves the new tree
// consistent with the last signed one from the data on disk, so the log
// never signs two checkpoints that contradict each other.

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
	log      *checkpoint.Log // nil without a Signer
	origin   string
	latest   atomic.Pointer[checkpoint.Signed] // read by any goroutine
	lastTime time.Time                         // when signNow last ran
	since    atomic.Uint64                     // records hashed since then; the committer adds those it hashes (tree.hand)
}

type signResult struct {
	s   *checkpoint.Signed
	err error
}

// start opens the checkpoint log, checks its latest checkpoint against the
// data, and starts the tree goroutine. Open calls it once the store is
// recovered and published, so the check can read records.
func (t *tree) start(origin string) error {
	t.cp.origin = origin
	t.cp.lastTime = t.opts.Now()
	if t.opts.Signer != nil {
		l, res, err := checkpoint.OpenLog(t.fs, filepath.Join(t.dir, checkpoint.LogName))
		if errors.Is(err, checkpoint.ErrCorrupt) {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		if err != nil {
			return fmt.Errorf("engine: %w", err)
		}
		if res.TornAt >= 0 {
			t.log.Warn("cut back a torn final checkpoint", slog.Int64("offset", res.TornAt), slog.String("reason", res.TornReason))
		}
		t.cp.log = l
		if n := len(res.Entries); n > 0 {
			if err := t.checkLatest(res.Entries[n-1]); err != nil {
				l.Close()
				return err
			}
		}
	}
	t.running = true
	go t.loop()
	return nil
}

// checkLatest verifies the checkpoint log's last entry against the data:
// it must not claim more records than the store holds, and its root must
// be the root of the store's first Size records.
func (t *tree) checkLatest(en checkpoint.Entry) error {
	path := filepath.Join(t.dir, checkpoint.LogName)
	s, err := checkpoint.ParseNote(en.Note)
	if err != nil {
		return fmt.Errorf("%w: %s offset %d: %w", ErrCorrupt, path, en.Offset, err)
	}
	if s.Origin != t.cp.origin {
		return fmt.Errorf("%w: %s offset %d: checkpoint of origin %q, this store's is %q", ErrCorrupt, path, en.Offset, s.Origin, t.cp.origin)
	}
	if size, _ := t.head(); s.Size > size {
		return fmt.Errorf("%w: %s offset %d: the latest signed checkpoint covers %d records, the store holds %d (records were removed)", ErrCorrupt, path, en.Offset, s.Size, size)
	}
	root, err := merkle.RootAt(t.source(), s.Size)
	if err != nil {
		return fmt.Errorf("%w: checking %s offset %d: %w", ErrCorrupt, path, en.Offset, err)
	}
	if root != s.Root {
		return fmt.Errorf("%w: %s offset %d: the latest signed checkpoint (size %d) does not match the data: %w", ErrCorrupt, path, en.Offset, s.Size,
			&merkle.RootMismatchError{Expected: s.Root, Calculated: root})
	}
	// Ed25519 is deterministic: our key reproduces its own signature.
	if again, err := checkpoint.Sign(s.Checkpoint, t.opts.Signer); err != nil || !bytes.Equal(again.Note, s.Note) {
		t.log.Warn("the latest checkpoint was signed by another key (was the signing key rotated?)", slog.Int64("offset", en.Offset))
	}
	t.cp.latest.Store(&s)
	return nil
}

// signNow signs and logs a checkpoint of the current tree if it grew since
// the last one, after proving the two consistent. It returns the latest
// checkpoint. A failure fails the engine: a store that cannot vouch for
// its records stops acknowledging new ones.
func (t *tree) signNow() (*checkpoint.Signed, error) {
	cp := &t.cp
	if t.opts.Signer == nil {
		return nil, ErrNoSigner
	}
	cp.lastTime = t.opts.Now()
	cp.since.Store(0)
	size, root := t.head()
	c := checkpoint.Checkpoint{Origin: cp.origin, Size: size, Root: root}
	prev := cp.latest.Load()
	if prev != nil && prev.Size == c.Size && prev.Root == c.Root {
		return prev, nil
	}
	var proof *merkle.ConsistencyProof
	if prev != nil {
		p, err := merkle.ProveConsistency(t.source(), prev.Size, c.Size)
		if err == nil {
			err = checkpoint.CheckConsistency(prev.Checkpoint, c, p)
		}
		if err != nil {
			return nil, t.fail(fmt.Errorf("%w: refusing to sign a checkpoint: %w", ErrCorrupt, err))
		}
		proof = p
	}
	s, err := checkpoint.Sign(c, t.opts.Signer)
	if err != nil {
		return nil, t.fail(err)
	}
	if err := cp.log.Append(s); err != nil {
		return nil, t.fail(err)
	}
	cp.latest.Store(&s)
	observeCheckpoint(t.opts, &s)      // metrics (observer.go)
	notifyCheckpoint(t.opts, s, proof) // witnesses (observe.go)
	return &s, nil
}

// stop signs the final checkpoint and stops the tree goroutine. Close calls
// it after the committer stopped, so nothing more is handed in.
func (t *tree) stop() {
	if !t.running {
		return
	}
	c := make(chan struct{})
	t.in <- treeMsg{stop: c}
	<-c
	<-t.done
	t.running = false
}

// latest returns the last signed checkpoint, if any.
func (t *tree) latest() (checkpoint.Signed, bool) {
	s := t.cp.latest.Load()
	if s == nil {
		return checkpoint.Signed{}, false
	}
	return *s, true
}

// sign asks the tree goroutine for a checkpoint of every record hashed so
// far. It returns ErrClosed when the goroutine stops first (a Close racing
// the request), never waiting for an answer that cannot come.
func (t *tree) sign(ctx context.Context) (checkpoint.Signed, error) {
	c := make(chan signResult, 1)
	select {
	case t.in <- treeMsg{sign: c}:
	case <-t.done:
		return checkpoint.Signed{}, ErrClosed
	case <-ctx.Done():
		return checkpoint.Signed{}, ctx.Err()
	}
	var r signResult
	select {
	case r = <-c:
	case <-t.done:
		// The request may have been queued behind the stop message and
		// never read; the goroutine answers nothing after it exits.
		select {
		case r = <-c:
		default:
			return checkpoint.Signed{}, ErrClosed
		}
	case <-ctx.Done():
		return checkpoint.Signed{}, ctx.Err()
	}
	if r.err != nil {
		return checkpoint.Signed{}, r.err
	}
	return *r.s, nil
}

func (c *cpState) close() {
	if c.log != nil {
		c.log.Close()
	}
}
