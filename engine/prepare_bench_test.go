package engine

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/index"
)

// benchRecs returns n tool-call records shaped like bench.Gen's (about 350
// bytes encoded: ASCII identifiers, a small JSON argument object, no
// attributes, no event id), so that Prepare's cost per record can be read
// without a commit.
func benchRecs(n int) []vellum.Record {
	rng := rand.New(rand.NewPCG(1, 2))
	actions := []string{"tool.call", "tool.result", "model.decision", "permission.decision", "approval.requested", "approval.granted", "request.start", "request.end"}
	tools := []string{"web_search", "read_file", "send_email", "sql_query", "create_ticket", "http_get"}
	models := []string{"granite-3.3-8b", "llama-3.1-70b", "gpt-4o", "claude-sonnet"}
	outcomes := []string{"success", "success", "success", "failure", "denied", "approved", "pending", "blocked"}
	recs := make([]vellum.Record, n)
	for i := range recs {
		recs[i] = vellum.Record{
			TenantID:  fmt.Sprintf("tenant-%02d", rng.IntN(20)),
			UserID:    fmt.Sprintf("user-%04d", rng.IntN(2000)),
			AuthMode:  "gateway",
			Action:    actions[rng.IntN(len(actions))],
			Agent:     "support-bot",
			SessionID: fmt.Sprintf("sess-%08x", rng.Uint32()),
			TraceID:   fmt.Sprintf("trace_%016x", rng.Uint64()),
			RequestID: fmt.Sprintf("req-%08x", rng.Uint32()),
			Tool: vellum.Tool{
				Name:       tools[rng.IntN(len(tools))],
				CallID:     fmt.Sprintf("call_%05x", rng.IntN(1_000_000)),
				Arguments:  json.RawMessage(fmt.Sprintf(`{"query":"weather in Paris for day %d","max_results":%d,"lang":"en"}`, rng.IntN(365), 1+rng.IntN(50))),
				DurationNS: int64(rng.IntN(5_000_000_000)),
			},
			Model:   vellum.Model{Name: models[rng.IntN(len(models))], Provider: "vllm", InputTokens: uint64(rng.IntN(8000)), OutputTokens: uint64(rng.IntN(800))},
			Outcome: vellum.Outcome{Status: outcomes[rng.IntN(len(outcomes))]},
		}
	}
	return recs
}

// BenchmarkPrepare measures Prepare per record (validation, encoding,
// summary keys) in calls of batch records, on one goroutine.
func BenchmarkPrepare(b *testing.B) {
	e := open(b, b.TempDir(), testOpts(b))
	defer e.Close()
	recs := benchRecs(4096)
	for _, batch := range []int{1, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			c0 := processCPU()
			for b.Loop() {
				if i+batch > len(recs) {
					i = 0
				}
				if _, err := e.Prepare(recs[i : i+batch]...); err != nil {
					b.Fatal(err)
				}
				i += batch
			}
			b.ReportMetric(float64(processCPU()-c0)/float64(b.N*batch), "cpu-ns/record")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/record")
		})
	}
	// Records far apart in memory, taken in random order: each call's
	// record is out of the caches, as at 1,024 callers (BenchmarkAppend
	// in bench/), where each caller's next record was last touched long
	// before.
	cold := benchRecs(1 << 16)
	order := rand.New(rand.NewPCG(3, 4)).Perm(len(cold))
	b.Run("batch=1/cold", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		c0 := processCPU()
		for b.Loop() {
			if _, err := e.Prepare(cold[order[i%len(order)]:][:1]...); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(processCPU()-c0)/float64(b.N), "cpu-ns/record")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/record")
	})
}

// BenchmarkAddPostings measures the postings goroutine's work per record
// (addPostings: the fields read from each encoding, the keys added to the
// active segment's builder) for records Prepare made.
func BenchmarkAddPostings(b *testing.B) {
	e := open(b, b.TempDir(), testOpts(b))
	defer e.Close()
	const n = 100_000
	recs := benchRecs(4096)
	keys := make([]*index.Keys, n)
	encs := make([][]byte, n)
	for i := 0; i < n; i += 1000 {
		p, err := e.Prepare(recs[i%4000 : i%4000+1000]...)
		if err != nil {
			b.Fatal(err)
		}
		for j := range p.items {
			keys[i+j], encs[i+j] = &p.items[j].keys, p.items[j].enc
		}
	}
	ix := &indexer{log: discardLogger()}
	seg := &segInfo{}
	seg.hdr.FirstSeq = 1
	var prev *index.PostingsBuilder
	b.ReportAllocs()
	c0 := processCPU()
	for b.Loop() {
		post := prev.Next()
		ix.addPostings(post, seg, 1, keys, encs)
		if post.Len() != n {
			b.Fatalf("%d records added, want %d", post.Len(), n)
		}
		prev = post
	}
	b.ReportMetric(float64(processCPU()-c0)/float64(b.N*n), "cpu-ns/record")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
}

// processCPU returns the CPU time the process has used, in nanoseconds:
// on a machine shared with other work, a steadier measure than elapsed
// time (it includes the garbage collector's work on other threads).
func processCPU() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
