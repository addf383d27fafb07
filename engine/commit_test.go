package engine

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

// syncGate holds every fsync of a segment file until the test lets it go,
// so the test decides exactly what arrives while an fsync runs.
type syncGate struct {
	held chan string
	next chan struct{}
	mu   sync.Mutex
	open bool
}

func holdSyncs(m *vfs.Mem) *syncGate {
	g := &syncGate{held: make(chan string, 64), next: make(chan struct{})}
	m.SetSyncHook(func(name string) {
		g.mu.Lock()
		open := g.open
		g.mu.Unlock()
		if open || !strings.HasSuffix(name, ".vseg") {
			return
		}
		g.held <- name
		<-g.next
	})
	return g
}

// waitHeld waits until an fsync is being held.
func (g *syncGate) waitHeld(t *testing.T) {
	t.Helper()
	select {
	case <-g.held:
	case <-time.After(10 * time.Second):
		t.Fatal("no fsync began")
	}
}

// release lets the held fsync finish.
func (g *syncGate) release() { g.next <- struct{}{} }

// openAll lets every later fsync through.
func (g *syncGate) openAll() {
	g.mu.Lock()
	g.open = true
	g.mu.Unlock()
}

// waitCommitter polls the committer's queue until cond holds.
func waitCommitter(t *testing.T, e *Engine, what string, cond func(c *committer) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.commit.mu.Lock()
		ok := cond(e.commit)
		e.commit.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitFilling waits until n calls are in the batch being filled.
func waitFilling(t *testing.T, e *Engine, n int) {
	t.Helper()
	waitCommitter(t, e, fmt.Sprintf("%d calls are in the filling batch", n), func(c *committer) bool { return c.filling.callers >= n })
}

// TestGroupCommitPolicy pins the group-commit policy on the in-memory file
// system, with every segment fsync held open until the test releases it:
// for each arrival pattern, how many fsyncs the committer issues and how
// many records each makes durable. The policy: whatever arrived while the
// previous batch was being written and synced is the next batch, bounded
// by MaxBatchBytes; a call's records are never split; nothing waits for
// more records to come; and no write reaches the file while an fsync runs
// (at most one batch is unsynced).
func TestGroupCommitPolicy(t *testing.T) {
	one := rec(0) // every record the same size, without an event id
	size := one.EncodedSize()
	for _, tc := range []struct {
		name     string
		maxBatch int
		// rounds[0] is the call that finds the committer idle;
		// rounds[i] lists the calls (records per call) that arrive while
		// the i-th fsync is held.
		rounds [][]int
		want   []int // records per fsync, in order
	}{
		{
			name:   "a lone caller is written at once",
			rounds: [][]int{{1}},
			want:   []int{1},
		},
		{
			name:   "ten callers arriving during an fsync share the next",
			rounds: [][]int{{1}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
			want:   []int{1, 10},
		},
		{
			name:   "big calls are never split",
			rounds: [][]int{{1}, {100, 100, 100}, {7}},
			want:   []int{1, 300, 7},
		},
		{
			name:     "MaxBatchBytes bounds a batch; the rest wait for the next",
			maxBatch: 2 * size,
			rounds:   [][]int{{1}, {1, 1, 1, 1, 1}},
			want:     []int{1, 2, 2, 1},
		},
		{
			name:     "a call larger than MaxBatchBytes goes alone",
			maxBatch: 2 * size,
			rounds:   [][]int{{1}, {5, 1}},
			want:     []int{1, 5, 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := vfs.NewMem()
			o := testOpts(t)
			o.FS = m
			o.MaxBatchBytes = tc.maxBatch
			var mu sync.Mutex
			var got []int
			o.OnCommit = func(_ uint64, es []segment.Entry) {
				mu.Lock()
				got = append(got, len(es))
				mu.Unlock()
			}
			e := open(t, "/data", o)
			defer e.Close()
			gate := holdSyncs(m)
			defer gate.openAll()

			var wg sync.WaitGroup
			var outstanding atomic.Int64 // calls started and not returned
			// settled: every outstanding call is queued (in the batch
			// being synced, in the filling batch, or waiting for room in
			// it), so what the next fsync carries is decided.
			settled := func(c *committer) bool {
				n := c.filling.callers + c.waiting
				if c.syncing != nil {
					n += c.syncing.callers
				}
				return int64(n) == outstanding.Load()
			}
			for i, calls := range tc.rounds {
				writes := m.Writes()
				for _, n := range calls {
					wg.Add(1)
					outstanding.Add(1)
					go func() {
						defer wg.Done()
						defer outstanding.Add(-1)
						recs := slices.Repeat([]vellum.Record{one}, n)
						if seqs, err := e.Append(ctx, recs...); err != nil || len(seqs) != n {
							t.Errorf("append of %d records: %v", n, err)
						}
					}()
					// Calls arrive in the order listed.
					waitCommitter(t, e, "the call is queued", settled)
				}
				if i > 0 {
					if m.Writes() != writes {
						t.Fatal("a batch was written while the previous one's fsync was held")
					}
					gate.release()
				}
				gate.waitHeld(t)
			}
			// Release the rest one at a time, each once the queue has
			// settled: every fsync still to come is decided by what is
			// queued now.
			total := 0
			for _, calls := range tc.rounds {
				for _, n := range calls {
					total += n
				}
			}
			durable := func() (batches, records int) {
				mu.Lock()
				defer mu.Unlock()
				for _, n := range got {
					records += n
				}
				return len(got), records
			}
			fsyncs := len(tc.rounds)
			for {
				waitCommitter(t, e, "the queue settles", settled)
				gate.release()
				waitCommitter(t, e, "the released batch is durable", func(*committer) bool { b, _ := durable(); return b == fsyncs })
				if _, n := durable(); n == total {
					break
				}
				gate.waitHeld(t)
				fsyncs++
			}
			wg.Wait()
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(got, tc.want) {
				t.Fatalf("records per fsync = %v, want %v", got, tc.want)
			}
			if fsyncs != len(tc.want) {
				t.Fatalf("%d fsyncs, want %d", fsyncs, len(tc.want))
			}
		})
	}
}

// TestSerialCallsDoNotWait: one caller appending again and again gets an
// fsync per call; the committer never holds a record back waiting for
// others.
func TestSerialCallsDoNotWait(t *testing.T) {
	m := vfs.NewMem()
	o := testOpts(t)
	o.FS = m
	var batches []int
	o.OnCommit = func(_ uint64, es []segment.Entry) { batches = append(batches, len(es)) }
	e := open(t, "/data", o)
	syncs := 0
	m.SetSyncHook(func(name string) {
		if strings.HasSuffix(name, ".vseg") {
			syncs++
		}
	})
	for i := 0; i < 20; i++ {
		if _, err := e.Append(ctx, rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	e.Close()
	if syncs != 20 || !slices.Equal(batches, slices.Repeat([]int{1}, 20)) {
		t.Fatalf("%d fsyncs, batches %v; want 20 of one record", syncs, batches)
	}
}

// TestGroupCommitRejoin pins the one wait in the policy (committer.rejoin):
// the callers of a batch just released, appending again at once, join the
// next batch with those who arrived during its fsync, instead of forming a
// cohort of their own. The clock makes every fsync look an hour long, so
// only the callers' return ends the wait.
func TestGroupCommitRejoin(t *testing.T) {
	m := vfs.NewMem()
	o := testOpts(t)
	o.FS = m
	var hours atomic.Int64
	base := time.Now()
	o.Now = func() time.Time { return base.Add(time.Duration(hours.Add(1)) * time.Hour) }
	var mu sync.Mutex
	var got []int
	o.OnCommit = func(_ uint64, es []segment.Entry) {
		mu.Lock()
		got = append(got, len(es))
		mu.Unlock()
	}
	e := open(t, "/data", o)
	defer e.Close()
	gate := holdSyncs(m)
	defer gate.openAll()
	var wg sync.WaitGroup
	call := func(times int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range times {
				if _, err := e.Append(ctx, rec(0)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	queued := func(n int) {
		waitCommitter(t, e, fmt.Sprintf("%d calls are queued", n), func(c *committer) bool { return c.filling.callers+c.waiting == n })
	}
	call(1) // A, alone: fsync 1
	gate.waitHeld(t)
	for range 4 { // B1..B4 arrive during fsync 1, and append twice
		call(2)
	}
	queued(4)
	gate.release()
	gate.waitHeld(t) // fsync 2: the Bs' first records
	call(1)          // C1 and C2 arrive during fsync 2
	call(1)
	queued(2)
	gate.release()
	gate.waitHeld(t) // fsync 3: the Cs and the Bs' second records, together
	gate.openAll()
	gate.release()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if want := []int{1, 4, 6}; !slices.Equal(got, want) {
		t.Fatalf("records per fsync = %v, want %v", got, want)
	}
}

// TestGroupCommitRejoinAfterFastSync pins what bounds the rejoin wait:
// the disk's usual fsync time (pace.usual), not the last fsync
// alone. The clock makes the first fsync look hours long and the second a
// few nanoseconds, as a batch of a few records syncs much faster than a
// full one. The callers released by the fast fsync still rejoin the next
// batch: a bound that followed the last fsync would have run out at once
// and split them off (PERFORMANCE.md, "a dribble of tiny, fast fsyncs").
func TestGroupCommitRejoinAfterFastSync(t *testing.T) {
	m := vfs.NewMem()
	o := testOpts(t)
	o.FS = m
	var now, step atomic.Int64
	step.Store(int64(time.Hour))
	base := time.Now()
	o.Now = func() time.Time { return base.Add(time.Duration(now.Add(step.Load()))) }
	var mu sync.Mutex
	var got []int
	o.OnCommit = func(_ uint64, es []segment.Entry) {
		mu.Lock()
		got = append(got, len(es))
		mu.Unlock()
	}
	e := open(t, "/data", o)
	defer e.Close()
	gate := holdSyncs(m)
	defer gate.openAll()
	var wg sync.WaitGroup
	call := func(times int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range times {
				if _, err := e.Append(ctx, rec(0)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	queued := func(n int) {
		waitCommitter(t, e, fmt.Sprintf("%d calls are queued", n), func(c *committer) bool { return c.filling.callers+c.waiting == n })
	}
	call(1) // A, alone: fsync 1, hours long
	gate.waitHeld(t)
	for range 4 { // B1..B4 arrive during fsync 1, and append twice
		call(2)
	}
	queued(4)
	step.Store(1) // from here on every fsync looks a few nanoseconds long
	gate.release()
	gate.waitHeld(t) // fsync 2: the Bs' first records
	call(1)          // C1 and C2 arrive during fsync 2
	call(1)
	queued(2)
	gate.release()
	gate.waitHeld(t) // fsync 3: the Cs and the Bs' second records, together
	gate.openAll()
	gate.release()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if want := []int{1, 4, 6}; !slices.Equal(got, want) {
		t.Fatalf("records per fsync = %v, want %v", got, want)
	}
}

// TestOnCommitEntries: the entries OnCommit sees are the stored records,
// exactly: contiguous seqs across batches and segments, each record's
// receipt time, encoding and MAC as read back, and each prev MAC the MAC
// before it. Retries of a recent event id (deduplicated) add no entry.
func TestOnCommitEntries(t *testing.T) {
	var got []segment.Entry
	o := testOpts(t)
	o.SegmentSize = 8 << 10 // several segments
	o.OnCommit = func(_ uint64, es []segment.Entry) {
		for _, en := range es {
			en.Record = slices.Clone(en.Record)
			got = append(got, en)
		}
	}
	e := open(t, t.TempDir(), o)
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				r := rec(w*10 + i)
				r.EventID = fmt.Sprintf("evt-%d", w*10+i)
				if _, err := e.Append(ctx, r, r); err != nil { // the second is a retry of the first
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if len(got) != 160 {
		t.Fatalf("OnCommit saw %d entries, want 160", len(got))
	}
	var prev vellum.MAC
	for i, en := range got {
		if en.Seq != uint64(i+1) {
			t.Fatalf("entry %d has seq %d", i, en.Seq)
		}
		r, err := e.Get(ctx, en.Seq)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := r.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		if en.Time != r.Time.UnixNano() || !slices.Equal(en.Record, enc) || en.MAC != r.MAC || en.PrevMAC != r.PrevMAC {
			t.Fatalf("entry of seq %d differs from the stored record", en.Seq)
		}
		if i > 0 && en.PrevMAC != prev {
			t.Fatalf("entry of seq %d: prev MAC is not the MAC of seq %d", en.Seq, en.Seq-1)
		}
		prev = en.MAC
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
}
