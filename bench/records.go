package bench

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/vellumlog/vellum"
)

// Gen produces realistic agent audit records of about 350 bytes encoded:
// tool calls, model decisions and approvals spread over tenants, users,
// sessions and models. It is deterministic for a seed, cheap enough not to
// dominate a benchmark (string pools, no fmt), and not safe for concurrent
// use.
type Gen struct {
	rng *rand.Rand
	n   int
	buf []byte
}

// NewGen returns a generator seeded with seed.
func NewGen(seed uint64) *Gen { return &Gen{rng: rand.New(rand.NewPCG(seed, 0x7e11))} }

var (
	actions  = []string{"tool.call", "tool.result", "model.decision", "permission.decision", "approval.requested", "approval.granted", "request.start", "request.end"}
	tools    = []string{"web_search", "read_file", "send_email", "sql_query", "create_ticket", "http_get"}
	models   = []string{"granite-3.3-8b", "llama-3.1-70b", "gpt-4o", "claude-sonnet"}
	outcomes = []string{"success", "success", "success", "failure", "denied", "approved", "pending", "blocked"}
	cities   = []string{"Paris", "Berlin", "Tokyo", "Lagos", "Lima", "Oslo", "Austin", "Pune"}
	tenants  = pool(20, func(i int) string { return fmt.Sprintf("tenant-%02d", i) })
	users    = pool(2000, func(i int) string { return fmt.Sprintf("user-%04d", i) })
)

func pool(n int, f func(int) string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

func (g *Gen) hex(prefix string, v uint64, digits int) string {
	g.buf = append(g.buf[:0], prefix...)
	const hexd = "0123456789abcdef"
	for i := digits - 1; i >= 0; i-- {
		g.buf = append(g.buf, hexd[(v>>(4*uint(i)))&15])
	}
	return string(g.buf)
}

// Next returns the next record.
func (g *Gen) Next() vellum.Record {
	g.n++
	r := g.rng
	g.buf = append(g.buf[:0], `{"query":"weather in `...)
	g.buf = append(g.buf, cities[r.IntN(len(cities))]...)
	g.buf = append(g.buf, " for day "...)
	g.buf = strconv.AppendInt(g.buf, int64(r.IntN(365)), 10)
	g.buf = append(g.buf, `","max_results":`...)
	g.buf = strconv.AppendInt(g.buf, int64(1+r.IntN(50)), 10)
	g.buf = append(g.buf, `,"lang":"en"}`...)
	args := json.RawMessage(append([]byte(nil), g.buf...))
	return vellum.Record{
		EventID:   g.hex("evt-", r.Uint64(), 16),
		TenantID:  tenants[r.IntN(len(tenants))],
		UserID:    users[r.IntN(len(users))],
		AuthMode:  "gateway",
		Action:    actions[r.IntN(len(actions))],
		Agent:     "support-bot",
		SessionID: g.hex("sess-", uint64(r.Uint32()), 8),
		TraceID:   g.hex("trace_", r.Uint64(), 16),
		RequestID: g.hex("req-", uint64(r.Uint32()), 8),
		Tool: vellum.Tool{
			Name:       tools[r.IntN(len(tools))],
			CallID:     g.hex("call_", uint64(r.IntN(1_000_000)), 5),
			Arguments:  args,
			DurationNS: int64(r.IntN(5_000_000_000)),
		},
		Model:   vellum.Model{Name: models[r.IntN(len(models))], Provider: "vllm", InputTokens: uint64(r.IntN(8000)), OutputTokens: uint64(r.IntN(800))},
		Outcome: vellum.Outcome{Status: outcomes[r.IntN(len(outcomes))]},
	}
}

// EncodedSize returns the canonical encoding size of r.
func EncodedSize(r *vellum.Record) int { return r.EncodedSize() }
