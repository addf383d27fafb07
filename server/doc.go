// Package server is Vellum's HTTP API and the configuration of the
// standalone server: agents in any language ingest events with
// POST /v1/audit/events, and auditors query the log with GET /v1/audit and
// GET /v1/audit/{seq}, every such read itself appended as an audit.query
// record before it is answered.
//
//	cfg, err := server.LoadConfig("vellum.yaml") // ${VAR} substituted, unknown keys rejected
//	store, err := engine.Open(cfg.DataDir, ...)   // anything implementing server.Store
//	srv, err := server.New(cfg, store, &server.Options{Logger: logger, CursorKey: key.Derive(query.CursorKeyLabel)})
//	go srv.ListenAndServe()
//	...
//	srv.Shutdown(ctx) // stop accepting, wait for in-flight requests
//
// Callers authenticate with bearer tokens (Authenticator) or, with
// tls.client_ca_file, a client certificate bound to a principal: admin
// reads and ingests, auditor reads (optionally only some tenants), ingest
// appends (optionally only for some tenants), metrics scrapes GET /metrics
// only. Tokens are kept only as SHA-256 hashes and compared in constant
// time. Errors are {"detail": "..."} with 400 for a bad parameter or event
// (named), 401, 403, 404, 409 (a step batch out of order), 413, 415, 501
// (what the store cannot do), 503 while the store has failed, and 507
// while free disk space is below audit.disk.min_free.
//
// A Server and an Authenticator are safe for concurrent use; a ServerConfig
// is plain data. Logs never contain tokens, keys, query filters or record
// contents. The API is specified in openapi.yaml beside this file and
// described in docs/api.md; the event schema in docs/events.md.
package server
