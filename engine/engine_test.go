package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

var ctx = context.Background()

func key(t testing.TB, seed byte) *chain.Key {
	t.Helper()
	k, err := chain.NewKey(bytes.Repeat([]byte{seed}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testOpts(t testing.TB) *Options {
	return &Options{Keys: chain.NewKeyring(key(t, 1)), Logger: discardLogger()}
}

func open(t testing.TB, dir string, o *Options) *Engine {
	t.Helper()
	e, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return e
}

// rec returns a distinct, valid record for index i.
func rec(i int) vellum.Record {
	return vellum.Record{
		TenantID:  fmt.Sprintf("tenant-%d", i%5),
		UserID:    fmt.Sprintf("user-%d", i%17),
		Action:    []string{"tool.call", "tool.result", "model.decision", "approval.granted"}[i%4],
		SessionID: fmt.Sprintf("s-%d", i/10),
		Tool:      vellum.Tool{Name: "web_search", Arguments: json.RawMessage(fmt.Sprintf(`{"query":"item %d"}`, i))},
		Outcome:   vellum.Outcome{Status: vellum.StatusSuccess},
		Attributes: map[string]string{
			"i":   fmt.Sprint(i),
			"pad": strings.Repeat("p", 200+i%50),
		},
	}
}

// verifyChain reads every record of the store and checks the MAC chain from
// genesis with an independent hasher.
func verifyChain(t *testing.T, e *Engine, k *chain.Key) int {
	t.Helper()
	return verifyChainFunc(t, e, k, nil)
}

// verifyChainFunc is verifyChain calling fn with every record.
func verifyChainFunc(t *testing.T, e *Engine, k *chain.Key, fn func(vellum.Record)) int {
	t.Helper()
	prev := chain.Genesis(e.StoreID(), k.ID())
	h := k.NewHasher()
	n := 0
	var last uint64
	var lastTime time.Time
	for r, err := range e.Scan(ctx, 1, 0) {
		if err != nil {
			t.Fatalf("scan after seq %d: %v", last, err)
		}
		if r.Seq != last+1 {
			t.Fatalf("seq %d follows %d", r.Seq, last)
		}
		if !r.Time.After(lastTime) {
			t.Fatalf("time of seq %d does not increase", r.Seq)
		}
		if r.PrevMAC != prev {
			t.Fatalf("seq %d: prev MAC does not link", r.Seq)
		}
		enc, _ := r.MarshalBinary()
		if _, err := h.Check(r.Seq, prev, enc, r.MAC); err != nil {
			t.Fatal(err)
		}
		prev, last, lastTime = r.MAC, r.Seq, r.Time
		n++
		if fn != nil {
			fn(r)
		}
	}
	if last != e.LastSeq() {
		t.Fatalf("scan ended at %d, LastSeq %d", last, e.LastSeq())
	}
	return n
}

func TestAppendGetRoundTripEveryField(t *testing.T) {
	e := open(t, t.TempDir(), testOpts(t))
	defer e.Close()
	in := vellum.Record{
		EventID: "e-1", EventTime: time.Date(2026, 11, 27, 10, 0, 0, 5, time.UTC),
		TenantID: "acme", UserID: "alice", Service: "svc", AuthMode: "gateway",
		Action: "tool.call",
		Tool: vellum.Tool{Name: "web_search", CallID: "call_1", Arguments: json.RawMessage(`{"query":"weather in Paris"}`),
			IsError: true, DurationNS: 1234},
		Model: vellum.Model{Name: "granite-3.3-8b", Provider: "vllm", FinishReason: "stop", InputTokens: 10, OutputTokens: 20},
		Agent: "support-bot", SessionID: "s-1", TraceID: "trace_0123456789abcdef", RequestID: "r-1",
		Outcome:    vellum.Outcome{Status: vellum.StatusDenied, Reason: "policy", RuleID: "rule-9", Approver: "bob", Mode: "enforce"},
		Attributes: map[string]string{"k": "v"},
		Redactions: []vellum.Redaction{{Rule: "EMAIL", Field: "tool.arguments.to", Count: 1}},
		// Store-assigned fields are ignored on input.
		Seq: 99, KeyID: "bogus", MAC: vellum.MAC{1},
	}
	before := time.Now()
	seqs, err := e.Append(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 1 || seqs[0] != 1 {
		t.Fatalf("seqs = %v", seqs)
	}
	got, err := e.Get(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Time.Before(before.Add(-time.Second)) || got.Time.Location() != time.UTC {
		t.Fatalf("receipt time %v", got.Time)
	}
	if got.KeyID != key(t, 1).ID().String() || got.MAC.IsZero() || got.PrevMAC != chain.Genesis(e.StoreID(), key(t, 1).ID()) {
		t.Fatalf("chain fields: key %s mac %s prev %s", got.KeyID, got.MAC, got.PrevMAC)
	}
	want := in
	want.Seq, want.Time, want.KeyID, want.MAC, want.PrevMAC = 1, got.Time, got.KeyID, got.MAC, got.PrevMAC
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
	if _, err := e.Get(ctx, 2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(2) = %v, want ErrNotFound", err)
	}
}

func TestReopenContinuityAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	o := testOpts(t)
	o.SegmentSize = 4 << 10
	o.BlockSize = 1 << 10
	o.NoCompression = true
	e := open(t, dir, o)
	n := 0
	for _, batch := range []int{1, 7, 50, 1, 1, 200, 3} {
		recs := make([]vellum.Record, batch)
		for i := range recs {
			recs[i] = rec(n)
			n++
		}
		seqs, err := e.Append(ctx, recs...)
		if err != nil {
			t.Fatal(err)
		}
		if seqs[0] != uint64(n-batch+1) || seqs[len(seqs)-1] != uint64(n) {
			t.Fatalf("seqs %d..%d for records %d..%d", seqs[0], seqs[len(seqs)-1], n-batch+1, n)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 3; round++ {
		e = open(t, dir, o)
		if e.LastSeq() != uint64(n) {
			t.Fatalf("reopened at %d, want %d", e.LastSeq(), n)
		}
		for i := 0; i < 40; i++ {
			if _, err := e.Append(ctx, rec(n)); err != nil {
				t.Fatal(err)
			}
			n++
		}
		if got := verifyChain(t, e, key(t, 1)); got != n {
			t.Fatalf("%d records, want %d", got, n)
		}
		for _, seq := range []uint64{1, 2, uint64(n / 2), uint64(n)} {
			r, err := e.Get(ctx, seq)
			if err != nil || r.Attributes["i"] != fmt.Sprint(seq-1) {
				t.Fatalf("Get(%d) = %v, %v", seq, r.Attributes["i"], err)
			}
		}
		e.Close()
	}
	nums, _ := layout.ListSegments(nil, dir)
	if len(nums) < 10 {
		t.Fatalf("only %d segments; the test wants many", len(nums))
	}
	// Sealed segments are read-only on disk.
	fi, _ := os.Stat(layout.SegmentPath(dir, nums[0]))
	if fi.Mode().Perm()&0o222 != 0 {
		t.Fatalf("sealed segment mode %o", fi.Mode().Perm())
	}
}

func TestConcurrentAppenders(t *testing.T) {
	o := testOpts(t)
	o.SegmentSize = 64 << 10
	e := open(t, t.TempDir(), o)
	defer e.Close()
	const workers, each = 16, 60
	var mu sync.Mutex
	seen := map[uint64]string{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r := rec(i)
				r.Attributes["who"] = fmt.Sprintf("%d/%d", w, i)
				seqs, err := e.Append(ctx, r)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[seqs[0]] = r.Attributes["who"]
				mu.Unlock()
			}
		}()
	}
	// Readers run alongside the writers.
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if last := e.LastSeq(); last > 0 {
				if _, err := e.Get(ctx, last); err != nil {
					t.Error(err)
				}
			}
		}
	}()
	wg.Wait()
	close(stop)
	if len(seen) != workers*each {
		t.Fatalf("%d distinct seqs for %d appends", len(seen), workers*each)
	}
	for seq := uint64(1); seq <= workers*each; seq++ {
		r, err := e.Get(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if r.Attributes["who"] != seen[seq] {
			t.Fatalf("seq %d holds %s, acknowledged for %s", seq, r.Attributes["who"], seen[seq])
		}
	}
	verifyChain(t, e, key(t, 1))
}

func TestBadInput(t *testing.T) {
	o := testOpts(t)
	o.MaxRecordSize = 1024
	dir := t.TempDir()
	e := open(t, dir, o)
	if _, err := e.Append(ctx, rec(1)); err != nil {
		t.Fatal(err)
	}
	big := rec(2)
	big.Attributes["big"] = strings.Repeat("x", 2000)
	if _, err := e.Append(ctx, rec(3), big); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "record 1") {
		t.Fatalf("err = %v, want ErrTooLarge naming record 1", err)
	}
	if _, err := e.Append(ctx, vellum.Record{Action: "x"}); !errors.Is(err, vellum.ErrInvalid) {
		t.Fatalf("err = %v, want vellum.ErrInvalid", err)
	}
	if e.LastSeq() != 1 {
		t.Fatalf("LastSeq = %d: a refused call wrote something", e.LastSeq())
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Append(ctx, rec(4)); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	e = open(t, dir, o)
	defer e.Close()
	if e.LastSeq() != 1 {
		t.Fatalf("reopened with %d records, want 1", e.LastSeq())
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	e := open(t, dir, testOpts(t))
	_, err := Open(dir, testOpts(t))
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second Open: %v, want ErrLocked naming the directory", err)
	}
	e.Close()
	e = open(t, dir, testOpts(t))
	e.Close()
}

func TestWrongKey(t *testing.T) {
	dir := t.TempDir()
	e := open(t, dir, testOpts(t))
	e.Append(ctx, rec(1))
	e.Close()
	o := testOpts(t)
	o.Keys = chain.NewKeyring(key(t, 2))
	_, err := Open(dir, o)
	if !errors.Is(err, ErrKeyMismatch) || !strings.Contains(err.Error(), "key mismatch") ||
		!strings.Contains(err.Error(), key(t, 1).ID().String()) {
		t.Fatalf("err = %v, want a key mismatch naming the store's key id", err)
	}
}

func TestKeyRotation(t *testing.T) {
	dir := t.TempDir()
	e := open(t, dir, testOpts(t))
	e.Append(ctx, rec(1), rec(2))
	e.Close()
	o := testOpts(t)
	o.Keys = chain.NewKeyring(key(t, 2), key(t, 1))
	ob := &recorder{}
	o.Observer = ob
	e = open(t, dir, o)
	defer e.Close()
	// The seal the rotation makes at open is reported like any other.
	if len(ob.seals) != 1 || ob.seals[0].Segment != 1 || ob.seals[0].Records != 2 {
		t.Fatalf("seals observed at open: %+v", ob.seals)
	}
	if _, err := e.Append(ctx, rec(3)); err != nil {
		t.Fatal(err)
	}
	r1, _ := e.Get(ctx, 1)
	r3, _ := e.Get(ctx, 3)
	if r1.KeyID != key(t, 1).ID().String() || r3.KeyID != key(t, 2).ID().String() {
		t.Fatalf("key ids %s, %s", r1.KeyID, r3.KeyID)
	}
	r2, _ := e.Get(ctx, 2)
	if r3.PrevMAC != r2.MAC {
		t.Fatal("the chain does not carry over the rotation")
	}
	enc, _ := r3.MarshalBinary()
	if _, err := key(t, 2).NewHasher().Check(3, r2.MAC, enc, r3.MAC); err != nil {
		t.Fatal(err)
	}
}

func TestDedupEventID(t *testing.T) {
	dir := t.TempDir()
	e := open(t, dir, testOpts(t))
	r := rec(1)
	r.EventID = "evt-1"
	a, _ := e.Append(ctx, r)
	b, _ := e.Append(ctx, r)
	other := r
	other.TenantID = "another"
	c, _ := e.Append(ctx, other)
	if a[0] != b[0] || c[0] == a[0] {
		t.Fatalf("seqs %v %v %v", a, b, c)
	}
	// Duplicates inside one call are stored once too.
	d, _ := e.Append(ctx, r, rec(5), r)
	if d[0] != a[0] || d[2] != a[0] {
		t.Fatalf("in-call duplicates: %v", d)
	}
	e.Close()
	e = open(t, dir, testOpts(t))
	defer e.Close()
	again, _ := e.Append(ctx, r)
	if again[0] != a[0] {
		t.Fatalf("after reopen the retry got seq %d, want %d", again[0], a[0])
	}
	if e.LastSeq() != 3 {
		t.Fatalf("LastSeq %d, want 3", e.LastSeq())
	}
}

// TestTornTailEveryOffset cuts the active segment at every byte of its last
// batch, which was never acknowledged in this simulation, and checks that
// Open keeps every earlier record, verifies the chain and appends on. The
// disk is in memory so that the few hundred opens cost no real fsyncs.
func TestTornTailEveryOffset(t *testing.T) {
	base := vfs.NewMem()
	o := testOpts(t)
	o.FS = base
	e := open(t, "/d", o)
	for i := 0; i < 5; i++ {
		e.Append(ctx, rec(i), rec(i+100))
	}
	e.Close()
	seg := layout.SegmentPath("/d", 1)
	acked, _ := vfs.ReadFile(base, seg)
	e = open(t, "/d", o)
	e.Append(ctx, rec(7), rec(8), rec(9))
	e.Close()
	full, _ := vfs.ReadFile(base, seg)
	store, _ := vfs.ReadFile(base, filepath.Join("/d", layout.StoreName))
	write := func(fs vfs.FS, name string, b []byte) {
		f, err := fs.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(b)
		f.Sync()
		f.Close()
	}
	for cut := len(acked) + 1; cut < len(full); cut++ {
		m := vfs.NewMem()
		m.MkdirAll(filepath.Join("/d", layout.SegmentsDir), 0o750)
		write(m, filepath.Join("/d", layout.StoreName), store)
		write(m, seg, full[:cut])
		m.SyncDir("/d")
		m.SyncDir(filepath.Join("/d", layout.SegmentsDir))
		e, err := Open("/d", withFS(o, m))
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		if e.LastSeq() != 10 {
			t.Fatalf("cut at %d: %d records survive, want 10", cut, e.LastSeq())
		}
		if _, err := e.Append(ctx, rec(11)); err != nil {
			t.Fatal(err)
		}
		verifyChain(t, e, key(t, 1))
		e.Close()
		names, _ := m.ReadDir(filepath.Join("/d", layout.SegmentsDir))
		broken := 0
		for _, n := range names {
			if strings.Contains(n, layout.BrokenMarker) {
				broken++
			}
		}
		if broken != 1 {
			t.Fatalf("cut at %d: %d .broken copies in %v", cut, broken, names)
		}
	}
}

func TestCorruptMiddleRecordFailsOpen(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sealed bool
	}{{"active segment", false}, {"sealed segment with VerifyOnOpen", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o := testOpts(t)
			o.NoCompression = true
			if tc.sealed {
				o.SegmentSize = 4 << 10
				o.VerifyOnOpen = true
			}
			e := open(t, dir, o)
			for i := 0; i < 60; i++ {
				e.Append(ctx, rec(i))
			}
			e.Close()
			path := layout.SegmentPath(dir, 1)
			b, _ := os.ReadFile(path)
			// Change a byte of a record's text in the middle of the
			// segment, then fix the block and commit CRCs the way a
			// careful forger would: only the MAC can catch it.
			i := bytes.Index(b[len(b)/2:], []byte("pppp")) + len(b)/2
			b[i] = 'q'
			b = refreshCRCs(t, b)
			os.Chmod(path, 0o640)
			os.WriteFile(path, b, 0o640)
			_, err := Open(dir, o)
			var me *chain.MismatchError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &me) || !strings.Contains(err.Error(), path) ||
				!strings.Contains(err.Error(), "offset") || !strings.Contains(err.Error(), fmt.Sprintf("seq %d", me.Seq)) {
				t.Fatalf("err = %v, want a MAC mismatch naming segment, offset and seq", err)
			}
			// Without forging the CRCs the damage is a CRC error with the
			// same precision, and the file is left untouched.
			b[i] = 'r'
			os.WriteFile(path, b, 0o640)
			_, err = Open(dir, o)
			var ce *segment.CorruptError
			if !errors.As(err, &ce) || ce.Path != path {
				t.Fatalf("err = %v, want a segment.CorruptError", err)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, b) {
				t.Fatal("Open changed a corrupt segment")
			}
		})
	}
}

// refreshCRCs recomputes every block, commit and footer CRC of an
// uncompressed segment image.
func refreshCRCs(t *testing.T, b []byte) []byte {
	t.Helper()
	return segment.RecomputeCRCs(b)
}

func TestFsyncErrorFailsClosed(t *testing.T) {
	m := vfs.NewMem()
	o := testOpts(t)
	o.FS = m
	e := open(t, "/data", o)
	if _, err := e.Append(ctx, rec(1)); err != nil {
		t.Fatal(err)
	}
	m.FailSync(1)
	_, err := e.Append(ctx, rec(2))
	if !errors.Is(err, ErrFailed) || !errors.Is(err, vfs.ErrInjected) {
		t.Fatalf("err = %v, want ErrFailed wrapping the fsync error", err)
	}
	if _, err := e.Append(ctx, rec(3)); !errors.Is(err, ErrFailed) {
		t.Fatalf("append after failure: %v, want ErrFailed", err)
	}
	if !errors.Is(e.Err(), ErrFailed) {
		t.Fatalf("Err() = %v", e.Err())
	}
	if _, err := e.Get(ctx, 1); err != nil {
		t.Fatalf("reads must go on: %v", err)
	}
	syncs := m.Syncs()
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if m.Syncs() != syncs {
		t.Fatal("Close retried an fsync after a failed one")
	}
	// What was acknowledged survives a crash right after.
	e = open(t, "/data", withFS(o, m.Crash(nil)))
	defer e.Close()
	if r, err := e.Get(ctx, 1); err != nil || r.Attributes["i"] != "1" {
		t.Fatalf("acknowledged record lost: %v", err)
	}
	if e.LastSeq() != 1 {
		t.Fatalf("LastSeq %d: an unacknowledged record survived without its sync", e.LastSeq())
	}
}

func TestWriteErrorAndDiskFull(t *testing.T) {
	for _, tc := range []struct {
		name string
		arm  func(m *vfs.Mem)
	}{
		{"write error", func(m *vfs.Mem) { m.FailWrite(1) }},
		{"short write", func(m *vfs.Mem) { m.FailShortWrite(1, 10) }},
		{"disk full", func(m *vfs.Mem) { m.SetCapacity(1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := vfs.NewMem()
			o := testOpts(t)
			o.FS = m
			e := open(t, "/data", o)
			e.Append(ctx, rec(1))
			tc.arm(m)
			if _, err := e.Append(ctx, rec(2)); !errors.Is(err, ErrFailed) {
				t.Fatalf("err = %v, want ErrFailed", err)
			}
			if _, err := e.Append(ctx, rec(3)); !errors.Is(err, ErrFailed) {
				t.Fatalf("err = %v", err)
			}
			e.Close()
			m.SetCapacity(-1)
			e = open(t, "/data", withFS(o, m.Crash(nil)))
			defer e.Close()
			if e.LastSeq() != 1 {
				t.Fatalf("LastSeq %d after reopen, want 1", e.LastSeq())
			}
			if _, err := e.Append(ctx, rec(4)); err != nil {
				t.Fatalf("append after reopen: %v", err)
			}
			verifyChain(t, e, key(t, 1))
		})
	}
}

func withFS(o *Options, fs vfs.FS) *Options {
	c := *o
	c.FS = fs
	return &c
}

// TestGroupCommitSharesFsyncs checks that concurrent callers share batches
// (and so fsyncs): 256 goroutines appending one record each must need far
// fewer batches than records. Every batch is one fdatasync.
func TestGroupCommitSharesFsyncs(t *testing.T) {
	var batches, records int
	o := testOpts(t)
	o.OnCommit = func(_ uint64, es []segment.Entry) { batches++; records += len(es) }
	e := open(t, t.TempDir(), o)
	var wg sync.WaitGroup
	for w := 0; w < 256; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 8; i++ {
				if _, err := e.Append(ctx, rec(w*8+i)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	e.Close() // OnCommit runs on the flush loop; Close waits for it
	if records != 256*8 {
		t.Fatalf("OnCommit saw %d records, want %d", records, 256*8)
	}
	if batches*4 > records {
		t.Fatalf("%d batches for %d records: callers are not sharing fsyncs", batches, records)
	}
	t.Logf("%d records in %d batches", records, batches)
}

// TestCloseCommitsHandedIn holds the flush loop inside an fsync, queues
// another append, and closes: both calls must succeed and be stored, and
// the engine must not report a failure.
func TestCloseCommitsHandedIn(t *testing.T) {
	m := vfs.NewMem()
	o := testOpts(t)
	o.FS = m
	e := open(t, "/data", o)
	gate := holdSyncs(m)
	errs := make(chan error, 2)
	go func() { _, err := e.Append(ctx, rec(1)); errs <- err }()
	gate.waitHeld(t) // the flush loop is inside the fsync of record 1
	go func() { _, err := e.Append(ctx, rec(2)); errs <- err }()
	waitFilling(t, e, 1)
	closed := make(chan error, 1)
	go func() { closed <- e.Close() }()
	time.Sleep(20 * time.Millisecond) // Close is now waiting for the flush loop
	gate.openAll()
	gate.release()
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("an append handed in before Close failed: %v", err)
		}
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := e.Err(); errors.Is(err, ErrFailed) {
		t.Fatalf("Close marked the engine failed: %v", err)
	}
	e = open(t, "/data", withFS(o, m.Crash(nil)))
	defer e.Close()
	if e.LastSeq() != 2 {
		t.Fatalf("LastSeq = %d after reopen, want 2", e.LastSeq())
	}
}

// TestUnfinishedSealIsTorn simulates a power cut during a seal: the footer
// never became durable (zeros) but the trailer at the end of the file did,
// and the next segment was never created. Open must treat it as a torn
// tail, keep every record, and continue the segment (review B2).
func TestUnfinishedSealIsTorn(t *testing.T) {
	dir := t.TempDir()
	o := testOpts(t)
	o.SegmentSize = 4 << 10
	e := open(t, dir, o)
	for i := 0; i < 20; i++ {
		e.Append(ctx, rec(i))
	}
	e.Close()
	p1 := layout.SegmentPath(dir, 1)
	b, _ := os.ReadFile(p1)
	r, err := segment.Open(vfs.Default, p1, nil)
	if err != nil || r.Footer() == nil {
		t.Fatalf("segment 1 is not sealed: %v", err)
	}
	footerAt, records := r.Footer().Offset, r.Footer().Count
	r.Close()
	for i := int(footerAt); i < len(b)-segment.TrailerSize; i++ {
		b[i] = 0
	}
	nums, _ := layout.ListSegments(nil, dir)
	for _, n := range nums[1:] {
		os.Remove(layout.SegmentPath(dir, n))
	}
	os.Chmod(p1, 0o640)
	os.WriteFile(p1, b, 0o640)
	e, err = Open(dir, o)
	if err != nil {
		t.Fatalf("Open after an unfinished seal: %v", err)
	}
	defer e.Close()
	if e.LastSeq() != records {
		t.Fatalf("LastSeq %d, want the %d records of segment 1", e.LastSeq(), records)
	}
	if _, err := e.Append(ctx, rec(99)); err != nil {
		t.Fatal(err)
	}
	verifyChain(t, e, key(t, 1))
}

// TestTornTailBehindCheckpointIsCorruption damages the last batch of a store
// whose latest signed checkpoint covers it: that batch was acknowledged, so
// Open must report corruption and change nothing (review B4).
func TestTornTailBehindCheckpointIsCorruption(t *testing.T) {
	dir := t.TempDir()
	o := testOpts(t)
	o.NoCompression = true
	o.Signer, _ = testSigner(t)
	e := open(t, dir, o)
	for i := 0; i < 5; i++ {
		e.Append(ctx, rec(i))
	}
	e.Close() // signs a final checkpoint over all 5
	p := layout.SegmentPath(dir, 1)
	b, _ := os.ReadFile(p)
	i := bytes.LastIndex(b, []byte("pppp"))
	b[i] = 'q'
	os.WriteFile(p, b, 0o640)
	_, err := Open(dir, o)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "signed checkpoint") {
		t.Fatalf("err = %v, want corruption naming the checkpoint", err)
	}
	after, _ := os.ReadFile(p)
	if !bytes.Equal(after, b) {
		t.Fatal("Open changed the segment")
	}
	if m, _ := filepath.Glob(p + layout.BrokenMarker + "*"); len(m) != 0 {
		t.Fatalf("Open kept %v as if it cut a torn tail", m)
	}
}

// TestLargeRecordsReadableWithDefaults writes a record above the default
// 1 MiB limit under a larger MaxRecordSize: readers with default options
// (verify, inspect) must still read the segment (review B5).
func TestLargeRecordsReadableWithDefaults(t *testing.T) {
	dir := t.TempDir()
	o := testOpts(t)
	o.MaxRecordSize = 4 << 20
	e := open(t, dir, o)
	r := rec(1)
	r.Attributes["big"] = strings.Repeat("0123456789abcdef", 2<<20/16)
	if _, err := e.Append(ctx, r); err != nil {
		t.Fatal(err)
	}
	e.Close()
	n := 0
	if _, err := segment.Scan(vfs.Default, layout.SegmentPath(dir, 1), nil, func(segment.Entry) error { n++; return nil }); err != nil || n != 1 {
		t.Fatalf("default reader: %d records, %v", n, err)
	}
}

// TestDedupKeysDoNotCollide: tenant "acme" with event "x\x00y" and tenant
// "acme\x00x" with event "y" are different events (review B6).
func TestDedupKeysDoNotCollide(t *testing.T) {
	e := open(t, t.TempDir(), testOpts(t))
	defer e.Close()
	a, b := rec(1), rec(2)
	a.TenantID, a.EventID = "acme", "x\x00y"
	b.TenantID, b.EventID = "acme\x00x", "y"
	sa, _ := e.Append(ctx, a)
	sb, err := e.Append(ctx, b)
	if err != nil || sa[0] == sb[0] {
		t.Fatalf("seqs %v %v (%v): distinct events were taken for one", sa, sb, err)
	}
}

// TestSegmentSizeAtHeaderRefused: a SegmentSize that the segment header
// alone fills is refused at Open, naming the option, instead of making
// every append wait for a seal that never makes room.
func TestSegmentSizeAtHeaderRefused(t *testing.T) {
	for _, size := range []int64{1, segment.HeaderSize} {
		o := testOpts(t)
		o.SegmentSize = size
		e, err := Open(t.TempDir(), o)
		if err == nil {
			e.Close()
			t.Fatalf("SegmentSize %d: Open succeeded", size)
		}
		if !strings.Contains(err.Error(), "SegmentSize") {
			t.Fatalf("SegmentSize %d: %v, want an error naming SegmentSize", size, err)
		}
	}
}

// openFDs counts this process's open file descriptors (Linux).
func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(es)
}

// TestOpenSegmentsBounded fills a store on the real file system with
// hundreds of segments and reads every record of every one, twice and
// through a reopen, with MaxOpenSegments 8: the descriptors the process
// holds stay within the bound (plus the active writer, the lock and the
// preallocator's file), instead of one per segment.
func TestOpenSegmentsBounded(t *testing.T) {
	dir := t.TempDir()
	const maxOpen = 8
	o := testOpts(t)
	o.SegmentSize, o.NoCompression = 2<<10, true
	o.MaxOpenSegments = maxOpen
	o.CheckpointInterval = -1
	base := openFDs(t)
	e := open(t, dir, o)
	for i := 0; i < 300; i++ {
		if _, err := e.Append(ctx, rec(2*i), rec(2*i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.Stats().SealedSegments; n < 50 {
		t.Fatalf("only %d sealed segments; the test needs many", n)
	}
	const slack = 4 // lock, active segment's writer, a preallocated file, a transient scan
	readAll := func(e *Engine) {
		t.Helper()
		n := 0
		for _, err := range e.Scan(ctx, 0, 0) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 600 {
			t.Fatalf("scanned %d records, want 600", n)
		}
		for _, seq := range []uint64{1, 300, 17, 599, 2} {
			if _, err := e.Get(ctx, seq); err != nil {
				t.Fatal(err)
			}
		}
		if got := e.files.open(); got > maxOpen {
			t.Fatalf("%d segment readers open, bound %d", got, maxOpen)
		}
		if got := openFDs(t) - base; got > maxOpen+slack {
			t.Fatalf("%d descriptors open beyond the baseline, bound %d", got, maxOpen+slack)
		}
	}
	readAll(e)
	readAll(e)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if got := openFDs(t) - base; got > 0 {
		t.Fatalf("%d descriptors left open after Close", got)
	}
	e = open(t, dir, o) // recovery opens every segment once
	readAll(e)
	e.Close()
}
