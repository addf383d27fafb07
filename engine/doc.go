// Package engine is Vellum's embedded, append-only audit store: it assigns
// sequence numbers and receipt times, redacts, encodes, HMAC-chains and
// group-commits records into segment files, and acknowledges a record only
// after its bytes are fsync'd. It recovers a torn tail on open, refuses
// anything else that does not verify, and fails closed on I/O errors.
//
//	keys := chain.NewKeyring(key)
//	e, err := engine.Open("/var/lib/vellum", &engine.Options{Keys: keys})
//	seqs, err := e.Append(ctx, vellum.Record{Action: "tool.call", ...})
//	rec, err := e.Get(ctx, seqs[0])
//	for r, err := range e.Scan(ctx, 1, 0) { ... }
//	err = e.Close()
//
// An Engine is safe for concurrent use: many goroutines may append and read
// at once. One writer goroutine takes every record handed in while the
// previous batch was being written and commits them with one fsync (group
// commit); readers work from an immutable snapshot and never block it. A
// directory is opened by one process at a time (an flock on DIR/LOCK).
//
// The on-disk format and the recovery procedure are specified in
// segment/FORMAT.md.
package engine
