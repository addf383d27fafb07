package verify

import (
	"bytes"
	"testing"

	"github.com/vellumlog/vellum/chain"
)

// TestParallelHashingSameReport checks that hashing records on the pool
// (Workers > 1, in batches that end inside blocks and segments) gives the
// report one goroutine gives, word for word, on an intact store and on
// stores whose MACs, order and records a forger changed.
func TestParallelHashingSameReport(t *testing.T) {
	f := getFixture(t)
	cases := []struct {
		name   string
		tamper func(t *testing.T, dir string)
	}{
		{"intact", func(*testing.T, string) {}},
		{"MACs altered in two segments", func(t *testing.T, dir string) {
			forge(t, dir, 2, func(es []entry) []entry {
				for _, i := range []int{0, 4, 5, len(es) - 1} {
					es[i].mac[0] ^= 1
				}
				return es
			})
			forge(t, dir, 4, func(es []entry) []entry { es[len(es)/2].mac[3] ^= 0x80; return es })
		}},
		{"record removed", func(t *testing.T, dir string) {
			forge(t, dir, 3, func(es []entry) []entry { return append(es[:7], es[8:]...) })
		}},
		{"records swapped", func(t *testing.T, dir string) {
			forge(t, dir, 2, func(es []entry) []entry { es[10], es[11] = es[11], es[10]; return es })
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := f.copyOf(t)
			tc.tamper(t, dir)
			var want []byte
			for _, o := range []Options{
				{Workers: 1},
				{Workers: 2},
				{Workers: 3, hashBatch: 7},
				{Workers: 4, hashBatch: 1},
			} {
				o.Keys, o.Verifier = chain.NewKeyring(f.key), f.verifier
				rep, err := Dir(dir, &o)
				if err != nil {
					t.Fatal(err)
				}
				if (tc.name == "intact") != rep.OK() {
					t.Fatalf("workers %d: OK() = %v: %v", o.Workers, rep.OK(), rep.Problems)
				}
				var buf bytes.Buffer
				rep.WriteText(&buf, false)
				if want == nil {
					want = buf.Bytes()
					continue
				}
				if !bytes.Equal(buf.Bytes(), want) {
					t.Fatalf("workers %d, batch %d: report differs from one worker's:\n%s\nwant:\n%s", o.Workers, o.hashBatch, buf.Bytes(), want)
				}
			}
		})
	}
}
