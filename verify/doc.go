// Package verify checks a copy of a Vellum data directory, or an evidence
// bundle, offline and read-only: segment framing and CRCs, the HMAC chain
// (with the key), the links between segments, every Merkle root, and every
// signed checkpoint's signature and agreement with the data (with the
// public key). It reports the first place that does not verify with its
// file, offset and seq, and what was expected and found; and, so that a
// report never claims more than was checked, what the data holds (records
// read, unreadable, missing, with their ranges: a damaged segment is read
// as far as it can be, record by record, with segment.Salvage) and, check
// by check, whether it ran over everything, over part or not at all, and
// why (Report.Checks).
//
//	rep, err := verify.Dir("/copy/of/vellum-data", &verify.Options{
//		Keys:     chain.NewKeyring(hmacKey), // optional: MAC chain
//		Verifier: pub,                       // optional: checkpoint signatures
//	})
//	if err != nil { ... }                    // I/O or usage
//	if !rep.OK() { fmt.Println(rep.Problems[0]) }
//	rep.WriteText(os.Stdout, false)          // the report vellum verify prints
//
//	brep, err := verify.Bundle(file, pub)    // an exported evidence bundle
//
// Dir never takes the engine's lock and never writes. It checks segments in
// parallel (one worker per core by default: every block carries the MAC
// before it, so each segment's chain is checked on its own), hashes each
// segment's records (HMAC and Merkle leaf) in batches on a pool of as many
// workers, folding the results in seq order, so that every core has work
// even when fewer segments than cores are left, and then checks the links
// between segments, the log-wide tree and the checkpoints in order. The
// report does not depend on the number of workers. What
// each check proves is in docs/auditors.md; the formats are in
// segment/FORMAT.md.
//
// Functions are safe for concurrent use.
package verify
