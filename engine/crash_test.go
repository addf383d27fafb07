package engine

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

// crashPoints is how many random crashes TestCrashSimulation survives.
// VELLUM_CRASH_POINTS raises it for a longer campaign.
func crashPoints() int {
	if n, err := strconv.Atoi(os.Getenv("VELLUM_CRASH_POINTS")); err == nil && n > 0 {
		return n
	}
	return 200
}

// TestCrashSimulation crashes the disk at random moments while several
// goroutines append, reopens what a power loss would have left (only synced
// bytes, plus a random share of unsynced blocks, or a torn prefix), and
// checks that every acknowledged record is there with its content and the
// whole chain verifies. Each crash image is the next round's disk (for 20
// rounds at a time), so recovery also runs on its own earlier output.
func TestCrashSimulation(t *testing.T) {
	seed := uint64(0x5eed)
	if s, err := strconv.ParseUint(os.Getenv("VELLUM_CRASH_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("seed %d (set VELLUM_CRASH_SEED to replay)", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	disk := vfs.NewMem()
	acked := map[uint64]string{} // every acknowledged seq and its record id, over all rounds
	next := 0
	zeroTails := 0 // rounds that reopened an active segment with a preallocated zero tail
	defer func() {
		t.Logf("%d of %d rounds recovered a preallocated active segment", zeroTails, crashPoints())
		if crashPoints() >= 100 && zeroTails == 0 {
			t.Error("no round recovered a preallocated segment: the simulation no longer covers them")
		}
	}()
	for round := 0; round < crashPoints(); round++ {
		if round%20 == 0 {
			// A fresh store now and then keeps each round cheap.
			disk, acked = vfs.NewMem(), map[uint64]string{}
		}
		o := testOpts(t)
		o.FS = disk
		o.NoPreallocate = rng.IntN(4) == 0 // most rounds cover preallocated files (the default)
		o.SegmentSize = int64(1024 + rng.IntN(8<<10))
		o.BlockSize = 256 + rng.IntN(4<<10)
		o.VerifyOnOpen = true
		e, err := Open("/data", o)
		if err != nil {
			t.Fatalf("round %d: reopen after crash: %v", round, err)
		}
		if e.Stats().Preallocated > 0 {
			zeroTails++
		}
		stored := map[uint64]string{}
		verifyChainFunc(t, e, key(t, 1), func(r vellum.Record) { stored[r.Seq] = r.Attributes["id"] })
		for seq, id := range acked {
			if stored[seq] != id {
				t.Fatalf("round %d: acknowledged seq %d holds %q, want %q", round, seq, stored[seq], id)
			}
		}

		// Append from a few goroutines; crash after a random number of
		// acknowledged calls.
		var mu sync.Mutex
		now := map[uint64]string{}
		calls := 0
		crashAfter := 1 + rng.IntN(40)
		crashed := make(chan *vfs.Mem, 1)
		var wg sync.WaitGroup
		workers := 1 + rng.IntN(4)
		crashRng := rand.New(rand.NewPCG(rng.Uint64(), 2))
		keepPrefix := rng.IntN(2) == 0
		for w := 0; w < workers; w++ {
			batch := 1 + rng.IntN(5)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					recs := make([]vellum.Record, batch)
					ids := make([]string, batch)
					mu.Lock()
					for i := range recs {
						ids[i] = fmt.Sprintf("r%d", next)
						recs[i] = rec(next)
						recs[i].Attributes["id"] = ids[i]
						next++
					}
					mu.Unlock()
					seqs, err := e.Append(ctx, recs...)
					if errors.Is(err, ErrClosed) {
						return
					}
					if err != nil {
						t.Errorf("append: %v", err)
						return
					}
					mu.Lock()
					for i, s := range seqs {
						now[s] = ids[i]
					}
					calls++
					if calls == crashAfter {
						// Everything acknowledged so far is in now; the
						// crash image is taken after, so it must hold it.
						for s, id := range now {
							acked[s] = id
						}
						if keepPrefix {
							crashed <- disk.CrashKeepPrefix(crashRng)
						} else {
							crashed <- disk.Crash(crashRng)
						}
					}
					done := calls >= crashAfter
					mu.Unlock()
					if done {
						return
					}
				}
			}()
		}
		disk = <-crashed
		wg.Wait()
		e.Close()
	}
}

// fillUntilPreallocated appends to e until its active segment was created
// from a preallocated file, and returns the records' ids by seq.
func fillUntilPreallocated(t *testing.T, e *Engine, next *int) map[uint64]string {
	t.Helper()
	acked := map[uint64]string{}
	deadline := time.Now().Add(20 * time.Second)
	for e.Stats().Preallocated == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no preallocated segment after %d records: %+v", len(acked), e.Stats())
		}
		for e.Stats().ActiveBytes > e.opts.SegmentSize/2 && !e.Stats().NextPreallocated && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond) // let the next file be ready before the rotation
		}
		appendIDs(t, e, next, 3, acked)
	}
	return acked
}

func appendIDs(t *testing.T, e *Engine, next *int, n int, acked map[uint64]string) {
	t.Helper()
	recs := make([]vellum.Record, n)
	ids := make([]string, n)
	for i := range recs {
		ids[i] = fmt.Sprintf("r%d", *next)
		recs[i] = rec(*next)
		recs[i].Attributes["id"] = ids[i]
		*next++
	}
	seqs, err := e.Append(ctx, recs...)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range seqs {
		acked[s] = ids[i]
	}
}

// TestCrashPreallocated crashes a store whose active segment was written
// into a preallocated file (FORMAT.md, "Preallocated files"), after every
// acknowledged call and with a batch held unsynced in the zero tail,
// keeping only synced bytes, random blocks, or a torn prefix, and checks
// each image: every acknowledged record is there, the chain verifies, a
// zero tail left after the data is kept as room (nothing cut, no .broken
// copy) and appends go on into it; no .prealloc file survives Open.
func TestCrashPreallocated(t *testing.T) {
	disk := vfs.NewMem()
	o := testOpts(t)
	o.FS = disk
	o.NoPreallocate = false // the default, stated: the test needs it
	o.SegmentSize = 16 << 10
	o.BlockSize = 1 << 10
	e, err := Open("/data", o)
	if err != nil {
		t.Fatal(err)
	}
	next := 0
	acked := fillUntilPreallocated(t, e, &next)
	type image struct {
		fs    *vfs.Mem
		acked map[uint64]string
		what  string
	}
	var images []image
	snap := func(what string) {
		images = append(images, image{disk.Crash(nil), maps.Clone(acked), what + "/synced"})
		for seed := range uint64(4) {
			rng := rand.New(rand.NewPCG(seed, 7))
			images = append(images, image{disk.Crash(rng), maps.Clone(acked), what + "/blocks"},
				image{disk.CrashKeepPrefix(rng), maps.Clone(acked), what + "/prefix"})
		}
	}
	snap("after rotation")
	for i := 0; i < 4; i++ {
		appendIDs(t, e, &next, 1+i, acked)
		snap(fmt.Sprintf("after call %d", i))
	}
	// A batch written into the zero tail and not yet synced.
	gate := holdSyncs(disk)
	done := make(chan struct{})
	go func() {
		defer close(done)
		held := map[uint64]string{}
		appendIDs(t, e, &next, 5, held)
	}()
	gate.waitHeld(t)
	snap("batch unsynced")
	gate.openAll()
	gate.release()
	<-done
	e.Close()

	for i, im := range images {
		t.Run(fmt.Sprintf("%d-%s", i, im.what), func(t *testing.T) {
			o := testOpts(t)
			o.FS = im.fs
			o.SegmentSize = 16 << 10
			o.BlockSize = 1 << 10
			o.VerifyOnOpen = true
			e, err := Open("/data", o)
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			defer e.Close()
			stored := map[uint64]string{}
			verifyChainFunc(t, e, key(t, 1), func(r vellum.Record) { stored[r.Seq] = r.Attributes["id"] })
			for seq, id := range im.acked {
				if stored[seq] != id {
					t.Fatalf("acknowledged seq %d holds %q, want %q", seq, stored[seq], id)
				}
			}
			names, _ := im.fs.ReadDir("/data/segments")
			broken := false
			for _, n := range names {
				if strings.HasSuffix(n, ".prealloc") {
					t.Errorf("%s survived Open", n)
				}
				broken = broken || strings.Contains(n, ".broken-")
			}
			if strings.HasSuffix(im.what, "/synced") {
				// Only synced bytes: the data ends at a commit frame and
				// the zeros after it are room, not a torn tail.
				if broken || e.Stats().Preallocated == 0 {
					t.Fatalf("a clean crash image was cut (broken copy %v) or lost its zero tail (%d bytes)", broken, e.Stats().Preallocated)
				}
			}
			more := maps.Clone(im.acked)
			n := next
			appendIDs(t, e, &n, 3, more)
			stored = map[uint64]string{}
			verifyChainFunc(t, e, key(t, 1), func(r vellum.Record) { stored[r.Seq] = r.Attributes["id"] })
			for seq, id := range more {
				if stored[seq] != id {
					t.Fatalf("after appending again: seq %d holds %q, want %q", seq, stored[seq], id)
				}
			}
		})
	}
}

// TestPreallocatedCorruption checks that a zero tail does not hide damage:
// a flipped byte in an acknowledged batch of a preallocated active segment
// followed by a later verifying batch stops Open as corruption, and zeroing
// the last acknowledged batch (making the zero tail start early) is caught
// by the signed checkpoint that covers it.
func TestPreallocatedCorruption(t *testing.T) {
	disk := vfs.NewMem()
	o := testOpts(t)
	o.FS = disk
	o.NoPreallocate = false // the default, stated: the test needs it
	o.SegmentSize = 16 << 10
	o.BlockSize = 1 << 10
	o.Signer, _ = testSigner(t)
	e, err := Open("/data", o)
	if err != nil {
		t.Fatal(err)
	}
	next := 0
	fillUntilPreallocated(t, e, &next)
	acked := map[uint64]string{}
	for i := 0; i < 3; i++ {
		appendIDs(t, e, &next, 2, acked)
	}
	if _, err := e.SignCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	seg, _ := e.SegmentOf(e.LastSeq())
	size := e.Stats().ActiveBytes
	e.Close()
	path := fmt.Sprintf("/data/segments/seg-%020d.vseg", seg)
	b, err := vfs.ReadFile(disk, path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		corrupt func(b []byte)
	}{
		{"byte flipped in the first batch", func(b []byte) { b[segment.HeaderSize+40] ^= 1 }},
		{"last batches zeroed", func(b []byte) { clear(b[size-200 : size]) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := disk.Crash(nil)
			c := bytes.Clone(b)
			tc.corrupt(c)
			fs.Remove(path)
			f, _ := fs.Create(path)
			f.Write(c)
			f.Sync()
			f.Close()
			fs.SyncDir("/data/segments")
			o2 := *o
			o2.FS = fs
			if _, err := Open("/data", &o2); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt", err)
			}
		})
	}
}
