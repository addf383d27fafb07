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
// at once. Inside, each part owns its state (ARCHITECTURE.md has the whole
// picture):
//
//   - Appending goroutines prepare their records (Prepare: validate,
//     redact, encode) in parallel, then stamp and chain them into the
//     batch being filled, under the committer's lock (committer.go).
//   - One flush loop goroutine writes whatever arrived while the previous
//     batch was written and synced, fsyncs it, and releases its callers
//     (group commit); an appending goroutine that finds the committer idle
//     writes its own batch the same way. Only the flush loop seals full or
//     old segments (rotate.go).
//   - The tree goroutine hashes durable records into the log-wide Merkle
//     tree and signs checkpoints (tree.go, checkpoint.go); a batch of a few
//     records is hashed by whoever wrote it when nothing is queued for the
//     tree goroutine (tree.hand).
//   - The postings goroutine adds durable records to the active segment's
//     postings, off the commit path (postings.go); a batch of a few records
//     is added by whoever wrote it when nothing is queued for it
//     (indexer.handPostings).
//   - Readers work from an immutable snapshot that the committer swaps
//     together with the time index after each durable batch (indexer.go);
//     they never block it.
//
// A directory is opened by one process at a time (an flock on DIR/LOCK).
//
// The on-disk format and the recovery procedure are specified in
// segment/FORMAT.md.
package engine
