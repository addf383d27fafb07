package index

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/vellumlog/vellum"
)

// BenchmarkPostingsBuild measures what postings cost the writer per record:
// computing a record's values, adding a record (with the hashes Prepare
// computed: "add" from Values, "addkeyed" from the encoding and the summary
// keys, as the engine does) and encoding the section at seal.
func BenchmarkPostingsBuild(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 200000
	vals := make([]Values, n)
	acts := []string{"tool.call", "tool.result", "model.decision", "permission.decision", "approval.requested", "approval.granted", "request.start", "request.end"}
	for i := range vals {
		vals[i] = Values{Tenant: fmt.Sprintf("tenant-%02d", rng.IntN(20)), User: fmt.Sprintf("user-%04d", rng.IntN(2000)), Action: acts[rng.IntN(8)],
			Tool: fmt.Sprintf("tool%d", rng.IntN(6)), Model: fmt.Sprintf("m%d", rng.IntN(4)), Outcome: "success",
			Session: fmt.Sprintf("sess-%08x", rng.Uint32()), Trace: fmt.Sprintf("trace_%016x", rng.Uint64())}
	}
	recs := make([]vellum.Record, 4096)
	for i := range recs {
		v := &vals[i]
		recs[i] = vellum.Record{TenantID: v.Tenant, UserID: v.User, Action: v.Action, Tool: vellum.Tool{Name: v.Tool}, Model: vellum.Model{Name: v.Model},
			Outcome: vellum.Outcome{Status: v.Outcome}, SessionID: v.Session, TraceID: v.Trace}
	}
	b.Run("values", func(b *testing.B) {
		c0 := cpu()
		var sink Values
		for i := 0; i < b.N; i++ {
			sink = ValuesOf(&recs[i%len(recs)])
		}
		_ = sink
		b.ReportMetric(float64(cpu()-c0)/float64(b.N), "cpu-ns/record")
	})
	var prev PostingsBuilder
	for j := range vals {
		prev.Add(&vals[j])
	}
	b.Run("add", func(b *testing.B) {
		c0 := cpu()
		defer func() { b.ReportMetric(float64(cpu()-c0)/float64(b.N*n), "cpu-ns/record") }()
		for i := 0; i < b.N; i++ {
			pb := prev.Next() // as the engine does at each seal
			for j := range vals {
				pb.Add(&vals[j])
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
	})
	// The engine's path: each record's values read back from its
	// encoding, the exact fields' hashes from its summary keys.
	encs := make([][]byte, n)
	keys := make([]Keys, n)
	for j := range vals {
		v := &vals[j]
		r := vellum.Record{TenantID: v.Tenant, UserID: v.User, Action: v.Action, Tool: vellum.Tool{Name: v.Tool}, Model: vellum.Model{Name: v.Model},
			Outcome: vellum.Outcome{Status: v.Outcome}, SessionID: v.Session, TraceID: v.Trace}
		encs[j], _ = r.AppendBinary(nil)
		keys[j] = KeysOf(r.TenantID, r.UserID, r.Action, r.Tool.Name, r.Model.Name, r.Outcome.Status)
	}
	b.Run("addkeyed", func(b *testing.B) {
		c0 := cpu()
		defer func() { b.ReportMetric(float64(cpu()-c0)/float64(b.N*n), "cpu-ns/record") }()
		var f vellum.Fields
		for i := 0; i < b.N; i++ {
			pb := prev.Next()
			for j := range encs {
				if err := vellum.PeekFields(encs[j], &f); err != nil {
					b.Fatal(err)
				}
				pb.AddKeyed(&f, &keys[j])
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
	})
	var pb PostingsBuilder
	for j := range vals {
		pb.Add(&vals[j])
	}
	b.Run("marshal", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			pb.Marshal()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
	})
}

func cpu() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
