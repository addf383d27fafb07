package verify

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/index"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/merkle"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

// fixture is a store built once per test binary: several sealed segments,
// an active one, checkpoints at every seal and every 100 records, and an
// older copy of segment 3 taken while it was active.
type fixture struct {
	dir       string
	key       *chain.Key
	signer    note.Signer
	verifier  note.Verifier
	otherSign note.Signer
	oldSeg3   []byte
	records   int
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  error
)

func testKey(seed byte) *chain.Key {
	k, err := chain.NewKey(bytes.Repeat([]byte{seed}, 32))
	if err != nil {
		panic(err)
	}
	return k
}

func signerPair(name string) (note.Signer, note.Verifier) {
	priv, pub, err := checkpoint.GenerateKey(name)
	if err != nil {
		panic(err)
	}
	s, _ := note.NewSigner(priv)
	v, _ := note.NewVerifier(pub)
	return s, v
}

func record(i int) vellum.Record {
	return vellum.Record{
		TenantID: fmt.Sprintf("tenant-%d", i%3), UserID: fmt.Sprintf("user-%d", i%11),
		Action:  "tool.call",
		Tool:    vellum.Tool{Name: "web_search", Arguments: json.RawMessage(fmt.Sprintf(`{"query":"weather %d"}`, i))},
		Outcome: vellum.Outcome{Status: vellum.StatusSuccess},
		Attributes: map[string]string{
			"pad": strings.Repeat("x", 150+i%40),
		},
	}
}

func getFixture(t *testing.T) *fixture {
	t.Helper()
	fixOnce.Do(func() { fix, fixErr = buildFixture(false) })
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fix
}

var (
	fixS2Once sync.Once
	fixS2     *fixture
	fixS2Err  error
)

// getFixtureS2 is the fixture written with S2 compression, as stores are
// by default.
func getFixtureS2(t *testing.T) *fixture {
	t.Helper()
	fixS2Once.Do(func() { fixS2, fixS2Err = buildFixture(true) })
	if fixS2Err != nil {
		t.Fatal(fixS2Err)
	}
	return fixS2
}

func buildFixture(compress bool) (*fixture, error) {
	dir, err := os.MkdirTemp("", "vellum-verify-fixture-")
	if err != nil {
		return nil, err
	}
	f := &fixture{dir: dir, key: testKey(1)}
	f.signer, f.verifier = signerPair("vellum-test")
	f.otherSign, _ = signerPair("vellum-test")
	o := &engine.Options{
		Keys: chain.NewKeyring(f.key), Signer: f.signer, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		SegmentSize: 24 << 10, BlockSize: 4 << 10, NoCompression: !compress, CheckpointRecords: 100, CheckpointInterval: -1,
		NoPreallocate: false, // the default, stated: readers must accept the zero tail of a preallocated active segment (TestZeroTailDamage)
	}
	if compress {
		o.SegmentSize = 8 << 10 // several segments, as uncompressed
	}
	e, err := engine.Open(dir, o)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	const batch = 20
	for i := 0; i < 600; i += batch {
		recs := make([]vellum.Record, batch)
		for j := range recs {
			recs[j] = record(i + j)
		}
		if _, err := e.Append(ctx, recs...); err != nil {
			return nil, err
		}
		f.records += batch
		if f.oldSeg3 == nil {
			if nums, _ := layout.ListSegments(nil, dir); len(nums) == 3 {
				// Segment 3 is active and holds one batch or more.
				if f.oldSeg3, err = os.ReadFile(layout.SegmentPath(dir, 3)); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := e.Close(); err != nil {
		return nil, err
	}
	return f, nil
}

// copyOf copies the fixture into a fresh directory.
func (f *fixture) copyOf(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.Walk(f.dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(f.dir, p)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if fi.Name() == "LOCK" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func segPath(dir string, n uint64) string { return layout.SegmentPath(dir, n) }

func segName(n uint64) string { return filepath.Join("segments", layout.SegmentName(n)) }

func readSeg(t *testing.T, dir string, n uint64) []byte {
	t.Helper()
	b, err := os.ReadFile(segPath(dir, n))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeSeg(t *testing.T, dir string, n uint64, b []byte) {
	t.Helper()
	if err := os.WriteFile(segPath(dir, n), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// frame is one frame of a segment image.
type frame struct {
	off int
	typ byte
	n   int
}

// frames walks a segment image's frames (uncompressed blocks).
func frames(b []byte) []frame {
	le := binary.LittleEndian
	var out []frame
	for off := segment.HeaderSize; off < len(b); {
		switch b[off] {
		case 'B':
			n := segment.BlockHeaderSize + int(le.Uint32(b[off+36:]))
			out = append(out, frame{off, 'B', n})
			off += n
		case 'C':
			out = append(out, frame{off, 'C', segment.CommitSize})
			off += segment.CommitSize
		case 'F':
			out = append(out, frame{off, 'F', len(b) - off})
			return out
		default:
			return out
		}
	}
	return out
}

func firstFrame(b []byte, typ byte) frame {
	for _, f := range frames(b) {
		if f.typ == typ {
			return f
		}
	}
	panic("no such frame")
}

type entry struct {
	seq  uint64
	t    int64
	enc  []byte
	mac  vellum.MAC
	prev vellum.MAC
}

// entriesOf reads a segment's records.
func entriesOf(t *testing.T, path string) ([]entry, *segment.ScanResult) {
	t.Helper()
	var out []entry
	sr, err := segment.Scan(vfs.Default, path, nil, func(en segment.Entry) error {
		out = append(out, entry{en.Seq, en.Time, bytes.Clone(en.Record), en.MAC, en.PrevMAC})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, sr
}

// stripSection rewrites sealed segment n keeping everything but its
// Merkle section (footer section 3), with every CRC right.
func stripSection(t *testing.T, dir string, n uint64) {
	t.Helper()
	path := segPath(dir, n)
	es, _ := entriesOf(t, path)
	r, err := segment.Open(vfs.Default, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	hdr, ft := r.Header(), r.Footer()
	r.Close()
	os.Remove(path)
	w, err := segment.Create(vfs.Default, path, hdr, &segment.Options{NoCompression: true, BlockSize: int(hdr.SpanTarget)})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if err := w.Add(e.seq, e.t, e.enc, e.mac); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	root := ft.MerkleRoot
	// The rewrite lays out spans anew, so the old span summaries would no
	// longer match (verify reports that too); this forger drops them.
	if _, err := w.Seal(&segment.SealOptions{MerkleRoot: &root}); err != nil {
		t.Fatal(err)
	}
}

// forge rewrites sealed segment n the way a forger who knows the format but
// not the HMAC key would: mutate edits the record list (seqs and times are
// renumbered to stay in order), the file is rewritten with every CRC
// right, and the trailer's Merkle root is recomputed over the forged
// records. Only MACs, the log-wide tree and checkpoints can tell.
func forge(t *testing.T, dir string, n uint64, mutate func([]entry) []entry) {
	t.Helper()
	path := segPath(dir, n)
	es, sr := entriesOf(t, path)
	first, firstTime := es[0].seq, es[0].t
	es = mutate(es)
	r, err := segment.Open(vfs.Default, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	hdr, ft := r.Header(), r.Footer()
	r.Close()
	os.Remove(path)
	w, err := segment.Create(vfs.Default, path, hdr, &segment.Options{NoCompression: true, BlockSize: int(hdr.SpanTarget)})
	if err != nil {
		t.Fatal(err)
	}
	local := merkle.NewRange(0)
	tm := firstTime
	for i := range es {
		e := &es[i]
		seq := first + uint64(i)
		if e.t > tm {
			tm = e.t
		}
		binary.LittleEndian.PutUint64(e.enc[1:], seq)
		binary.LittleEndian.PutUint64(e.enc[9:], uint64(tm))
		if err := w.Add(seq, tm, e.enc, e.mac); err != nil {
			t.Fatal(err)
		}
		local.Append(merkle.LeafHash(e.enc, e.mac), nil)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	root := [32]byte(local.Root())
	if _, err := w.Seal(&segment.SealOptions{MerkleRoot: &root, Sections: map[uint16][]byte{
		merkle.SectionType: ft.Sections[merkle.SectionType], segment.SectionSummaries: ft.Sections[segment.SectionSummaries],
		index.SectionPostings: ft.Sections[index.SectionPostings]}}); err != nil {
		t.Fatal(err)
	}
	_ = sr
}

// refreme recomputes a checkpoint log entry's CRC after its bytes changed.
func reframeCheckpoints(b []byte) []byte {
	le := binary.LittleEndian
	cast := crc32.MakeTable(crc32.Castagnoli)
	for off := 0; off+12 <= len(b); {
		n := int(le.Uint32(b[off+4:]))
		end := off + 8 + n
		if end+4 > len(b) {
			break
		}
		le.PutUint32(b[end:], crc32.Checksum(b[off:end], cast))
		off = end + 4
	}
	return b
}

func frameNote(msg []byte) []byte {
	b := append([]byte("VCKP"), binary.LittleEndian.AppendUint32(nil, uint32(len(msg)))...)
	b = append(b, msg...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

var _ = time.Second

// TestMain removes the fixture built for the package's tests.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, f := range []*fixture{fix, fixS2} {
		if f != nil {
			os.RemoveAll(f.dir)
		}
	}
	os.Exit(code)
}
