package engine

import (
	"math/rand/v2"
	"testing"

	"github.com/vellumlog/vellum"
)

// TestSerialAppendsHashAndIndexInline: a serial caller's small batch, with
// nothing queued for the tree and postings goroutines, is hashed into the
// log-wide tree and added to the active segment's postings before Append
// returns (tree.hand, indexer.handPostings), rather than handed to those
// goroutines, whose wake-ups cost a serial caller more than the work.
// Without that, the tree and the postings lag the acknowledged records
// until the goroutines run.
func TestSerialAppendsHashAndIndexInline(t *testing.T) {
	e := open(t, t.TempDir(), testOpts(t))
	defer e.Close()
	postings := func() int {
		e.index.postMu.RLock()
		defer e.index.postMu.RUnlock()
		return e.index.post.Len()
	}
	for i := range 3 * treeInline {
		n := 1 + i%treeInline
		recs := make([]vellum.Record, n)
		for j := range recs {
			recs[j] = rec(i*100 + j)
		}
		seqs, err := e.Append(ctx, recs...)
		if err != nil {
			t.Fatal(err)
		}
		last := seqs[len(seqs)-1]
		if size, _ := e.TreeHead(); size != last {
			t.Fatalf("append %d (%d records): the tree holds %d records once it returned, want %d", i, n, size, last)
		}
		if got := postings(); uint64(got) != last {
			t.Fatalf("append %d (%d records): the postings hold %d records once it returned, want %d", i, n, got, last)
		}
	}
}

// TestInlineHashingKeepsCheckpoints: batches of every size, some hashed by
// the committer and some by the tree goroutine, build the same tree as the
// records (in seq order), and checkpoints still come every
// CheckpointRecords records: the batch that reaches the count goes to the
// tree goroutine, which signs.
func TestInlineHashingKeepsCheckpoints(t *testing.T) {
	dir := t.TempDir()
	signer, verifier := testSigner(t)
	o := testOpts(t)
	o.Signer, o.CheckpointRecords, o.SegmentSize = signer, 25, 64<<10
	e := open(t, dir, o)
	rng := rand.New(rand.NewPCG(14, 14))
	n := 0
	for n < 1500 {
		recs := make([]vellum.Record, 1+rng.IntN(2*treeInline))
		for j := range recs {
			recs[j] = rec(n + j)
		}
		if _, err := e.Append(ctx, recs...); err != nil {
			t.Fatal(err)
		}
		n += len(recs)
	}
	leaves := leavesOf(t, e)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	cps := readCheckpoints(t, dir, verifier)
	if len(cps) < n/(2*25) {
		t.Fatalf("%d checkpoints for %d records; want about one per 25", len(cps), n)
	}
	for i, c := range cps {
		if c.Root != rootOf(leaves[:c.Size]) {
			t.Fatalf("checkpoint %d (size %d) root differs from the records'", i, c.Size)
		}
	}
	if last := cps[len(cps)-1]; last.Size != uint64(n) {
		t.Fatalf("final checkpoint covers %d records, want %d", last.Size, n)
	}
	// Reopened, the tree rebuilt from the records continues the same one.
	e = open(t, dir, o)
	defer e.Close()
	if size, root := e.TreeHead(); size != uint64(n) || root != rootOf(leaves) {
		t.Fatalf("reopened tree: %d records root %s, want %d %s", size, root, n, rootOf(leaves))
	}
}

// TestSerialAppendAllocations: a serial one-record Append allocates three
// times (the Prepared with its encoding, the batch with its slices, the
// readers' snapshot with its active view): the batch's done channel is
// made only for a caller that waits on another's write, and the segment
// writer reuses its Flushed and block lists (issue 14). More means one of
// them came back; AllocsPerRun averages the rare ones (a span closing, a
// postings list growing).
func TestSerialAppendAllocations(t *testing.T) {
	e := open(t, t.TempDir(), testOpts(t))
	defer e.Close()
	recs := make([]vellum.Record, 64)
	for i := range recs {
		recs[i] = rec(i)
		recs[i].Attributes["pad"] = "p" // within oneRecordBytes encoded: the Prepared's one allocation
	}
	i := 0
	appendOne := func() {
		if _, err := e.Append(ctx, recs[i%len(recs):][:1]...); err != nil {
			t.Fatal(err)
		}
		i++
	}
	for range 4096 { // the postings' lists and the index grow to size first
		appendOne()
	}
	got := testing.AllocsPerRun(200, appendOne)
	if got > 3.5 {
		t.Fatalf("a serial one-record Append allocates %.2f times, want at most 3", got)
	}
}
