package engine

import (
	"errors"
	"sync"
	"testing"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/vfs"
)

// recorder is an Observer that keeps what it was told.
type recorder struct {
	mu          sync.Mutex
	opens       []OpenStats
	commits     []CommitStats
	seals       []SealStats
	checkpoints []CheckpointStats
	failures    []error
}

var _ Observer = (*recorder)(nil)

func (r *recorder) Opened(s OpenStats) { r.mu.Lock(); r.opens = append(r.opens, s); r.mu.Unlock() }
func (r *recorder) Committed(s CommitStats) {
	r.mu.Lock()
	r.commits = append(r.commits, s)
	r.mu.Unlock()
}
func (r *recorder) Sealed(s SealStats) { r.mu.Lock(); r.seals = append(r.seals, s); r.mu.Unlock() }
func (r *recorder) CheckpointSigned(s CheckpointStats) {
	r.mu.Lock()
	r.checkpoints = append(r.checkpoints, s)
	r.mu.Unlock()
}
func (r *recorder) Failed(err error) {
	r.mu.Lock()
	r.failures = append(r.failures, err)
	r.mu.Unlock()
}

// TestObserver pins the engine's observer hooks (observer.go): every
// durable batch with its records, duplicates, bytes and outcomes; every
// seal; every signed checkpoint; Open's result, including a torn tail cut
// and a refused open; and the first failure only.
func TestObserver(t *testing.T) {
	mem := vfs.NewMem()
	ob := &recorder{}
	signer, _ := testSigner(t)
	o := testOpts(t)
	o.FS, o.Observer, o.Signer, o.SegmentSize = mem, ob, signer, 4<<10
	e := open(t, "/d", o)
	if len(ob.opens) != 1 || ob.opens[0].Err != nil || ob.opens[0].Segments != 1 || ob.opens[0].VerifiedSegments != 1 {
		t.Fatalf("open: %+v", ob.opens)
	}
	var want [8]int
	for i := 0; i < 60; i++ {
		r := rec(i)
		r.Outcome.Status = vellum.Statuses[i%len(vellum.Statuses)]
		want[i%len(vellum.Statuses)]++
		if _, err := e.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	dup := rec(1000)
	dup.EventID = "once"
	e.Append(ctx, dup, dup)
	want[0]++
	if _, err := e.SignCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	stats := e.Stats()
	e.Close()

	var got [8]int
	records, dups, bytes := 0, 0, 0
	for _, c := range ob.commits {
		records += c.Records
		dups += c.Duplicates
		bytes += c.Bytes
		for i, n := range c.Outcomes {
			got[i] += n
		}
		if c.Bytes > 0 && c.SyncDuration <= 0 {
			t.Errorf("a batch that wrote %d bytes reports no fsync time", c.Bytes)
		}
	}
	if records != 61 || dups != 1 || got != want {
		t.Fatalf("commits: %d records, %d duplicates, outcomes %v (want 61, 1, %v)", records, dups, got, want)
	}
	if bytes < 61*200 {
		t.Fatalf("commits wrote %d bytes", bytes)
	}
	if len(ob.seals) == 0 || stats.SealedSegments != len(ob.seals) || stats.ActiveSegments != 1 || stats.LastSeq != 61 {
		t.Fatalf("%d seals, stats %+v", len(ob.seals), stats)
	}
	if len(ob.checkpoints) == 0 || ob.checkpoints[len(ob.checkpoints)-1].Size != 61 || !stats.HasCheckpoint {
		t.Fatalf("checkpoints %+v, stats %+v", ob.checkpoints, stats)
	}
	if len(ob.failures) != 0 {
		t.Fatalf("failures %v", ob.failures)
	}

	// A torn tail is cut on reopen and counted.
	seg := layout.SegmentPath("/d", uint64(stats.SealedSegments+1))
	f, err := mem.OpenWrite(seg)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{2, 0, 0, 0, 9, 9, 9})
	f.Sync()
	f.Close()
	ob2 := &recorder{}
	o.Observer = ob2
	o.VerifyOnOpen = true
	e = open(t, "/d", o)
	if len(ob2.opens) != 1 || ob2.opens[0].TornTailsCut != 1 || ob2.opens[0].VerifiedSegments != stats.SealedSegments+1 || ob2.opens[0].LastSeq != 61 {
		t.Fatalf("reopen: %+v", ob2.opens)
	}
	// The first failure is reported once.
	mem.FailSync(1)
	if _, err := e.Append(ctx, rec(1)); !errors.Is(err, ErrFailed) {
		t.Fatalf("append with a failing fsync: %v", err)
	}
	e.Append(ctx, rec(2))
	if len(ob2.failures) != 1 || !errors.Is(ob2.failures[0], vfs.ErrInjected) {
		t.Fatalf("failures %v", ob2.failures)
	}
	if st := e.Stats(); st.Err == nil {
		t.Fatal("Stats does not show the failure")
	}
	e.Close()

	// A refused open is reported with its error.
	ob3 := &recorder{}
	o.Observer = ob3
	o.Keys = chain.NewKeyring(key(t, 9))
	if _, err := Open("/d", o); err == nil {
		t.Fatal("opened with the wrong key")
	}
	if len(ob3.opens) != 1 || ob3.opens[0].Err == nil {
		t.Fatalf("refused open: %+v", ob3.opens)
	}
}
