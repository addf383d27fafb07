package verify

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	tdproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/merkle"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// purgedStore builds a store, signs a checkpoint, purges its expired
// segments twice (with records between), signs again, and returns the
// directory and both checkpoints.
func purgedStore(t *testing.T) (dir string, k *chain.Key, ver note.Verifier, before, after checkpoint.Signed) {
	t.Helper()
	ctx := context.Background()
	k = testKey(7)
	s, ver := signerPair("test")
	_ = ver
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: t0}
	dir = t.TempDir()
	o := &engine.Options{Keys: chain.NewKeyring(k), Signer: s, Now: clk.Now, SegmentSize: 8 << 10,
		Retention: engine.Retention{MaxAge: 24 * time.Hour}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	e, err := engine.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 400 {
		clk.Set(t0.Add(time.Duration(i) * time.Minute))
		if _, err := e.Append(ctx, record(i)); err != nil {
			t.Fatal(err)
		}
	}
	if before, err = e.SignCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(24*time.Hour + 100*time.Minute))
	if res, err := e.Retention().Purge(ctx, engine.PurgeOptions{By: "test"}); err != nil || len(res.Segments) == 0 {
		t.Fatalf("purge: %+v %v", res, err)
	}
	clk.Set(t0.Add(24*time.Hour + 200*time.Minute))
	if res, err := e.Retention().Purge(ctx, engine.PurgeOptions{By: "test"}); err != nil || len(res.Segments) == 0 {
		t.Fatalf("second purge: %+v %v", res, err)
	}
	if after, err = e.SignCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, k, ver, before, after
}

func TestVerifyAfterPurge(t *testing.T) {
	dir, k, ver, before, after := purgedStore(t)
	m, err := layout.ReadPurged(nil, dir)
	if err != nil || m == nil || len(m.Purges) != 2 {
		t.Fatalf("manifest %+v %v", m, err)
	}
	for _, o := range []*Options{{Verifier: ver}, {Verifier: ver, Keys: chain.NewKeyring(k)}} {
		rep, err := Dir(dir, o)
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		rep.WriteText(&sb, false)
		if !rep.OK() || len(rep.Purged) != 2 || rep.FirstSeq != m.LastSeq+1 || rep.Tree == nil || rep.Missing != 0 {
			t.Fatalf("key %v:\n%s", o.Keys != nil, sb.String())
		}
		for _, p := range rep.Purged {
			if !strings.Contains(p.Anchor, "naming the same segments") {
				t.Fatalf("anchor: %+v", p)
			}
		}
		if !strings.Contains(sb.String(), "purged: segments 1-") {
			t.Fatalf("report does not name the purged range:\n%s", sb.String())
		}
	}
	// Inclusion proofs of surviving records, from the read-only store,
	// against the checkpoints signed before and after the purges.
	st, err := OpenStore(nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, cp := range []checkpoint.Signed{before, after} {
		for seq := st.FirstSeq(); seq <= cp.Size; seq += 13 {
			p, err := merkle.ProveInclusion(st.Source(), seq-1, cp.Size)
			if err != nil {
				t.Fatalf("proof of %d in %d: %v", seq, cp.Size, err)
			}
			var leaf merkle.Hash
			for sr, err := range st.Records(seq, seq) {
				if err != nil {
					t.Fatal(err)
				}
				var h merkle.Hasher
				leaf = h.Leaf(sr.Encoding, sr.Record.MAC)
			}
			hs := make([][]byte, len(p.Hashes))
			for i := range p.Hashes {
				hs[i] = p.Hashes[i][:]
			}
			if err := tdproof.VerifyInclusion(rfc6962.DefaultHasher, seq-1, cp.Size, leaf[:], hs, cp.Root[:]); err != nil {
				t.Fatalf("seq %d in checkpoint %d: %v", seq, cp.Size, err)
			}
		}
	}
}

func TestVerifyPurgeTampering(t *testing.T) {
	dir, k, ver, _, _ := purgedStore(t)
	opts := &Options{Verifier: ver, Keys: chain.NewKeyring(k)}
	m, _ := layout.ReadPurged(nil, dir)
	nums, _ := layout.ListSegments(nil, dir)
	notOK := func(what, want string) {
		t.Helper()
		rep, err := Dir(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		rep.WriteText(&sb, false)
		if rep.OK() || !strings.Contains(sb.String(), want) {
			t.Fatalf("%s: not reported (want %q):\n%s", what, want, sb.String())
		}
	}
	// A manifest whose anchor names another record.
	path := filepath.Join(dir, layout.PurgedName)
	orig, _ := os.ReadFile(path)
	var raw map[string]any
	json.Unmarshal(orig, &raw)
	raw["purges"].([]any)[1].(map[string]any)["anchor_seq"] = float64(m.Purges[1].AnchorSeq + 1)
	b, _ := json.Marshal(raw)
	os.WriteFile(path, b, 0o644)
	notOK("anchor moved", "anchor record")
	os.WriteFile(path, orig, 0o644)

	// A purged segment's file left behind by an interrupted purge: a
	// warning, not a problem.
	left := layout.SegmentPath(dir, 1)
	os.WriteFile(left, []byte("leftover"), 0o444)
	if rep, err := Dir(dir, opts); err != nil || !rep.OK() || len(rep.Warnings) == 0 || !strings.Contains(rep.Warnings[0], "interrupted") {
		t.Fatalf("leftover: %+v %v", rep, err)
	}
	if st, err := OpenStore(nil, dir); err != nil {
		t.Fatalf("OpenStore with a leftover: %v", err)
	} else {
		st.Close()
	}
	os.Remove(left)

	// The first segment left, deleted by hand.
	os.Remove(layout.SegmentPath(dir, nums[0]))
	notOK("first remaining segment removed", "is missing")
}
