package bench

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"

	"github.com/vellumlog/vellum"
)

// Gen produces realistic agent audit records of about 350 bytes encoded:
// tool calls, model decisions and approvals spread over tenants, users,
// sessions and models. It is deterministic for a seed and not safe for
// concurrent use.
type Gen struct {
	rng *rand.Rand
	n   int
}

// NewGen returns a generator seeded with seed.
func NewGen(seed uint64) *Gen { return &Gen{rng: rand.New(rand.NewPCG(seed, 0x7e11))} }

var (
	actions  = []string{"tool.call", "tool.result", "model.decision", "permission.decision", "approval.requested", "approval.granted", "request.start", "request.end"}
	tools    = []string{"web_search", "read_file", "send_email", "sql_query", "create_ticket", "http_get"}
	models   = []string{"granite-3.3-8b", "llama-3.1-70b", "gpt-4o", "claude-sonnet"}
	outcomes = []string{"success", "success", "success", "failure", "denied", "approved", "pending", "blocked"}
	cities   = []string{"Paris", "Berlin", "Tokyo", "Lagos", "Lima", "Oslo", "Austin", "Pune"}
)

// Next returns the next record.
func (g *Gen) Next() vellum.Record {
	g.n++
	r := g.rng
	tool := tools[r.IntN(len(tools))]
	return vellum.Record{
		EventID:   fmt.Sprintf("evt-%016x", r.Uint64()),
		TenantID:  fmt.Sprintf("tenant-%02d", r.IntN(20)),
		UserID:    fmt.Sprintf("user-%04d", r.IntN(2000)),
		AuthMode:  "gateway",
		Action:    actions[r.IntN(len(actions))],
		Agent:     "support-bot",
		SessionID: fmt.Sprintf("sess-%08x", r.Uint32()),
		TraceID:   fmt.Sprintf("trace_%016x", r.Uint64()),
		RequestID: fmt.Sprintf("req-%08x", r.Uint32()),
		Tool: vellum.Tool{
			Name:   tool,
			CallID: fmt.Sprintf("call_%d", r.IntN(1_000_000)),
			Arguments: json.RawMessage(fmt.Sprintf(`{"query":"weather in %s for day %d","max_results":%d,"lang":"en"}`,
				cities[r.IntN(len(cities))], r.IntN(365), 1+r.IntN(50))),
			DurationNS: int64(r.IntN(5_000_000_000)),
		},
		Model:   vellum.Model{Name: models[r.IntN(len(models))], Provider: "vllm", InputTokens: uint64(r.IntN(8000)), OutputTokens: uint64(r.IntN(800))},
		Outcome: vellum.Outcome{Status: outcomes[r.IntN(len(outcomes))]},
	}
}

// EncodedSize returns the canonical encoding size of r.
func EncodedSize(r *vellum.Record) int {
	b, _ := r.MarshalBinary()
	return len(b)
}
