package engine

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/index"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

// TestSealedPostingsMatchRebuild: the postings a seal writes (built on the
// commit path from each record's encoding and summary keys) are byte for
// byte those rebuilt from the segment's records alone, as recovery and
// vellum verify rebuild them, for records with empty fields, many users,
// actions of several dots and every status, appended one by one and in
// batches across several seals.
func TestSealedPostingsMatchRebuild(t *testing.T) {
	dir := t.TempDir()
	o := testOpts(t)
	o.SegmentSize = 16 << 10 // several segments
	e := open(t, dir, o)
	rng := rand.New(rand.NewPCG(5, 6))
	actions := []string{"tool.call", "tool.result", "approval.granted", "model.decision", "ext.vendor.kind.done", "ext.vendor.other"}
	mk := func(i int) vellum.Record {
		r := rec(i)
		r.UserID = fmt.Sprintf("user-%d", rng.IntN(400))
		r.Action = actions[rng.IntN(len(actions))]
		r.Outcome.Status = vellum.Statuses[rng.IntN(len(vellum.Statuses))]
		r.TraceID = fmt.Sprintf("trace-%x", rng.Uint64())
		r.Model.Name = []string{"", "m1", "m2"}[rng.IntN(3)]
		r.Attributes = nil
		if i%7 == 3 {
			r.UserID, r.SessionID, r.Tool = "", "", vellum.Tool{}
		}
		return r
	}
	i := 0
	for i < 1200 {
		if i%3 == 0 {
			batch := make([]vellum.Record, 1+rng.IntN(40))
			for j := range batch {
				batch[j] = mk(i)
				i++
			}
			if _, err := e.Append(ctx, batch...); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := e.Append(ctx, mk(i)); err != nil {
			t.Fatal(err)
		}
		i++
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	nums, err := layout.ListSegments(nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	sealed := 0
	for _, n := range nums {
		r, err := segment.Open(vfs.Default, layout.SegmentPath(dir, n), nil)
		if err != nil {
			t.Fatal(err)
		}
		ft := r.Footer()
		r.Close()
		if ft == nil {
			continue
		}
		sec, ok := ft.Sections[index.SectionPostings]
		if !ok {
			t.Fatalf("segment %d sealed without postings", n)
		}
		var want index.PostingsBuilder
		var f vellum.Fields
		if _, err := segment.Scan(vfs.Default, layout.SegmentPath(dir, n), nil, func(en segment.Entry) error {
			if err := vellum.PeekFields(en.Record, &f); err != nil {
				return err
			}
			want.AddFields(&f)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if uint64(want.Len()) != ft.Count || !bytes.Equal(sec, want.Marshal()) {
			t.Fatalf("segment %d: section 4 of %d bytes for %d records differs from the one rebuilt from its %d records", n, len(sec), ft.Count, want.Len())
		}
		sealed++
	}
	if sealed < 3 {
		t.Fatalf("%d sealed segments, want several", sealed)
	}
}

// TestPostingsCompleteWhenIdle: small batches are gathered for the
// postings goroutine while more records wait (queuePostings), and handed
// over once none do, so that a store that stops appending has every
// record in its active segment's postings without a seal or a close.
func TestPostingsCompleteWhenIdle(t *testing.T) {
	e := open(t, t.TempDir(), testOpts(t))
	defer e.Close()
	n := 0
	for range 20 { // serial: each call writes its own batch
		if _, err := e.Append(ctx, rec(n)); err != nil {
			t.Fatal(err)
		}
		n++
	}
	var wg sync.WaitGroup
	for w := range 64 { // concurrent one-record callers: small batches back to back
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := range 30 {
				if _, err := e.Append(ctx, rec(1000+w*30+i)); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	n += 64 * 30
	indexed := func() int {
		e.index.postMu.RLock()
		defer e.index.postMu.RUnlock()
		return e.index.post.Len()
	}
	// The postings goroutine applies what it was handed on its own time:
	// wait for it (no deadline on its speed, only on the test).
	deadline := time.Now().Add(20 * time.Second)
	for indexed() != n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := indexed(); got != n {
		t.Fatalf("%d of %d records in the active segment's postings after the appends ended", got, n)
	}
}
