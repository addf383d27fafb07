// Package vellum defines the audit record that every other package of the
// module stores, chains, indexes, redacts and serves, together with its
// canonical binary encoding (the exact bytes the HMAC chain covers) and its
// JSON form (snake_case, used by the HTTP API and exports).
//
// A Record answers the questions of NIST SP 800-53 AU-3: who (tenant, user or
// service, how authenticated), what (action, tool and arguments, model and
// provider), when (UTC, nanoseconds, monotonic with Seq), where (agent,
// session, trace and request ids) and with which outcome. The store fills in
// Seq, Time, KeyID, PrevMAC and MAC; the redactor fills in Redactions.
//
//	rec := vellum.Record{
//		TenantID: "acme", UserID: "alice", Action: "tool.call",
//		Tool:     vellum.Tool{Name: "web_search", Arguments: json.RawMessage(`{"q":"x"}`)},
//		Outcome:  vellum.Outcome{Status: vellum.StatusSuccess},
//	}
//	b, err := rec.AppendBinary(nil) // canonical bytes, format version 1
//
// Record values are plain data: safe to share between goroutines as long as
// nobody mutates them. The binary format is specified in segment/FORMAT.md
// ("Record encoding").
package vellum
