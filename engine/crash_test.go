package engine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/vellumlog/vellum"
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
	for round := 0; round < crashPoints(); round++ {
		if round%20 == 0 {
			// A fresh store now and then keeps each round cheap.
			disk, acked = vfs.NewMem(), map[uint64]string{}
		}
		o := testOpts(t)
		o.FS = disk
		o.SegmentSize = int64(1024 + rng.IntN(8<<10))
		o.BlockSize = 256 + rng.IntN(4<<10)
		o.VerifyOnOpen = true
		e, err := Open("/data", o)
		if err != nil {
			t.Fatalf("round %d: reopen after crash: %v", round, err)
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
