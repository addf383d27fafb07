package engine

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

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
