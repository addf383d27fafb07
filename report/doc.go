// Package report makes the compliance report: one self-contained HTML page
// (inline CSS and SVG; no scripts, fonts or stylesheets from anywhere, so it
// opens offline and can be handed to an auditor as a file) with charts drawn
// by gonum/plot — records per day by outcome, top actions and tools, denied
// and approval-pending decisions over time, failures, redaction hits by
// rule, per-tenant activity — and the integrity section: the latest signed
// checkpoint, its signature and root checked against the data, the public
// key's fingerprint, retention and legal holds as configured, and the
// commands to re-verify offline.
//
//	err := report.Generate(ctx, f, &report.Options{Dir: "/var/lib/vellum",
//		Filter: report.Filter{Since: since, Until: until}})
//
// Aggregate reads every segment once, in parallel, without a lock: it works
// beside a running server or on a copy. `vellum report` and GET
// /v1/admin/report both use it. Functions are safe for concurrent use; a
// Report is not modified after Build.
package report
