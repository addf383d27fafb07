// Package step is the Go model of an agent server's step stream: the events
// that the agent servers of this ecosystem yield from astep_stream()
// (reasoning and content deltas, tool-call deltas, tool results, permission
// decisions, questions asked and answered, guardrails, limits, loop breaks,
// sub-agent lifecycle, stream completion) and their JSON form, as
// POST /v1/audit/steps accepts it. It knows nothing of audit records; the
// collector package maps steps to records.
//
// Decoding is strict: each step has a known "type", only the fields of that
// type (snake_case, case-sensitive, each at most once), and well-formed
// values; an error names the field, e.g. `steps[3].action: "maybe" is not
// one of allow, deny, ask`.
//
//	b, err := step.DecodeBatch(body) // {"context": {...}, "steps": [...]}
//	ev, err := step.Decode([]byte(`{"type":"loop_break","reason":"no progress"}`))
//	out, err := json.Marshal(ev) // only the fields of ev.Type
//
// The wire format is specified in docs/events.md ("Step stream") and in
// server/openapi.yaml. Functions here are pure and safe for concurrent use;
// an Event is a plain value.
package step
