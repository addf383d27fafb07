// Package witness is Vellum's transparency-log witness and the store's
// client for it. A witness is a separate process, run by someone other
// than the store's operator, that cosigns a store's checkpoint only after
// checking that it extends the last checkpoint it cosigned for that store
// (a consistency proof), and refuses a rollback, a fork or a bad signature
// loudly. With cosigned checkpoints an auditor catches a store that was
// rolled back to an earlier copy, or rewritten and re-signed with its own
// key, without having kept a checkpoint of their own.
//
// The witness side (`vellum witness`):
//
//	w, err := witness.Open("/var/lib/vellum-witness", &witness.Options{
//		Logs: []witness.Log{{Origin: "vellum/0123…", Key: storeKey}},
//	})
//	http.ListenAndServe(addr, w.Handler())  // POST /add-checkpoint, GET /checkpoint, GET /alarms
//
// The store side (`vellum serve` with audit.witness configured):
//
//	p, err := witness.NewPusher(dataDir, &witness.PusherOptions{Targets: targets, Quorum: 1})
//	eng, err := engine.Open(dataDir, &engine.Options{..., OnCheckpoint: p.Notify})
//	p.Start(eng, latest)
//	cosigned, ok := p.LatestCosigned()
//
// The HTTP protocol is C2SP tlog-witness (https://c2sp.org/tlog-witness)
// add-checkpoint, and cosignatures are C2SP tlog-cosignature v1 (package
// cosign). The witness's files (key pair, state, alarm log), its two
// read endpoints and the deviations from the spec are in docs/witness.md.
//
// A Witness and a Pusher are safe for concurrent use. The witness checks
// and persists one request at a time (the check of the old size and the
// write of the new view are one step, as the spec requires), and fsyncs
// its view before it answers.
package witness
