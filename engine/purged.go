package engine

import (
	"fmt"
	"log/slog"

	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/merkle"
)

// The parts' side of a purge (retention.go) and of a purge a crash
// interrupted (recovery).

// Pruned returns the compact range of the purged leaves, so proofs of the
// records that remain need nothing of the purged ones (merkle.Pruned).
func (s treeSource) Pruned() *merkle.Range { return s.t.pruned.Load() }

// prune sets the purged prefix of the tree before readers stop seeing the
// segments gone, and forgets their parsed footer sections.
func (t *tree) prune(prefix *merkle.Range, gone []*segInfo) {
	t.pruned.Store(prefix)
	t.mu.Lock()
	for _, si := range gone {
		delete(t.secs, si.num)
	}
	t.mu.Unlock()
}

// dropSealed removes the first n sealed segments, which end at seq last,
// from the snapshot and their spans from the time index, in one step.
func (ix *indexer) dropSealed(n int, last uint64) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	old := ix.snap.Load()
	s := &snapshot{sealed: old.sealed[n:], active: old.active, first: last + 1, last: old.last}
	ix.idx.RemoveThrough(last)
	ix.snap.Store(s)
}

// finishPurge applies the retention manifest m when the store opens: the
// segments it names that a crash left behind are deleted (the purge was
// decided and anchored), and the rest must start right after them.
func (r *recovery) finishPurge(nums []uint64, m *layout.Purged) ([]uint64, error) {
	i := 0
	for ; i < len(nums) && nums[i] <= m.Through; i++ {
		path := layout.SegmentPath(r.dir, nums[i])
		if err := r.fs.Remove(path); err != nil {
			return nil, fmt.Errorf("engine: finish the purge of %s: %w", path, err)
		}
		r.log.Warn("finished an interrupted purge", slog.String("segment", path))
	}
	if i > 0 {
		if err := r.fs.SyncDir(layout.SegmentsPath(r.dir)); err != nil {
			return nil, fmt.Errorf("engine: finish a purge: %w", err)
		}
	}
	nums = nums[i:]
	if len(nums) == 0 || nums[0] != m.Through+1 {
		return nil, fmt.Errorf("%w: segment %d is missing: retention purged segments 1 to %d (%s), so the store must continue there; a segment removed outside a purge is tampering",
			ErrCorrupt, m.Through+1, m.Through, layout.PurgedName)
	}
	prefix, err := merkle.RangeFrom(0, m.LastSeq, hashes(m.Range))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, layout.PurgedName, err)
	}
	r.pruned = prefix
	return nums, nil
}

func hashes(hs []layout.Hash) []merkle.Hash {
	out := make([]merkle.Hash, len(hs))
	for i, h := range hs {
		out[i] = merkle.Hash(h)
	}
	return out
}
