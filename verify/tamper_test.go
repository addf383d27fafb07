package verify

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/index"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

func TestIntactStore(t *testing.T) {
	f := getFixture(t)
	dir := f.copyOf(t)
	trusted, _ := lastCheckpoint(t, dir)
	for _, workers := range []int{1, 4} {
		rep, err := Dir(dir, &Options{Keys: chain.NewKeyring(f.key), Verifier: f.verifier, Trusted: trusted, Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() {
			t.Fatalf("intact store: %v", rep.Problems)
		}
		if rep.Records != uint64(f.records) || rep.Segments < 5 || rep.Checkpoints < 8 || rep.Tree == nil || rep.Tree.Size != uint64(f.records) ||
			rep.Unreadable != 0 || rep.Missing != 0 || len(rep.Damage) != 0 {
			t.Fatalf("report: %d records, %d segments, %d checkpoints, tree %v, damage %v", rep.Records, rep.Segments, rep.Checkpoints, rep.Tree, rep.Damage)
		}
		for _, c := range rep.Checks {
			if c.Status != StatusChecked {
				t.Fatalf("with every key given, %s is %s: %s", c.What, c.Status, c.Why)
			}
		}
	}
	// The auditor's checks: no HMAC key.
	rep, err := Dir(dir, &Options{Verifier: f.verifier})
	if err != nil || !rep.OK() {
		t.Fatalf("auditor: %v %v", err, rep.Problems)
	}
	for _, c := range rep.Checks {
		if want := map[bool]string{true: StatusNotChecked, false: StatusChecked}[c.Check == CheckMAC]; c.Status != want {
			t.Fatalf("auditor: %s is %s (%s), want %s", c.What, c.Status, c.Why, want)
		}
	}
}

func lastCheckpoint(t *testing.T, dir string) ([]byte, int64) {
	t.Helper()
	res, err := checkpoint.ReadLog(nil, filepath.Join(dir, checkpoint.LogName))
	if err != nil || len(res.Entries) == 0 {
		t.Fatalf("checkpoints: %v", err)
	}
	e := res.Entries[len(res.Entries)-1]
	return e.Note, e.Offset
}

// TestTamperMatrix tampers with a copy of the fixture store in every way
// the issue lists and checks that verification fails, naming the check,
// the file, and where possible the offset and seq of the first bad place.
// auditor cases are also caught with only the public key.
func TestTamperMatrix(t *testing.T) {
	f := getFixture(t)
	type want struct {
		check  string
		file   string
		offset int64 // -2: any
		seq    uint64
	}
	const any = -2
	flip := func(n uint64, off func(b []byte) int) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			b := readSeg(t, dir, n)
			b[off(b)] ^= 0x01
			writeSeg(t, dir, n, b)
		}
	}
	tests := []struct {
		name    string
		tamper  func(t *testing.T, dir string)
		opts    func(o *Options)
		want    want
		auditor bool // also detected without the HMAC key
	}{
		{
			name:   "byte flipped in a header",
			tamper: flip(2, func([]byte) int { return 20 }),
			want:   want{CheckFrame, segName(2), 124, 0}, auditor: true,
		},
		{
			name:   "byte flipped in a record payload",
			tamper: flip(2, func(b []byte) int { return firstFrame(b, 'B').off + segment.BlockHeaderSize + 40 }),
			want:   want{CheckFrame, segName(2), segment.HeaderSize, 0}, auditor: true,
		},
		{
			name: "byte flipped in a MAC",
			tamper: flip(2, func(b []byte) int {
				fr := firstFrame(b, 'B')
				n := int(b[fr.off+segment.BlockHeaderSize]) | int(b[fr.off+segment.BlockHeaderSize+1]&0x7f)<<7
				return fr.off + segment.BlockHeaderSize + 2 + n + 3 // first record: 2-byte length, encoding, MAC
			}),
			want: want{CheckFrame, segName(2), segment.HeaderSize, 0}, auditor: true,
		},
		{
			name: "MAC altered by a forger who fixes CRCs",
			tamper: func(t *testing.T, dir string) {
				forge(t, dir, 2, func(es []entry) []entry { es[4].mac[0] ^= 1; return es })
			},
			want: want{CheckMAC, segName(2), segment.HeaderSize, 0}, auditor: true,
		},
		{
			name:   "byte flipped in a commit frame",
			tamper: flip(2, func(b []byte) int { return firstFrame(b, 'C').off + 9 }),
			want:   want{CheckFrame, segName(2), any, 0}, auditor: true,
		},
		{
			name:   "byte flipped in the footer",
			tamper: flip(2, func(b []byte) int { return firstFrame(b, 'F').off + 20 }),
			want:   want{CheckFrame, segName(2), any, 0}, auditor: true,
		},
		{
			name: "Merkle root changed by a forger who fixes CRCs",
			tamper: func(t *testing.T, dir string) {
				b := readSeg(t, dir, 2)
				b[len(b)-segment.TrailerSize+80] ^= 1
				writeSeg(t, dir, 2, segment.RecomputeCRCs(b))
			},
			want: want{CheckMerkle, segName(2), any, 0}, auditor: true,
		},
		{
			name:   "Merkle section removed by a forger who fixes CRCs",
			tamper: func(t *testing.T, dir string) { stripSection(t, dir, 2) },
			want:   want{CheckMerkle, segName(2), any, 0}, auditor: true,
		},
		{
			name: "checkpoint signature altered",
			tamper: func(t *testing.T, dir string) {
				p := filepath.Join(dir, checkpoint.LogName)
				b, _ := os.ReadFile(p)
				_, off := lastCheckpoint(t, dir)
				// Inside the last signature's base64, past the key hash. (The
				// last space of the file can be a CRC byte: look for the line.)
				line := bytes.LastIndex(b, []byte("\n\u2014 ")) + len("\n\u2014 ")
				i := line + bytes.IndexByte(b[line:], ' ') + 30
				b[i] = map[bool]byte{true: 'B', false: 'A'}[b[i] == 'A']
				os.WriteFile(p, reframeCheckpoints(b), 0o644)
				_ = off
			},
			want: want{CheckSignature, checkpoint.LogName, any, 0}, auditor: true,
		},
		{
			name: "record deleted",
			tamper: func(t *testing.T, dir string) {
				forge(t, dir, 2, func(es []entry) []entry { return append(es[:5], es[6:]...) })
			},
			want: want{CheckMAC, segName(2), any, 0}, auditor: true,
		},
		{
			name: "forged record inserted without the key",
			tamper: func(t *testing.T, dir string) {
				forge(t, dir, 2, func(es []entry) []entry {
					fake := entry{enc: bytes.Clone(es[5].enc), mac: es[5].mac}
					fake.enc[len(fake.enc)-5] ^= 1
					fake.mac[0] ^= 0x55
					return append(es[:5], append([]entry{fake}, es[5:]...)...)
				})
			},
			want: want{CheckMAC, segName(2), any, 0}, auditor: true,
		},
		{
			name: "two records swapped",
			tamper: func(t *testing.T, dir string) {
				forge(t, dir, 2, func(es []entry) []entry { es[5], es[6] = es[6], es[5]; return es })
			},
			want: want{CheckMAC, segName(2), any, 0}, auditor: true,
		},
		{
			name: "two segments swapped",
			tamper: func(t *testing.T, dir string) {
				a, b := readSeg(t, dir, 2), readSeg(t, dir, 3)
				writeSeg(t, dir, 2, b)
				writeSeg(t, dir, 3, a)
			},
			want: want{CheckLink, segName(2), 16, 0}, auditor: true,
		},
		{
			name:   "middle segment removed",
			tamper: func(t *testing.T, dir string) { os.Remove(segPath(dir, 3)) },
			want:   want{CheckLink, segName(4), any, 0}, auditor: true,
		},
		{
			name: "last segment truncated",
			tamper: func(t *testing.T, dir string) {
				nums := lastSegNum(t, dir)
				b := readSeg(t, dir, nums)
				fr := frames(b)
				// Cut after the first commit frame: a valid, shorter segment.
				for _, x := range fr {
					if x.typ == 'C' {
						writeSeg(t, dir, nums, b[:x.off+x.n])
						return
					}
				}
				t.Fatal("no commit frame in the last segment")
			},
			want: want{CheckCheckpoint, checkpoint.LogName, any, 0}, auditor: true,
		},
		{
			name:   "segment replaced by an older copy of itself",
			tamper: func(t *testing.T, dir string) { writeSeg(t, dir, 3, f.oldSeg3) },
			want:   want{CheckLink, segName(3), any, 0}, auditor: true,
		},
		{
			// The query index skips spans by these summaries: cleared
			// filters would hide records from filtered queries.
			name: "span summaries cleared by a forger who fixes CRCs",
			tamper: func(t *testing.T, dir string) {
				b := readSeg(t, dir, 2)
				r, err := segment.Open(vfs.Default, segPath(dir, 2), nil)
				if err != nil {
					t.Fatal(err)
				}
				sec := bytes.Clone(r.Footer().Sections[segment.SectionSummaries])
				r.Close()
				at := bytes.Index(b, sec)
				for p := 4; p < len(sec); {
					words := int(binary.LittleEndian.Uint32(sec[p+4:]))
					clear(b[at+p+8 : at+p+8+8*words])
					p += 8 + 8*words
				}
				writeSeg(t, dir, 2, segment.RecomputeCRCs(b))
			},
			want: want{CheckSummary, segName(2), any, 0}, auditor: true,
		},
		{
			// Queries and counts find records by the postings: a forged
			// list would hide records from both.
			name: "postings forged by a forger who fixes CRCs",
			tamper: func(t *testing.T, dir string) {
				b := readSeg(t, dir, 2)
				at, sec := postingsOf(t, dir, 2)
				// The last byte of the section: a bucket entry's ordinal.
				b[at+int64(len(sec))-1] ^= 0x01
				writeSeg(t, dir, 2, segment.RecomputeCRCs(b))
			},
			want: want{CheckPostings, segName(2), any, 0}, auditor: true,
		},
		{
			name: "postings truncated by a forger who fixes lengths and CRCs",
			tamper: func(t *testing.T, dir string) {
				b := readSeg(t, dir, 2)
				at, sec := postingsOf(t, dir, 2)
				const cut = 9
				le := binary.LittleEndian
				hdr := at - 8 // the section's header: type, reserved, length
				le.PutUint32(b[hdr+4:], uint32(len(sec)-cut))
				end := at + int64(len(sec))
				b = append(b[:end-cut], b[end:]...)
				r, err := segment.Open(vfs.Default, segPath(dir, 2), nil)
				if err != nil {
					t.Fatal(err)
				}
				foot := r.Footer().Offset
				r.Close()
				le.PutUint32(b[foot+4:], le.Uint32(b[foot+4:])-cut) // footer body length
				writeSeg(t, dir, 2, segment.RecomputeCRCs(b))
			},
			want: want{CheckPostings, segName(2), any, 0}, auditor: true,
		},
		{
			name:   "wrong HMAC key",
			tamper: func(t *testing.T, dir string) {},
			opts:   func(o *Options) { o.Keys = chain.NewKeyring(testKey(9)) },
			want:   want{CheckKey, segName(1), 48, 0},
		},
		{
			name: "checkpoint signed by another key",
			tamper: func(t *testing.T, dir string) {
				p := filepath.Join(dir, checkpoint.LogName)
				res, _ := checkpoint.ReadLog(nil, p)
				last, _ := checkpoint.ParseNote(res.Entries[len(res.Entries)-1].Note)
				s, err := checkpoint.Sign(last.Checkpoint, f.otherSign)
				if err != nil {
					t.Fatal(err)
				}
				fh, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
				fh.Write(frameNote(s.Note))
				fh.Close()
			},
			want: want{CheckSignature, checkpoint.LogName, any, 0}, auditor: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := f.copyOf(t)
			tt.tamper(t, dir)
			modes := []string{"full"}
			if tt.auditor {
				modes = append(modes, "auditor")
			}
			for _, mode := range modes {
				o := &Options{Keys: chain.NewKeyring(f.key), Verifier: f.verifier}
				if mode == "auditor" {
					o.Keys = nil
				}
				if tt.opts != nil {
					tt.opts(o)
				}
				rep, err := Dir(dir, o)
				if err != nil {
					t.Fatalf("%s: I/O error: %v", mode, err)
				}
				if rep.OK() || !errors.Is(rep.Err(), ErrNotIntact) {
					t.Fatalf("%s: tampering not detected", mode)
				}
				p := rep.First()
				t.Logf("%s: %v", mode, p)
				if mode == "auditor" {
					// Without the key the first bad place may be found by
					// another check; it must still name a file.
					if p.File == "" {
						t.Fatalf("auditor: problem names no file: %v", p)
					}
					continue
				}
				if p.Check != tt.want.check || p.File != tt.want.file {
					t.Fatalf("first problem %v; want check %q in %s (all: %v)", p, tt.want.check, tt.want.file, rep.Problems)
				}
				if tt.want.offset != any && p.Offset != tt.want.offset {
					t.Fatalf("offset %d, want %d: %v", p.Offset, tt.want.offset, p)
				}
				if p.Check == CheckMAC && (p.Seq == 0 || p.Expected == "" || p.Found == "") {
					t.Fatalf("MAC problem without seq or expected/found: %v", p)
				}
				if !strings.Contains(p.Error(), p.File) {
					t.Fatalf("message does not name the file: %v", p)
				}
			}
		})
	}
}

func lastSegNum(t *testing.T, dir string) uint64 {
	t.Helper()
	names, _ := os.ReadDir(filepath.Join(dir, "segments"))
	return uint64(len(names))
}

// TestRandomFlipsAlwaysDetected flips one random bit anywhere in a random
// segment or in the checkpoint log, of the uncompressed and of the S2
// fixture: the verifier must never panic and must report a problem (with
// the public key alone), because every byte is covered by a CRC, a
// signature or a signed root; and the report must stay consistent (its
// damage list adds up to its counts, every check has a line).
func TestRandomFlipsAlwaysDetected(t *testing.T) {
	rng := rand.New(rand.NewPCG(0xf11b, 1))
	for _, f := range []*fixture{getFixture(t), getFixtureS2(t)} {
		base := f.copyOf(t)
		names, _ := os.ReadDir(filepath.Join(base, "segments"))
		files := []string{filepath.Join("", checkpoint.LogName)}
		for _, n := range names {
			files = append(files, filepath.Join("segments", n.Name()))
		}
		for i := 0; i < flips(); i++ {
			dir := f.copyOf(t)
			name := files[rng.IntN(len(files))]
			p := filepath.Join(dir, name)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			off := rng.IntN(liveLen(p, b))
			b[off] ^= 1 << rng.IntN(8)
			os.WriteFile(p, b, 0o644)
			rep, err := Dir(dir, &Options{Verifier: f.verifier, Keys: chain.NewKeyring(f.key)})
			if err != nil {
				t.Fatalf("flip %d (%s offset %d): I/O error %v", i, name, off, err)
			}
			if rep.OK() {
				// The one exception: damage inside the checkpoint log's last
				// entry is indistinguishable from a write a crash cut short,
				// so it is a warning (as a segment's torn tail is), and the
				// data is checked against the checkpoint before it.
				if name == checkpoint.LogName && len(rep.Warnings) > 0 && strings.Contains(rep.Warnings[0], "incomplete final entry") {
					continue
				}
				t.Fatalf("flip %d (%s offset %d) not detected; warnings %v", i, name, off, rep.Warnings)
			}
			reportInvariants(t, fmt.Sprintf("flip %d (%s offset %d)", i, name, off), rep)
			if t.Failed() {
				return
			}
		}
	}
}

// flips is how many random flips TestRandomFlipsAlwaysDetected tries;
// VELLUM_FLIPS raises it for a longer campaign.
func flips() int {
	if n, err := strconv.Atoi(os.Getenv("VELLUM_FLIPS")); err == nil && n > 0 {
		return n
	}
	return 100
}

// postingsOf returns the file offset and bytes of sealed segment n's
// postings (footer section 4).
func postingsOf(t *testing.T, dir string, n uint64) (int64, []byte) {
	t.Helper()
	r, err := segment.Open(vfs.Default, segPath(dir, n), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ft := r.Footer()
	sec, ok := ft.Sections[index.SectionPostings]
	if !ok {
		t.Fatalf("segment %d has no postings", n)
	}
	return ft.SectionOffsets[index.SectionPostings], bytes.Clone(sec)
}
