package segment_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/index"
	"github.com/vellumlog/vellum/merkle"
	"github.com/vellumlog/vellum/segment"
	"github.com/vellumlog/vellum/vfs"
)

// update rewrites the golden files: go test ./segment -run Golden -update
var update = flag.Bool("update", false, "rewrite segment/testdata golden files")

// Golden files. The segment pins format version 1 as the writer produces
// it; the key file is its HMAC key in the key-file encoding FORMAT.md
// gives, so that a reader written from the spec can check every MAC.
const (
	goldenSegment = "testdata/golden-v1.vseg"
	goldenKey     = "testdata/golden-v1.hmac.key"
)

// goldenStore is the golden segment's store id.
var goldenStore = [16]byte{0x76, 0x65, 0x6c, 0x6c, 0x75, 0x6d, 0x2d, 0x67, 0x6f, 0x6c, 0x64, 0x65, 0x6e, 0x2d, 0x76, 0x31}

// goldenKeyBytes is the golden segment's HMAC key: bytes 0x00..0x1f.
func goldenKeyBytes() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// goldenBase is the receipt time of the first golden record (Unix ns).
const goldenBase = int64(1795000000123456789)

// goldenRecordCount is chosen so that the log-wide tree completes a
// level-8 node (256 leaves) inside the segment and the Merkle section
// stores one.
const goldenRecordCount = 300

// goldenRecords returns the records of the golden segment with seq and
// receipt time assigned. Record 1 sets every field; record 2 sets only
// what is required; the others vary tenants, users, actions, tools,
// models and outcomes so that span summaries differ, and a few stress
// the encoding: a long action whose dotted prefixes overflow a summary,
// a record larger than the block target, multi-byte varints, UTF-8
// outside ASCII and tool arguments with the producer's own whitespace.
func goldenRecords() []vellum.Record {
	statuses := vellum.Statuses
	out := make([]vellum.Record, goldenRecordCount)
	t := goldenBase
	for i := range out {
		seq := uint64(i + 1)
		if i%7 != 3 { // some records share their predecessor's receipt time
			t += 1_000_003
		}
		r := vellum.Record{
			Seq:      seq,
			Time:     time.Unix(0, t).UTC(),
			TenantID: fmt.Sprintf("tenant-%d", i%4),
			UserID:   fmt.Sprintf("user-%d", i%9),
			Action:   []string{"tool.call", "tool.result", "model.decision", "approval.granted", "permission.decision"}[i%5],
			Outcome:  vellum.Outcome{Status: statuses[i%len(statuses)]},
		}
		if i%3 == 0 {
			r.Tool = vellum.Tool{Name: []string{"web_search", "sql", "fetch"}[(i/3)%3], CallID: fmt.Sprintf("call_%d", i),
				Arguments: json.RawMessage(fmt.Sprintf(`{"q":"item %d","n":%d}`, i, i*7))}
		}
		if i%4 == 1 {
			r.Model = vellum.Model{Name: []string{"granite-3.3-8b", "llama-4"}[i%2], Provider: "vllm", InputTokens: uint64(i * 13), OutputTokens: uint64(i)}
		}
		if i%10 == 5 {
			r.SessionID = fmt.Sprintf("s-%d", i/10)
			r.TraceID = fmt.Sprintf("trace_%016x", i)
		}
		out[i] = r
	}
	// Record 1: every field.
	out[0] = vellum.Record{
		Seq:       1,
		Time:      out[0].Time,
		EventID:   "evt-0001",
		EventTime: time.Date(2026, 11, 19, 8, 30, 0, 987654321, time.UTC),
		TenantID:  "acme",
		UserID:    "alice@example.com",
		Service:   "billing-agent",
		AuthMode:  "gateway",
		Action:    "approval.granted",
		Agent:     "support-bot",
		SessionID: "sess-42",
		TraceID:   "trace_0123456789abcdef",
		RequestID: "req-7",
		Tool: vellum.Tool{
			Name:   "refund",
			CallID: "call_1",
			// Stored byte for byte as sent: whitespace, escapes and
			// number spelling are the producer's.
			Arguments:  json.RawMessage("{ \"amount\" : 12.50,\n\t\"note\": \"caf\\u00e9 \u00fcber \U0001F600\" }"),
			IsError:    true,
			DurationNS: 1_234_567_890,
		},
		Model: vellum.Model{Name: "granite-3.3-8b", Provider: "vllm", FinishReason: "tool_calls", InputTokens: 300, OutputTokens: 1 << 40},
		Outcome: vellum.Outcome{Status: vellum.StatusApproved, Reason: "within policy: refund ≤ 50 €", RuleID: "refund-small",
			Approver: "bob", Mode: "enforce"},
		Attributes: map[string]string{"region": "eu-west-1", "ticket": "T-1001", "ünïcode": "välue"},
		Redactions: []vellum.Redaction{{Rule: "email", Field: "user_id", Count: 1}, {Rule: "card", Field: "tool.arguments.note", Count: 300}},
	}
	// Record 2: only what is required.
	out[1] = vellum.Record{Seq: 2, Time: out[1].Time, Action: "request.start", Outcome: vellum.Outcome{Status: vellum.StatusPending}}
	// A long dotted action: its prefixes give more than 12 summary keys,
	// so its span's summary is "unknown" (0 words).
	out[40].Action = "a.b.c.d.e.f.g.h.i.j.k.l.m"
	// A record larger than the block target: a block of one record.
	out[120].Attributes = map[string]string{"blob": strings.Repeat("0123456789abcdef", 200)}
	return out
}

// goldenBatches lists the fsync batches the golden records are written in:
// single-record batches (many blocks per span) and large ones (several
// blocks per batch, spans closing inside a batch).
func goldenBatches() []int {
	var out []int
	pattern := []int{1, 1, 3, 40, 1, 1, 1, 25, 2, 60}
	left := goldenRecordCount
	for i := 0; left > 0; i++ {
		n := min(pattern[i%len(pattern)], left)
		out = append(out, n)
		left -= n
	}
	return out
}

// goldenBlockSize is the golden segment's block and span target.
const goldenBlockSize = 1024

// buildGolden writes the golden segment the way the engine does: records
// chained under the golden key from the store's genesis value, committed
// in goldenBatches, sealed with the span summaries (section 2), the
// Merkle root and the Merkle section (section 3).
func buildGolden(t *testing.T, codec segment.Codec) []byte {
	t.Helper()
	key, err := chain.NewKey(goldenKeyBytes())
	if err != nil {
		t.Fatal(err)
	}
	fs := vfs.NewMem()
	const path = "/golden.vseg"
	hdr := segment.Header{
		Number: 1, StoreID: goldenStore, FirstSeq: 1, KeyID: key.ID(),
		PrevMAC: chain.Genesis(goldenStore, key.ID()), Created: time.Unix(0, goldenBase-5_000_000_000),
	}
	w, err := segment.Create(fs, path, hdr, &segment.Options{BlockSize: goldenBlockSize, Codec: codec, NoCompression: codec == segment.CodecNone})
	if err != nil {
		t.Fatal(err)
	}
	recs := goldenRecords()
	h := key.NewHasher()
	prev := hdr.PrevMAC
	log := merkle.NewLog(merkle.NewRange(0))
	keys := make([]index.Keys, len(recs))
	i := 0
	for _, n := range goldenBatches() {
		for ; n > 0; n-- {
			r := &recs[i]
			enc, err := r.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			mac := h.Next(prev, enc)
			if err := w.Add(r.Seq, r.Time.UnixNano(), enc, mac); err != nil {
				t.Fatal(err)
			}
			log.Append(merkle.LeafHash(enc, mac))
			keys[i] = index.KeysOf(r.TenantID, r.UserID, r.Action, r.Tool.Name, r.Model.Name, r.Outcome.Status)
			prev = mac
			i++
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	var sum index.Summarizer
	for _, sp := range w.Spans() {
		for seq := sp.FirstSeq; seq <= sp.LastSeq(); seq++ {
			sum.Add(sp.FirstSeq, &keys[seq-1])
		}
	}
	root, sec, err := log.Seal()
	if err != nil {
		t.Fatal(err)
	}
	secBytes, _ := sec.MarshalBinary()
	rootBytes := [32]byte(root)
	if _, err := w.Seal(&segment.SealOptions{MerkleRoot: &rootBytes, Sections: map[uint16][]byte{
		segment.SectionSummaries: index.MarshalSummaries(sum.Finish()),
		merkle.SectionType:       secBytes,
	}}); err != nil {
		t.Fatal(err)
	}
	b, err := vfs.ReadFile(fs, path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goldenNoneSHA256 is the SHA-256 of the golden segment written without
// compression, which pins the writer's framing on every platform.
const goldenNoneSHA256 = "20b18e61cda7e79e9064ea0810794486075791c028eafc76abea8d430f97d161"

// s2Reproducible is set where the S2 encoder is the one the golden file was
// written with (the amd64 assembly): S2 output is valid everywhere but not
// byte-identical across encoder implementations, so elsewhere only the
// uncompressed variant is compared byte for byte.
var s2Reproducible bool

// TestGoldenSegment pins the bytes of a sealed segment: any change to what
// the writer, the record encoding, the chain, the span summaries or the
// Merkle section produce fails here. If the change is intended, it is a
// format change: bump the version in FORMAT.md, then regenerate with
// go test ./segment -run Golden -update (and update goldenNoneSHA256).
func TestGoldenSegment(t *testing.T) {
	got := buildGolden(t, segment.CodecS2)
	keyText := hex.EncodeToString(goldenKeyBytes()) + "\n"
	if *update {
		if !s2Reproducible {
			t.Fatal("regenerate the golden segment on amd64 without the noasm tag, where the S2 encoder is the reference one")
		}
		if err := os.MkdirAll(filepath.Dir(goldenSegment), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenSegment, got, 0o644); err != nil {
			t.Fatal(err)
		}
		// A key file as WriteKeyFile writes one (mode 0600).
		os.Remove(goldenKey)
		k, _ := chain.NewKey(goldenKeyBytes())
		if err := chain.WriteKeyFile(goldenKey, k); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(goldenSegment)
	if err != nil {
		t.Fatalf("%v (generate it with go test ./segment -run Golden -update)", err)
	}
	if s2Reproducible && !bytes.Equal(got, want) {
		t.Fatalf("the writer's bytes differ from %s at offset %d (lengths %d and %d); %s", goldenSegment, firstDiff(got, want), len(got), len(want),
			"a format change needs a new version in FORMAT.md, then go test ./segment -run Golden -update")
	}
	none := sha256.Sum256(buildGolden(t, segment.CodecNone))
	if h := hex.EncodeToString(none[:]); h != goldenNoneSHA256 {
		if *update {
			t.Fatalf("set goldenNoneSHA256 = %q", h)
		}
		t.Fatalf("the uncompressed golden segment hashes to %s, want %s: the writer's bytes changed", h, goldenNoneSHA256)
	}
	kb, err := os.ReadFile(goldenKey)
	if err != nil || string(kb) != keyText {
		t.Fatalf("%s is %q (%v), want the key-file encoding %q", goldenKey, kb, err, keyText)
	}

	// The package's own reader agrees with the file (the spec reader in
	// spec_test.go checks it independently).
	sr, err := segment.ScanBytes(goldenSegment, want, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !sr.Sealed || sr.State.Count != goldenRecordCount {
		t.Fatalf("scan: sealed %v, %d records", sr.Sealed, sr.State.Count)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
