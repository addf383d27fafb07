package segment

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/vfs"
)

var testStore = [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}

func testKey(t testing.TB) *chain.Key {
	k, err := chain.NewKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// gen produces records with valid chain MACs, as the engine would.
type gen struct {
	h    *chain.Hasher
	seq  uint64
	prev vellum.MAC
	t    int64
	all  []Entry
}

func newGen(t testing.TB) *gen {
	k := testKey(t)
	return &gen{h: k.NewHasher(), prev: chain.Genesis(testStore, k.ID()), t: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC).UnixNano()}
}

func (g *gen) header(n uint64) Header {
	return Header{Number: n, StoreID: testStore, FirstSeq: g.seq + 1, KeyID: testKey(nil).ID(), PrevMAC: g.prev, Created: time.Unix(0, g.t)}
}

func (g *gen) next(size int) Entry {
	g.seq++
	g.t += 1000
	r := vellum.Record{Seq: g.seq, Time: time.Unix(0, g.t).UTC(), TenantID: fmt.Sprintf("t%d", g.seq%3), Action: "tool.call",
		Outcome: vellum.Outcome{Status: "success"}, Attributes: map[string]string{"pad": strings.Repeat("x", size)}}
	enc, err := r.MarshalBinary()
	if err != nil {
		panic(err)
	}
	mac := g.h.Next(g.prev, enc)
	e := Entry{Seq: g.seq, Time: g.t, Record: enc, MAC: mac, PrevMAC: g.prev}
	g.prev = mac
	g.all = append(g.all, e)
	return e
}

// writeBatches writes batches of the given sizes and returns the writer.
func writeBatches(t *testing.T, fs vfs.FS, path string, g *gen, opts *Options, batches ...int) *Writer {
	t.Helper()
	w, err := Create(fs, path, g.header(1), opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range batches {
		for i := 0; i < n; i++ {
			e := g.next(100 + int(g.seq%50))
			if err := w.Add(e.Seq, e.Time, e.Record, e.MAC); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func sameEntries(t *testing.T, got, want []Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Seq != w.Seq || g.Time != w.Time || !bytes.Equal(g.Record, w.Record) || g.MAC != w.MAC || g.PrevMAC != w.PrevMAC {
			t.Fatalf("entry %d (seq %d) differs", i, w.Seq)
		}
	}
}

func TestWriteSealRead(t *testing.T) {
	for _, codec := range []struct {
		name string
		opts *Options
	}{
		{"s2", nil},
		{"zstd", &Options{Codec: CodecZstd}},
		{"none", &Options{NoCompression: true}},
		{"tiny blocks", &Options{BlockSize: 300}},
	} {
		t.Run(codec.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "seg-1.vseg")
			g := newGen(t)
			w := writeBatches(t, vfs.Default, path, g, codec.opts, 1, 1, 5, 300, 1, 1000, 2)
			root := [32]byte{9}
			ft, err := w.Seal(&SealOptions{MerkleRoot: &root, Sections: map[uint16][]byte{SectionSummaries: []byte("summary")}})
			if err != nil {
				t.Fatal(err)
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o444 {
				t.Fatalf("sealed segment mode %o, want 0444", fi.Mode().Perm())
			}
			r, err := Open(vfs.Default, path, codec.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got := r.Footer()
			if got == nil {
				t.Fatal("sealed segment has no footer")
			}
			if got.Count != uint64(len(g.all)) || got.FirstSeq != 1 || got.LastSeq != g.seq || got.LastMAC != g.prev ||
				!got.HasRoot || got.MerkleRoot != root || string(got.Sections[SectionSummaries]) != "summary" {
				t.Fatalf("footer = %+v", got)
			}
			if len(got.Spans) != len(ft.Spans) {
				t.Fatal("footer spans differ from what Seal returned")
			}
			var all []Entry
			for _, s := range got.Spans {
				es, err := r.ReadSpan(s)
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, es...)
			}
			sameEntries(t, all, g.all)
			var scanned []Entry
			sr, err := Scan(vfs.Default, path, codec.opts, func(e Entry) error {
				e.Record = bytes.Clone(e.Record)
				scanned = append(scanned, e)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !sr.Sealed || sr.TornAt != -1 {
				t.Fatalf("scan: sealed=%v tornAt=%d", sr.Sealed, sr.TornAt)
			}
			sameEntries(t, scanned, g.all)
		})
	}
}

func TestSpansGroupSmallBatches(t *testing.T) {
	dir := t.TempDir()
	g := newGen(t)
	batches := make([]int, 400)
	for i := range batches {
		batches[i] = 1
	}
	w := writeBatches(t, vfs.Default, filepath.Join(dir, "s"), g, &Options{BlockSize: 4096}, batches...)
	spans := w.Spans()
	// 400 records of ~250 bytes at a 4 KiB target: about 25 spans, not 400.
	if len(spans) > 40 || len(spans) < 10 {
		t.Fatalf("%d spans for 400 single-record batches", len(spans))
	}
}

func TestOpenAppendContinues(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s")
	g := newGen(t)
	w := writeBatches(t, vfs.Default, path, g, nil, 3, 7)
	w.Close()
	sr, err := Scan(vfs.Default, path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sr.Sealed || sr.TornAt != -1 || sr.State.Count != 10 || sr.State.LastMAC != g.prev {
		t.Fatalf("scan = %+v", sr)
	}
	w, err = OpenAppend(vfs.Default, path, sr, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		e := g.next(10)
		if err := w.Add(e.Seq, e.Time, e.Record, e.MAC); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Seal(nil); err != nil {
		t.Fatal(err)
	}
	var n int
	if _, err := Scan(vfs.Default, path, nil, func(Entry) error { n++; return nil }); err != nil || n != 15 {
		t.Fatalf("n=%d err=%v", n, err)
	}
}

// TestTornTailEveryOffset cuts the file at every byte of the last batch (and
// of a half-written footer) and checks that the scan keeps exactly the
// committed batches and reports the rest as torn, never as corruption.
func TestTornTailEveryOffset(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s")
	g := newGen(t)
	w := writeBatches(t, vfs.Default, path, g, nil, 4, 2)
	committed := w.State()
	nCommitted := len(g.all)
	for i := 0; i < 3; i++ {
		e := g.next(40)
		w.Add(e.Seq, e.Time, e.Record, e.MAC)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	full, _ := os.ReadFile(path)
	for cut := int(committed.Size) + 1; cut < len(full); cut++ {
		sr, err := ScanBytes(path, full[:cut], nil, nil)
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		if sr.State != committed || sr.TornAt != committed.Size {
			t.Fatalf("cut at %d: state %+v torn %d, want %+v torn %d", cut, sr.State, sr.TornAt, committed, committed.Size)
		}
	}
	// Garbage after the last commit is torn, not corrupt; so are zeros
	// followed by anything but zeros (a zero tail alone is the end of the
	// log: TestZeroTail).
	for _, tail := range [][]byte{append(make([]byte, 4096), 1), []byte("garbage!"), {frameBlock}, {frameCommit, 0, 0, 0, 1, 0, 0, 0}} {
		sr, err := ScanBytes(path, append(bytes.Clone(full), tail...), nil, nil)
		if err != nil || sr.TornAt != int64(len(full)) || sr.State.Count != uint64(nCommitted+3) {
			t.Fatalf("tail %q: torn %d err %v", tail[:1], sr.TornAt, err)
		}
	}
	// Truncate keeps a .broken copy and cuts the file.
	os.WriteFile(path, full[:len(full)-5], 0o644)
	sr, err := Scan(vfs.Default, path, nil, nil)
	if err != nil || sr.TornAt < 0 {
		t.Fatalf("torn scan: %v %+v", err, sr)
	}
	broken, err := Truncate(vfs.Default, path, sr)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(broken); !bytes.Equal(b, full[:len(full)-5]) {
		t.Fatal(".broken copy differs from the file before the cut")
	}
	if fi, _ := os.Stat(path); fi.Size() != committed.Size {
		t.Fatalf("size after cut %d, want %d", fi.Size(), committed.Size)
	}
}

// TestCorruptionIsNotTorn flips bytes in committed batches that have more
// committed data after them: every case must be reported as corruption with
// its location, never cut back.
func TestCorruptionIsNotTorn(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s")
	g := newGen(t)
	w := writeBatches(t, vfs.Default, path, g, nil, 5, 5, 5)
	w.Close()
	full, _ := os.ReadFile(path)
	sr, _ := ScanBytes(path, full, nil, nil)
	spans := sr.Spans()
	first := spans[0].Offset
	tests := []struct {
		name   string
		at     int64
		reason string
	}{
		{"block type", first, "unknown frame type"},
		{"block count", first + 4, "block CRC"},
		{"block prev mac", first + 50, "block CRC"},
		{"payload", first + BlockHeaderSize + 10, "block CRC"},
		{"first commit frame", sr.State.Size / 3, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bytes.Clone(full)
			b[tt.at] ^= 0x5a
			_, err := ScanBytes(path, b, nil, nil)
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *CorruptError", err)
			}
			if ce.Path != path || ce.Offset < HeaderSize || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	t.Run("header", func(t *testing.T) {
		b := bytes.Clone(full)
		b[20] ^= 1
		_, err := ScanBytes(path, b, nil, nil)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "header CRC") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestAddChecks(t *testing.T) {
	dir := t.TempDir()
	g := newGen(t)
	w, err := Create(vfs.Default, filepath.Join(dir, "s"), g.header(1), &Options{MaxRecordSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	e := g.next(300)
	if err := w.Add(e.Seq, e.Time, e.Record, e.MAC); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if w.Pending() != 0 {
		t.Fatal("an oversized record was buffered")
	}
	if err := w.Add(e.Seq+1, e.Time, e.Record[:10], e.MAC); err == nil {
		t.Fatal("a seq gap was accepted")
	}
}

// TestFlushSyncOverlap prepares each batch while the previous one syncs on
// another goroutine, the engine's pipeline, and checks the result under the
// race detector.
func TestFlushSyncOverlap(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s")
	g := newGen(t)
	w, err := Create(vfs.Default, path, g.header(1), &Options{BlockSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	synced := make(chan error, 1)
	synced <- nil
	var prev *Flushed // the writer reuses a Flushed at the second Flush after it
	prevN := 0
	for batch := 0; batch < 30; batch++ {
		for i := 0; i <= batch%7; i++ {
			e := g.next(50)
			if err := w.Add(e.Seq, e.Time, e.Record, e.MAC); err != nil {
				t.Fatal(err)
			}
		}
		if err := <-synced; err != nil { // the previous batch is durable
			t.Fatal(err)
		}
		fl, err := w.Flush()
		if err != nil {
			t.Fatal(err)
		}
		if got := fl.Records(); got != batch%7+1 {
			t.Fatalf("batch %d: Flushed holds %d records, want %d", batch, got, batch%7+1)
		}
		if prev != nil && prev.Records() != prevN {
			t.Fatalf("batch %d: the previous Flushed changed to %d records, want %d", batch, prev.Records(), prevN)
		}
		prev, prevN = fl, batch%7+1
		go func() { synced <- w.Sync(fl) }()
	}
	if err := <-synced; err != nil {
		t.Fatal(err)
	}
	if w.State().LastSeq != g.seq || w.State().LastMAC != g.prev {
		t.Fatalf("durable state ends at %d, want %d", w.State().LastSeq, g.seq)
	}
	if _, err := w.Seal(nil); err != nil {
		t.Fatal(err)
	}
	var got []Entry
	if _, err := Scan(vfs.Default, path, nil, func(e Entry) error {
		e.Record = bytes.Clone(e.Record)
		got = append(got, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sameEntries(t, got, g.all)
}
