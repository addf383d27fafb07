// Package collector records an agent's step stream as audit records: an
// AuditCollector wraps the stream (iter.Seq2[step.Event, error] in, the
// same out), lets every event through unchanged, and appends one record
// per significant step — model decision, complete tool call with its
// accumulated arguments, tool result, permission decision, approval asked
// and answered, guardrail, limit, loop break, sub-agent lifecycle, request
// start and end — to a Sink such as *engine.Engine, under a failure policy
// (AU-5): fail_closed or fail_open with a bounded spill file. Never
// sampled. The Mapper is the step → record mapping alone; the server's
// POST /v1/audit/steps runs the same one.
//
//	c, err := collector.New(eng, &collector.Options{Policy: collector.FailClosed, Timeout: 2 * time.Second})
//	ctx = collector.WithRequest(ctx, collector.Request{TenantID: "acme", UserID: "alice",
//		AuthMode: "gateway", SessionID: "s-1", TraceID: trace, Agent: "support-bot", Model: "granite"})
//	for ev, err := range c.Wrap(ctx, agent.Steps(ctx, input)) {
//		if err != nil { ... } // fail_closed: collector.ErrNotDurable, the step is withheld
//		send(ev)
//	}
//	m.WatchSpill("collector", c.SpillDepth) // vellum_spill_events, vellum_spill_bytes
//
// Exported API (stable): Sink, AuditCollector with New, Wrap, SetSink,
// Flush, Close, Stats, SpillDepth, Ready; Options and Policy (FailClosed, FailOpen);
// Request with WithRequest and RequestFrom; Gateway (NewGateway,
// Request: trusted-gateway identity from X-Auth-Subject / X-Tenant); Mapper with NewMapper, Map,
// Flush, Clone, Pending, Request, SetRequest; ErrNotDurable, ErrClosed,
// ErrOptions, ErrSpillCorrupt.
//
// An AuditCollector is safe for concurrent use; a Mapper is not. The
// event → record table and the spill file's layout are in docs/events.md
// (and spill.go).
package collector
