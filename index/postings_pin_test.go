package index_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/bench"
	"github.com/vellumlog/vellum/index"
)

// pinRecords returns n of bench.Gen's records (seed 7), with every 13th
// missing its user, tool and session, every 17th an action of three dots
// and every 19th without an outcome, so that the empty values and the
// deeper prefixes take their paths too.
func pinRecords(n int) []vellum.Record {
	g := bench.NewGen(7)
	recs := make([]vellum.Record, n)
	for i := range recs {
		recs[i] = g.Next()
		if i%13 == 5 {
			recs[i].UserID, recs[i].Tool.Name, recs[i].SessionID = "", "", ""
		}
		if i%17 == 3 {
			recs[i].Action = fmt.Sprintf("ext.vendor%d.kind.done", i%4)
		}
		if i%19 == 7 {
			recs[i].Outcome.Status = ""
		}
	}
	return recs
}

// buildEach adds recs to b one way: "keys" as the engine's Prepare does
// (ValuesOfKeys), "plain" with Values built without hashes, "fields" from
// each record's encoding (AddFields, as recovery does), "keyed" from the
// encoding with the record's keys (AddKeyed, as the engine's commit path
// does), "mixed" the four in turn.
func buildEach(t testing.TB, b *index.PostingsBuilder, recs []vellum.Record, way string) {
	t.Helper()
	for i := range recs {
		r := &recs[i]
		w := way
		if way == "mixed" {
			w = []string{"keys", "plain", "fields", "keyed"}[i%4]
		}
		switch w {
		case "keys":
			k := index.KeysOf(r.TenantID, r.UserID, r.Action, r.Tool.Name, r.Model.Name, r.Outcome.Status)
			v := index.ValuesOfKeys(r, &k)
			b.Add(&v)
		case "plain":
			v := index.Values{Tenant: r.TenantID, User: r.UserID, Action: r.Action, Tool: r.Tool.Name, Model: r.Model.Name,
				Outcome: r.Outcome.Status, Session: r.SessionID, Trace: r.TraceID}
			b.Add(&v)
		case "fields", "keyed":
			enc, err := r.AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			var f vellum.Fields
			if err := vellum.PeekFields(enc, &f); err != nil {
				t.Fatal(err)
			}
			if w == "fields" {
				b.AddFields(&f)
				continue
			}
			// As the engine adds: the keys Prepare computed from the
			// record, the values read from its encoding.
			k := index.KeysOf(r.TenantID, r.UserID, r.Action, r.Tool.Name, r.Model.Name, r.Outcome.Status)
			b.AddKeyed(&f, &k)
		}
	}
}

// TestPostingsSectionPinned pins the bytes of section 4 for bench.Gen's
// records, whichever way the records are added and whether the builder is
// new or follows a sealed segment's (Next): version 1 to the SHA-256 of
// what PostingsBuilder.Marshal wrote for them before the add path was
// reworked (commit 1ba2c01, the last to write version 1), version 2 to
// what it writes since (14-bit fingerprints). A change to how the builder
// keeps its lists must not change a byte of either.
func TestPostingsSectionPinned(t *testing.T) {
	pinned := map[byte]map[int]string{
		1: {
			1:     "93d2870b7db4a02d4f445e19060282220f647169e5e55d97f3438678b02029ce",
			1000:  "98743cd3ffd77fb563e94c1384b8d7ac5e9987d3f40d401be50da30f69d63aa8",
			70000: "66441f8f0dd098a5a81d3d685d12c8469cad2283145e2a779225711c3d80f5da",
		},
		2: {
			1:     "a3da7c75ff58016740136c0364ef4fefe8ee4339c2f60eef693dd1b612e98346",
			1000:  "44486fceea58daa7a49dd55036290ee1a041d18f82af46f6dba66d33135cf8c7",
			70000: "3c399aeda119c622be1e6c83a4d0ace8aa739cd0be349e977ed07339d065c0e5",
		},
	}
	for _, n := range []int{1, 1000, 70000} {
		recs := pinRecords(n)
		for _, way := range []string{"keys", "plain", "fields", "keyed", "mixed"} {
			for _, next := range []bool{false, true} {
				for _, version := range []byte{1, 2} {
					t.Run(fmt.Sprintf("records=%d/%s/next=%v/version=%d", n, way, next, version), func(t *testing.T) {
						b := &index.PostingsBuilder{}
						if next {
							prev := &index.PostingsBuilder{}
							buildEach(t, prev, pinRecords(2*n + 50)[n:], "keys")
							b = prev.Next()
						}
						buildEach(t, b, recs, way)
						sec := b.MarshalVersion(version)
						sum := sha256.Sum256(sec)
						if got := hex.EncodeToString(sum[:]); got != pinned[version][n] {
							t.Errorf("section of %d bytes has SHA-256 %s, pinned %s", len(sec), got, pinned[version][n])
						}
						// The builder answers the same lists as the section.
						p, err := index.ParsePostings(sec, uint64(n))
						if err != nil {
							t.Fatal(err)
						}
						p.SetBase(0)
						read := func(dst []byte, off int64) error { copy(dst, sec[off:]); return nil }
						for _, fv := range []struct {
							f byte
							v string
						}{{index.FieldTenant, recs[0].TenantID}, {index.FieldAction, recs[0].Action}, {index.FieldActionPrefix, "ext."},
							{index.FieldActionPrefix, "ext.vendor3."}, {index.FieldOutcome, "denied"}, {index.FieldUser, recs[n-1].UserID}} {
							l, err := p.Lookup(read, fv.f, fv.v)
							if err != nil {
								t.Fatal(err)
							}
							bl := b.Lookup(fv.f, fv.v)
							if got, want := bl.AppendRange(nil, 0, uint32(n)), l.AppendRange(nil, 0, uint32(n)); !bytes.Equal(u32s(got), u32s(want)) {
								t.Fatalf("field %d %q: builder %v, section %v", fv.f, fv.v, got, want)
							}
						}
					})
				}
			}
		}
	}
}

func u32s(v []uint32) []byte {
	var b []byte
	for _, x := range v {
		b = fmt.Appendf(b, "%d,", x)
	}
	return b
}
