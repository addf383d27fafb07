package engine

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/merkle"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

func testSigner(t testing.TB) (note.Signer, note.Verifier) {
	t.Helper()
	priv, pub, err := checkpoint.GenerateKey("vellum-test")
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

// leavesOf reads every record's leaf hash independently of the engine's
// tree: from the records' encodings and MACs.
func leavesOf(t *testing.T, e *Engine) []merkle.Hash {
	t.Helper()
	var out []merkle.Hash
	for r, err := range e.Scan(ctx, 1, 0) {
		if err != nil {
			t.Fatal(err)
		}
		enc, _ := r.MarshalBinary()
		out = append(out, merkle.LeafHash(enc, r.MAC))
	}
	return out
}

func rootOf(leaves []merkle.Hash) merkle.Hash {
	r := merkle.NewRange(0)
	for _, l := range leaves {
		r.Append(l, nil)
	}
	return r.Root()
}

func readCheckpoints(t *testing.T, dir string, v note.Verifier) []checkpoint.Signed {
	t.Helper()
	res, err := checkpoint.ReadLog(nil, filepath.Join(dir, checkpoint.LogName))
	if err != nil {
		t.Fatal(err)
	}
	var out []checkpoint.Signed
	for _, en := range res.Entries {
		s, err := checkpoint.Open(en.Note, v)
		if err != nil {
			t.Fatalf("checkpoint at offset %d: %v", en.Offset, err)
		}
		out = append(out, s)
	}
	return out
}

// TestMerkleTreeAndCheckpoints appends across several segments and checks
// every sealed segment's root, every checkpoint's root against an
// independent computation, consistency between consecutive checkpoints,
// inclusion proofs for every record, and that a reopened store continues
// the same tree.
func TestMerkleTreeAndCheckpoints(t *testing.T) {
	dir := t.TempDir()
	signer, verifier := testSigner(t)
	o := testOpts(t)
	o.Signer, o.SegmentSize, o.CheckpointRecords = signer, 64<<10, 150
	o.BlockSize, o.NoCompression = 8<<10, true
	e := open(t, dir, o)
	const n = 1200
	for i := 0; i < n; i += 200 {
		batch := make([]vellum.Record, 200)
		for j := range batch {
			batch[j] = rec(i + j)
		}
		if _, err := e.Append(ctx, batch...); err != nil {
			t.Fatal(err)
		}
	}
	leaves := leavesOf(t, e)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	cps := readCheckpoints(t, dir, verifier)
	if len(cps) < 5 {
		t.Fatalf("%d checkpoints; want one per seal and per 150 records", len(cps))
	}
	if last := cps[len(cps)-1]; last.Size != n || last.Root != rootOf(leaves) {
		t.Fatalf("final checkpoint size %d root %s, want %d %s", last.Size, last.Root, n, rootOf(leaves))
	}
	for i, c := range cps {
		if c.Root != rootOf(leaves[:c.Size]) {
			t.Fatalf("checkpoint %d (size %d) root differs from the records'", i, c.Size)
		}
		if i > 0 && c.Size <= cps[i-1].Size {
			t.Fatalf("checkpoint %d does not grow: %d after %d", i, c.Size, cps[i-1].Size)
		}
	}
	// Every sealed segment carries its own root and a section.
	nums, _ := layout.ListSegments(nil, dir)
	sealed := 0
	for _, num := range nums {
		r, err := segment.Open(vfs.Default, layout.SegmentPath(dir, num), nil)
		if err != nil {
			t.Fatal(err)
		}
		ft := r.Footer()
		r.Close()
		if ft == nil {
			continue
		}
		sealed++
		if !ft.HasRoot || merkle.Hash(ft.MerkleRoot) != rootOf(leaves[ft.FirstSeq-1:ft.LastSeq]) {
			t.Fatalf("segment %d: Merkle root missing or wrong", num)
		}
		sec, err := merkle.ParseSection(ft.Sections[merkle.SectionType])
		if err != nil || sec.Size != ft.LastSeq {
			t.Fatalf("segment %d section: %v", num, err)
		}
	}
	if sealed < 3 {
		t.Fatalf("only %d sealed segments; the test wants several", sealed)
	}

	e = open(t, dir, o)
	defer e.Close()
	if size, root := e.TreeHead(); size != n || root != rootOf(leaves) {
		t.Fatalf("reopened tree head %d %s", size, root)
	}
	latest, ok := e.LatestCheckpoint()
	if !ok || latest.Size != n {
		t.Fatalf("latest checkpoint after reopen: %v %d", ok, latest.Size)
	}
	for seq := uint64(1); seq <= n; seq += 7 {
		p, err := e.InclusionProof(ctx, seq, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := merkle.VerifyInclusion(p, leaves[seq-1], latest.Root); err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
	}
	for i := 1; i < len(cps); i++ {
		p, err := e.ConsistencyProof(ctx, cps[i-1].Size, cps[i].Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkpoint.CheckConsistency(cps[i-1].Checkpoint, cps[i].Checkpoint, p); err != nil {
			t.Fatal(err)
		}
	}
	// Appending after reopen extends the same tree.
	if _, err := e.Append(ctx, rec(n)); err != nil {
		t.Fatal(err)
	}
	s, err := e.SignCheckpoint(ctx)
	if err != nil || s.Size != n+1 {
		t.Fatalf("SignCheckpoint: %v size %d", err, s.Size)
	}
	all := leavesOf(t, e)
	if s.Root != rootOf(all) {
		t.Fatal("checkpoint after reopen does not cover the old tree plus the new record")
	}
	if _, err := e.InclusionProof(ctx, n+2, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("proof beyond the checkpoint: %v", err)
	}
}

// TestCheckpointPeriodic signs by time when the log grows and not when it
// does not.
func TestCheckpointPeriodic(t *testing.T) {
	dir := t.TempDir()
	signer, verifier := testSigner(t)
	o := testOpts(t)
	o.Signer, o.CheckpointRecords, o.CheckpointInterval = signer, -1, 20*time.Millisecond
	e := open(t, dir, o)
	if _, err := e.Append(ctx, rec(1)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if s, ok := e.LatestCheckpoint(); ok && s.Size == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint by time")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	e.Close()
	// A tick before the append may sign the size-0 checkpoint that can
	// start a log (FORMAT.md); after the record, exactly one more.
	cps := readCheckpoints(t, dir, verifier)
	if len(cps) > 0 && cps[0].Size == 0 {
		cps = cps[1:]
	}
	if len(cps) != 1 || cps[0].Size != 1 {
		t.Fatalf("%d checkpoints after one record; an idle log must not sign again", len(cps))
	}
}

// TestOpenRefusesDataBehindCheckpoint: a store whose data was cut back
// behind its latest signed checkpoint (here: an older copy of the active
// segment) does not open.
func TestOpenRefusesDataBehindCheckpoint(t *testing.T) {
	dir := t.TempDir()
	signer, _ := testSigner(t)
	o := testOpts(t)
	o.Signer = signer
	e := open(t, dir, o)
	if _, err := e.Append(ctx, rec(1), rec(2)); err != nil {
		t.Fatal(err)
	}
	path := e.commit.seg.path
	e.Close()
	old, _ := os.ReadFile(path)
	e = open(t, dir, o)
	if _, err := e.Append(ctx, rec(3)); err != nil {
		t.Fatal(err)
	}
	e.Close()
	os.Chmod(path, 0o644)
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, o)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v, want ErrCorrupt (checkpoint covers 3 records, data 2)", err)
	}
}

// TestNeverSignsInconsistent: a previous checkpoint the data does not
// extend stops the engine instead of being followed by a contradicting
// signature, and a signed checkpoint log whose latest root differs from
// the data stops Open.
func TestNeverSignsInconsistent(t *testing.T) {
	dir := t.TempDir()
	signer, verifier := testSigner(t)
	o := testOpts(t)
	o.Signer = signer
	e := open(t, dir, o)
	if _, err := e.Append(ctx, rec(1), rec(2), rec(3)); err != nil {
		t.Fatal(err)
	}
	good, err := e.SignCheckpoint(ctx)
	if err != nil || good.Size != 3 {
		t.Fatalf("SignCheckpoint: %v", err)
	}
	// Pretend the last signed checkpoint said something else about the
	// first 3 records.
	forged := good
	forged.Root = merkle.LeafData([]byte("another history"))
	e.tree.cp.latest.Store(&forged)
	if _, err := e.Append(ctx, rec(4)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.SignCheckpoint(ctx); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("signed after an inconsistent checkpoint: %v", err)
	}
	if !errors.Is(e.Err(), ErrFailed) {
		t.Fatalf("engine not failed: %v", e.Err())
	}
	e.Close()
	for _, c := range readCheckpoints(t, dir, verifier) {
		if c.Size == 4 {
			t.Fatal("a checkpoint of size 4 was signed after the inconsistent one")
		}
	}

	// A checkpoint log whose latest entry has another root for the same
	// size: Open refuses.
	dir2 := t.TempDir()
	e = open(t, dir2, o)
	e.Append(ctx, rec(1), rec(2))
	e.Close()
	bad, _ := checkpoint.Sign(checkpoint.Checkpoint{Origin: e.Origin(), Size: 2, Root: forged.Root}, signer)
	l, _, err := checkpoint.OpenLog(nil, filepath.Join(dir2, checkpoint.LogName))
	if err != nil {
		t.Fatal(err)
	}
	l.Append(bad)
	l.Close()
	var rm *merkle.RootMismatchError
	if _, err := Open(dir2, o); !errors.Is(err, ErrCorrupt) || !errors.As(err, &rm) {
		t.Fatalf("Open with a contradicting checkpoint: %v", err)
	}
}

// TestCrashKeepsCheckpointsConsistent crashes the disk at random moments
// while records are appended and checkpoints signed, and reopens what a
// power loss would leave: the checkpoint log (its torn tail cut) must
// never claim records the data lost, and the reopened store must go on
// signing checkpoints consistent with the old ones.
func TestCrashKeepsCheckpointsConsistent(t *testing.T) {
	rng := rand.New(rand.NewPCG(0xc4ec, 1))
	signer, _ := testSigner(t)
	disk := vfs.NewMem()
	for round := 0; round < 40; round++ {
		if round%10 == 0 {
			disk = vfs.NewMem()
		}
		o := testOpts(t)
		o.FS, o.Signer = disk, signer
		o.SegmentSize = int64(2048 + rng.IntN(8<<10))
		o.CheckpointRecords = 1 + rng.IntN(8)
		e, err := Open("/data", o)
		if err != nil {
			t.Fatalf("round %d: reopen after crash: %v", round, err)
		}
		before, _ := e.LatestCheckpoint()
		n := 1 + rng.IntN(12)
		var img *vfs.Mem
		crashAt := rng.IntN(n)
		for i := 0; i < n; i++ {
			batch := make([]vellum.Record, 1+rng.IntN(6))
			for j := range batch {
				batch[j] = rec(round*100 + i*10 + j)
			}
			if _, err := e.Append(ctx, batch...); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if i == crashAt {
				img = disk.Crash(rand.New(rand.NewPCG(rng.Uint64(), 2)))
			}
		}
		after, err := e.SignCheckpoint(ctx)
		if err != nil {
			t.Fatalf("round %d: sign: %v", round, err)
		}
		if before.Size > 0 {
			p, err := e.ConsistencyProof(ctx, before.Size, after.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkpoint.CheckConsistency(before.Checkpoint, after.Checkpoint, p); err != nil {
				t.Fatalf("round %d: checkpoint after reopen does not extend the one before: %v", round, err)
			}
		}
		e.Close()
		disk = img
	}
}

// TestSignCheckpointRacesClose: a checkpoint request that races Close
// returns (a checkpoint, or ErrClosed) instead of waiting forever for a
// tree goroutine that stopped. A request queued after the goroutine read
// its stop message was never answered before.
func TestSignCheckpointRacesClose(t *testing.T) {
	signer, _ := testSigner(t)
	o := testOpts(t)
	o.Signer = signer
	within := func(what string, f func() error) error {
		t.Helper()
		errc := make(chan error, 1)
		go func() { errc <- f() }()
		select {
		case err := <-errc:
			return err
		case <-time.After(10 * time.Second):
			t.Fatalf("%s hangs", what)
			return nil
		}
	}
	for round := 0; round < 20; round++ {
		e := open(t, t.TempDir(), o)
		if _, err := e.Append(ctx, rec(round)); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := within("SignCheckpoint racing Close", func() error { _, err := e.SignCheckpoint(ctx); return err })
				if err != nil && !errors.Is(err, ErrClosed) {
					t.Errorf("SignCheckpoint racing Close: %v", err)
				}
			}()
		}
		e.Close()
		wg.Wait()
		// After Close the queue has room and the goroutine is gone: every
		// request must see that.
		for i := 0; i < 10; i++ {
			if err := within("a request after Close", func() error { _, err := e.tree.sign(ctx); return err }); !errors.Is(err, ErrClosed) {
				t.Fatalf("request after Close: %v, want ErrClosed", err)
			}
		}
		if s, err := e.SignCheckpoint(ctx); err != nil || s.Size != 1 {
			t.Fatalf("SignCheckpoint after Close = size %d, %v; want the final checkpoint", s.Size, err)
		}
	}
}
