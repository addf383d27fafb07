package engine

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tdproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/merkle"
	"github.com/vellumlog/vellum/vfs"
)

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// retentionOpts makes every record its own segment (SegmentSize just over the header: a
// record arriving for a non-empty segment seals it first), with a fake
// clock and a day's retention.
func retentionOpts(t *testing.T, clk *fakeClock) *Options {
	o := testOpts(t)
	o.Now = clk.Now
	o.SegmentSize = 200
	o.Retention = Retention{MaxAge: 24 * time.Hour}
	return o
}

func appendAt(t *testing.T, e *Engine, clk *fakeClock, at time.Time, tenant string) uint64 {
	t.Helper()
	clk.Set(at)
	r := rec(0)
	r.TenantID = tenant
	seqs, err := e.Append(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	return seqs[0]
}

func purge(t *testing.T, e *Engine) *PurgeResult {
	t.Helper()
	res, err := e.Retention().Purge(ctx, PurgeOptions{By: "test"})
	if err != nil {
		t.Fatalf("Purge: %v", err)
	}
	return res
}

func TestPurgeExactExpiry(t *testing.T) {
	clk := &fakeClock{t: t0}
	dir := t.TempDir()
	e := open(t, dir, retentionOpts(t, clk))
	defer e.Close()
	appendAt(t, e, clk, t0, "acme")                  // segment 1, seq 1
	appendAt(t, e, clk, t0.Add(time.Hour), "acme")   // segment 2, seq 2
	appendAt(t, e, clk, t0.Add(2*time.Hour), "acme") // segment 3 (active), seq 3

	clk.Set(t0.Add(24 * time.Hour)) // segment 1's record is exactly a day old: kept
	dry, err := e.Retention().Purge(ctx, PurgeOptions{DryRun: true})
	if err != nil || len(dry.Segments) != 0 || dry.Kept == nil || dry.Kept.Segment != 1 || !dry.Kept.ExpiresAt.Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("at the period: %+v %+v, %v", dry, dry.Kept, err)
	}
	if res := purge(t, e); len(res.Segments) != 0 || e.FirstSeq() != 1 {
		t.Fatalf("purged at the period: %+v", res)
	}

	clk.Set(t0.Add(24*time.Hour + time.Nanosecond)) // a moment after
	dry, _ = e.Retention().Purge(ctx, PurgeOptions{DryRun: true})
	if len(dry.Segments) != 1 || dry.Segments[0].Segment != 1 || dry.Segments[0].FirstSeq != 1 || dry.Segments[0].LastSeq != 1 ||
		!dry.Segments[0].LastTime.Equal(t0) || !strings.Contains(dry.Segments[0].Rule, "max_age 24h0m0s") || dry.Kept.Segment != 2 {
		t.Fatalf("dry run: %+v kept %+v", dry.Segments, dry.Kept)
	}
	if _, err := os.Stat(layout.SegmentPath(dir, 1)); err != nil {
		t.Fatal("dry run removed the segment")
	}
	res := purge(t, e)
	if len(res.Segments) != 1 || res.AnchorSeq != 4 || e.FirstSeq() != 2 {
		t.Fatalf("purge: %+v first %d", res, e.FirstSeq())
	}
	if _, err := os.Stat(layout.SegmentPath(dir, 1)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("segment 1 still there: %v", err)
	}
	a, err := e.Get(ctx, res.AnchorSeq)
	if err != nil || a.Action != ActionPurge || a.Attributes["retention.segments"] != "1-1" || a.Attributes["retention.last_seq"] != "1" ||
		!strings.HasPrefix(a.Attributes["retention.last_macs"], "1:") || !strings.HasPrefix(a.Attributes["retention.merkle_roots"], "1:") {
		t.Fatalf("anchor %+v, %v", a, err)
	}
	if _, err := e.Get(ctx, 1); err == nil {
		t.Fatal("purged record still readable")
	}
	m := e.Retention().Purged()
	if m == nil || m.Through != 1 || m.LastSeq != 1 || m.Purges[0].AnchorSeq != 4 {
		t.Fatalf("manifest %+v", m)
	}
	// The store reopens after the purge, and the chain goes on.
	e.Close()
	e = open(t, dir, retentionOpts(t, clk))
	if e.FirstSeq() != 2 || e.LastSeq() != 4 {
		t.Fatalf("reopened: seq %d..%d", e.FirstSeq(), e.LastSeq())
	}
	appendAt(t, e, clk, t0.Add(25*time.Hour), "acme")
}

func TestPurgeNeverActiveSegment(t *testing.T) {
	clk := &fakeClock{t: t0}
	o := retentionOpts(t, clk)
	o.SegmentSize = 0 // default: one segment
	e := open(t, t.TempDir(), o)
	defer e.Close()
	appendAt(t, e, clk, t0, "acme")
	clk.Set(t0.Add(1000 * time.Hour))
	res := purge(t, e)
	if len(res.Segments) != 0 || res.Kept == nil || !strings.Contains(res.Kept.Reason, "active segment") {
		t.Fatalf("%+v %+v", res, res.Kept)
	}
}

func TestPurgeHoldKeepsAndReleaseLets(t *testing.T) {
	clk := &fakeClock{t: t0}
	dir := t.TempDir()
	e := open(t, dir, retentionOpts(t, clk))
	appendAt(t, e, clk, t0, "acme")                // segment 1
	appendAt(t, e, clk, t0.Add(time.Hour), "beta") // segment 2
	clk.Set(t0.Add(time.Minute))
	h, err := e.Retention().SetHold(ctx, layout.Hold{TenantID: "acme", Reason: "litigation 2026-17"}, "counsel") // segment 3 holds its record
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Retention().SetHold(ctx, layout.Hold{Reason: ""}, "x"); !errors.Is(err, vellum.ErrInvalid) {
		t.Fatalf("hold without reason: %v", err)
	}
	clk.Set(t0.Add(30 * 24 * time.Hour))
	res := purge(t, e)
	if len(res.Segments) != 0 || res.Kept == nil || res.Kept.Segment != 1 || len(res.Kept.Holds) != 1 || res.Kept.Holds[0] != h.ID {
		t.Fatalf("held: %+v %+v", res, res.Kept)
	}
	// The hold survives a restart.
	e.Close()
	e = open(t, dir, retentionOpts(t, clk))
	defer e.Close()
	if hs := e.Retention().Holds(); len(hs) != 1 || hs[0].ID != h.ID || hs[0].SetBy != "counsel" || hs[0].Reason != "litigation 2026-17" {
		t.Fatalf("holds after restart: %+v", hs)
	}
	if res := purge(t, e); len(res.Segments) != 0 {
		t.Fatalf("held after restart: %+v", res)
	}
	if _, err := e.Retention().ReleaseHold(ctx, h.ID, "counsel"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Retention().ReleaseHold(ctx, h.ID, "counsel"); !errors.Is(err, ErrNoHold) {
		t.Fatalf("second release: %v", err)
	}
	res = purge(t, e)
	if len(res.Segments) < 3 || res.Segments[0].Segment != 1 {
		t.Fatalf("after release: %+v", res.Segments)
	}
	// Setting and releasing are records.
	set, _ := e.Get(ctx, h.Seq)
	if set.Action != ActionHoldSet && e.FirstSeq() <= h.Seq {
		t.Fatalf("hold record %+v", set)
	}
	var actions []string
	for r, err := range e.Scan(ctx, e.FirstSeq(), 0) {
		if err != nil {
			t.Fatal(err)
		}
		actions = append(actions, r.Action)
	}
	if !strings.Contains(strings.Join(actions, " "), ActionHoldRelease) {
		t.Fatalf("no release record in %v", actions)
	}
}

func TestPurgeHoldByTimeRange(t *testing.T) {
	clk := &fakeClock{t: t0}
	e := open(t, t.TempDir(), retentionOpts(t, clk))
	defer e.Close()
	appendAt(t, e, clk, t0, "acme")                   // segment 1
	appendAt(t, e, clk, t0.Add(2*time.Hour), "acme")  // segment 2
	appendAt(t, e, clk, t0.Add(4*time.Hour), "acme")  // segment 3
	appendAt(t, e, clk, t0.Add(48*time.Hour), "acme") // segment 4 (active)
	if _, err := e.Retention().SetHold(ctx, layout.Hold{Since: t0.Add(time.Hour), Until: t0.Add(3 * time.Hour), Reason: "incident"}, "sec"); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(40 * 24 * time.Hour))
	res := purge(t, e)
	if len(res.Segments) != 1 || res.Segments[0].Segment != 1 || res.Kept.Segment != 2 || len(res.Kept.Holds) != 1 {
		t.Fatalf("%+v kept %+v", res.Segments, res.Kept)
	}
}

func TestPurgePerTenantOnMixedSegments(t *testing.T) {
	clk := &fakeClock{t: t0}
	o := retentionOpts(t, clk)
	o.Retention.Tenants = map[string]time.Duration{"hipaa": 72 * time.Hour}
	e := open(t, t.TempDir(), o)
	defer e.Close()
	appendAt(t, e, clk, t0, "short") // segment 1: short only
	clk.Set(t0.Add(time.Hour))
	r1, r2 := rec(1), rec(2)
	r1.TenantID, r2.TenantID = "short", "hipaa"
	if _, err := e.Append(ctx, r1, r2); err != nil { // segment 2: short and hipaa, one batch
		t.Fatal(err)
	}
	appendAt(t, e, clk, t0.Add(2*time.Hour), "short") // segment 3: short only
	appendAt(t, e, clk, t0.Add(3*time.Hour), "short") // segment 4: active
	clk.Set(t0.Add(25*time.Hour + time.Second))
	res := purge(t, e)
	if len(res.Segments) != 1 || res.Segments[0].Segment != 1 || res.Kept.Segment != 2 || !strings.Contains(res.Kept.Reason, "audit.retention.tenants.hipaa") {
		t.Fatalf("%+v kept %+v", res.Segments, res.Kept)
	}
	// The hipaa record (t0+1h and a nanosecond) passes 72h then, not a
	// moment before.
	hip := t0.Add(time.Hour + time.Nanosecond).Add(72 * time.Hour)
	clk.Set(hip)
	if res := purge(t, e); len(res.Segments) != 0 {
		t.Fatalf("hipaa purged at its period: %+v", res.Segments)
	}
	clk.Set(hip.Add(time.Nanosecond))
	res = purge(t, e)
	if len(res.Segments) < 2 || res.Segments[0].Segment != 2 || len(res.Segments[0].Tenants) != 1 || res.Segments[0].Tenants[0] != "hipaa" ||
		!strings.Contains(res.Segments[0].Rule, "tenants.hipaa") {
		t.Fatalf("%+v", res.Segments)
	}
}

func TestRetentionPolicyChecked(t *testing.T) {
	for _, r := range []Retention{
		{MaxAge: -1},
		{Tenants: map[string]time.Duration{"a": time.Hour}},
		{MaxAge: 2 * time.Hour, Tenants: map[string]time.Duration{"a": time.Hour}},
		{MaxAge: time.Hour, PurgeEvery: -1},
	} {
		o := testOpts(t)
		o.Retention = r
		if _, err := Open(t.TempDir(), o); err == nil {
			t.Fatalf("%+v accepted", r)
		}
	}
}

// TestPurgeKeepsProofs: after purges, inclusion proofs of the records that
// remain verify with transparency-dev/merkle against checkpoints signed
// before and after the purge, consistency proofs from checkpoints after
// the purged prefix verify, and all of it survives a reopen.
func TestPurgeKeepsProofs(t *testing.T) {
	clk := &fakeClock{t: t0}
	signer, verifier := testSigner(t)
	o := retentionOpts(t, clk)
	o.SegmentSize = 4 << 10
	o.Signer = signer
	dir := t.TempDir()
	e := open(t, dir, o)
	for i := range 300 {
		clk.Set(t0.Add(time.Duration(i) * time.Minute))
		if _, err := e.Append(ctx, rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	before, err := e.SignCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(24*time.Hour + 150*time.Minute))
	res := purge(t, e)
	if len(res.Segments) < 2 {
		t.Fatalf("purged %d segments", len(res.Segments))
	}
	after, _ := e.SignCheckpoint(ctx)
	check := func(e *Engine) {
		t.Helper()
		first := e.FirstSeq()
		if first <= 1 {
			t.Fatalf("first seq %d", first)
		}
		for _, cp := range []uint64{before.Size, after.Size} {
			root := before.Root
			if cp == after.Size {
				root = after.Root
			}
			for seq := first; seq <= cp; seq += 7 {
				p, err := e.InclusionProof(ctx, seq, cp)
				if err != nil {
					t.Fatalf("proof of %d in %d: %v", seq, cp, err)
				}
				r, _ := e.Get(ctx, seq)
				enc, _ := r.MarshalBinary()
				var h merkle.Hasher
				leaf := h.Leaf(enc, r.MAC)
				hs := make([][]byte, len(p.Hashes))
				for i := range p.Hashes {
					hs[i] = p.Hashes[i][:]
				}
				if err := tdproof.VerifyInclusion(rfc6962.DefaultHasher, seq-1, cp, leaf[:], hs, root[:]); err != nil {
					t.Fatalf("seq %d in checkpoint %d: %v", seq, cp, err)
				}
			}
		}
		cons, err := e.ConsistencyProof(ctx, before.Size, after.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := merkle.VerifyConsistency(cons, before.Root, after.Root); err != nil {
			t.Fatal(err)
		}
	}
	check(e)
	e.Close()
	e = open(t, dir, o)
	defer e.Close()
	check(e)
	cps := readCheckpoints(t, dir, verifier)
	if last := cps[len(cps)-1]; last.Size < res.AnchorSeq {
		t.Fatalf("no checkpoint covers the anchor: %d < %d", last.Size, res.AnchorSeq)
	}
}

// TestPurgeEverySealedSegment: a purge of every sealed segment leaves the
// active one, and the tree restores from the manifest alone.
func TestPurgeEverySealedSegment(t *testing.T) {
	clk := &fakeClock{t: t0}
	o := retentionOpts(t, clk)
	o.Signer, _ = testSigner(t)
	dir := t.TempDir()
	e := open(t, dir, o)
	for i := range 5 {
		appendAt(t, e, clk, t0.Add(time.Duration(i)*time.Minute), "a")
	}
	clk.Set(t0.Add(48 * time.Hour))
	purge(t, e) // 1..4 go; 5 sealed by the anchor and kept (not expired? it is) ...
	purge(t, e)
	size, root := e.TreeHead()
	e.Close()
	e = open(t, dir, o)
	defer e.Close()
	if s2, r2 := e.TreeHead(); s2 != size || r2 != root {
		t.Fatalf("tree after reopen %d %s, want %d %s", s2, r2, size, root)
	}
	if _, err := e.Append(ctx, rec(1)); err != nil {
		t.Fatal(err)
	}
}

// TestSegmentRemovedByHand: a segment deleted outside a purge stops Open,
// with or without earlier purges.
func TestSegmentRemovedByHand(t *testing.T) {
	clk := &fakeClock{t: t0}
	dir := t.TempDir()
	e := open(t, dir, retentionOpts(t, clk))
	for i := range 6 {
		appendAt(t, e, clk, t0.Add(time.Duration(i)*time.Hour), "a")
	}
	e.Close()
	os.Remove(layout.SegmentPath(dir, 1))
	if _, err := Open(dir, retentionOpts(t, clk)); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "segment 1 is missing") {
		t.Fatalf("segment 1 removed by hand: %v", err)
	}

	dir = t.TempDir()
	e = open(t, dir, retentionOpts(t, clk))
	for i := range 6 {
		appendAt(t, e, clk, t0.Add(time.Duration(i)*time.Hour), "a")
	}
	clk.Set(t0.Add(25*time.Hour + time.Nanosecond))
	if res := purge(t, e); len(res.Segments) != 2 {
		t.Fatalf("%+v", res.Segments)
	}
	e.Close()
	os.Remove(layout.SegmentPath(dir, 3))
	if _, err := Open(dir, retentionOpts(t, clk)); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "segment 3 is missing") {
		t.Fatalf("segment 3 removed by hand after a purge: %v", err)
	}
}

// TestPurgeCrashAtEveryStep fails every fsync of a purge in turn (and
// crashes the disk there), and checks that what a reopen finds is either
// the segments present or the purge completed with its anchor — never a
// gap without one.
func TestPurgeCrashAtEveryStep(t *testing.T) {
	signer, _ := testSigner(t)
	build := func() (*vfs.Mem, *fakeClock) {
		clk := &fakeClock{t: t0}
		disk := vfs.NewMem()
		o := retentionOpts(t, clk)
		o.FS, o.Signer = disk, signer
		e := open(t, "/data", o)
		for i := range 5 {
			appendAt(t, e, clk, t0.Add(time.Duration(i)*time.Hour), "a")
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		return disk, clk
	}
	// Count a purge's syncs.
	disk, clk := build()
	o := retentionOpts(t, clk)
	o.FS, o.Signer = disk, signer
	e := open(t, "/data", o)
	clk.Set(t0.Add(26*time.Hour + time.Nanosecond))
	before := disk.Syncs()
	if res := purge(t, e); len(res.Segments) != 3 {
		t.Fatalf("%+v", res.Segments)
	}
	n := disk.Syncs() - before
	e.Close()
	t.Logf("a purge makes %d fsyncs; failing each in turn", n)
	rng := rand.New(rand.NewPCG(9, 9))
	for k := 1; k <= n+1; k++ {
		disk, clk := build()
		o := retentionOpts(t, clk)
		o.FS, o.Signer = disk, signer
		e := open(t, "/data", o)
		clk.Set(t0.Add(26*time.Hour + time.Nanosecond))
		disk.FailSync(k)
		_, perr := e.Retention().Purge(ctx, PurgeOptions{By: "test"})
		crashed := disk.Crash(rng)
		e.Close()
		o2 := retentionOpts(t, clk)
		o2.FS, o2.Signer = crashed, signer
		e2, err := Open("/data", o2)
		if err != nil {
			t.Fatalf("fsync %d of %d failed (%v): reopen: %v", k, n, perr, err)
		}
		nums, _ := layout.ListSegments(crashed, "/data")
		m := e2.Retention().Purged()
		switch {
		case m == nil:
			if nums[0] != 1 || e2.FirstSeq() != 1 {
				t.Fatalf("fsync %d: no manifest but segments start at %d", k, nums[0])
			}
		default:
			if nums[0] != m.Through+1 || e2.FirstSeq() != m.LastSeq+1 {
				t.Fatalf("fsync %d: manifest through %d, segments start at %d", k, m.Through, nums[0])
			}
			a, err := e2.Get(ctx, m.Purges[0].AnchorSeq)
			if err != nil || a.Action != ActionPurge {
				t.Fatalf("fsync %d: anchor %d: %+v %v", k, m.Purges[0].AnchorSeq, a, err)
			}
		}
		// Whatever happened, the next purge completes.
		if _, err := e2.Retention().Purge(ctx, PurgeOptions{By: "test"}); err != nil {
			t.Fatalf("fsync %d: purge after reopen: %v", k, err)
		}
		if err := e2.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPurgeReclaimsDisk measures the segment directory on a real file
// system before and after a purge.
func TestPurgeReclaimsDisk(t *testing.T) {
	clk := &fakeClock{t: t0}
	o := retentionOpts(t, clk)
	o.SegmentSize = 64 << 10
	dir := t.TempDir()
	e := open(t, dir, o)
	defer e.Close()
	for i := range 2000 {
		clk.Set(t0.Add(time.Duration(i) * time.Second))
		if _, err := e.Append(ctx, rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	du := func() int64 {
		var n int64
		filepath.Walk(layout.SegmentsPath(dir), func(_ string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				n += fi.Size()
			}
			return nil
		})
		return n
	}
	b := du()
	clk.Set(t0.Add(24*time.Hour + 1000*time.Second))
	res := purge(t, e)
	a := du()
	if len(res.Segments) == 0 || b-a < res.Bytes-(64<<10) || res.Bytes <= 0 {
		t.Fatalf("before %d after %d, purge says %d bytes", b, a, res.Bytes)
	}
	t.Logf("segments: %d bytes before, %d after; %d segments purged (%d bytes)", b, a, len(res.Segments), res.Bytes)
}

func TestPurgeGuardKeepsUnreplicated(t *testing.T) {
	clk := &fakeClock{t: t0}
	e := open(t, t.TempDir(), retentionOpts(t, clk))
	defer e.Close()
	for i := range 4 {
		appendAt(t, e, clk, t0.Add(time.Duration(i)*time.Hour), "a")
	}
	e.Retention().SetPurgeGuard(func() (uint64, string) { return 1, "not yet copied" })
	clk.Set(t0.Add(30 * 24 * time.Hour))
	res := purge(t, e)
	if len(res.Segments) != 1 || res.Kept.Segment != 2 || !strings.Contains(res.Kept.Reason, "not yet copied") {
		t.Fatalf("%+v %+v", res.Segments, res.Kept)
	}
}

// redactAll rewrites every attribute: a purge's anchor must not pass
// through it.
type redactAll struct{}

func (redactAll) Redact(r *vellum.Record) {
	for k := range r.Attributes {
		r.Attributes[k] = "[REDACTED]"
	}
}

func TestPurgeAnchorNotRedacted(t *testing.T) {
	clk := &fakeClock{t: t0}
	o := retentionOpts(t, clk)
	o.Redactor = redactAll{}
	e := open(t, t.TempDir(), o)
	defer e.Close()
	for i := range 3 {
		appendAt(t, e, clk, t0.Add(time.Duration(i)*time.Hour), "a")
	}
	clk.Set(t0.Add(48 * time.Hour))
	res := purge(t, e)
	a, err := e.Get(ctx, res.AnchorSeq)
	if err != nil || a.Attributes["retention.segments"] != "1-2" {
		t.Fatalf("%+v %v", a.Attributes, err)
	}
}

// TestScheduledPurge: with PurgeEvery set, the engine purges on its own
// once the (fake) clock passes the period.
func TestScheduledPurge(t *testing.T) {
	clk := &fakeClock{t: t0}
	o := retentionOpts(t, clk)
	o.Retention.PurgeEvery = 5 * time.Millisecond
	e := open(t, t.TempDir(), o)
	defer e.Close()
	for i := range 3 {
		appendAt(t, e, clk, t0.Add(time.Duration(i)*time.Hour), "a")
	}
	time.Sleep(50 * time.Millisecond)
	if e.FirstSeq() != 1 {
		t.Fatalf("purged before the period: first seq %d", e.FirstSeq())
	}
	clk.Set(t0.Add(48 * time.Hour))
	for deadline := time.Now().Add(10 * time.Second); e.FirstSeq() == 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the scheduled purge never ran")
		}
	}
	if m := e.Retention().Purged(); m == nil || m.Purges[0].Segments[0].Number != 1 {
		t.Fatalf("manifest %+v", m)
	}
}

// TestOnPurge: the callback hears of each purge that removed segments,
// with the last seq removed, and of nothing else (a dry run, a purge that
// found nothing to remove).
func TestOnPurge(t *testing.T) {
	clk := &fakeClock{t: t0}
	e := open(t, t.TempDir(), retentionOpts(t, clk))
	defer e.Close()
	for i := range 4 {
		appendAt(t, e, clk, t0.Add(time.Duration(i)*time.Hour), "a")
	}
	var heard []uint64
	e.Retention().OnPurge(func(res *PurgeResult) { heard = append(heard, res.Through()) })
	clk.Set(t0.Add(24*time.Hour + 90*time.Minute)) // seq 1 and 2 expired
	if _, err := e.Retention().Purge(ctx, PurgeOptions{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if len(heard) != 0 {
		t.Fatalf("a dry run was heard: %v", heard)
	}
	if res := purge(t, e); res.Through() != 2 {
		t.Fatalf("Through = %d, want 2", res.Through())
	}
	purge(t, e) // nothing more has expired
	clk.Set(t0.Add(30 * 24 * time.Hour))
	purge(t, e)
	if len(heard) != 2 || heard[0] != 2 || heard[1] != 4 {
		t.Fatalf("heard %v, want [2 4]", heard)
	}
}
