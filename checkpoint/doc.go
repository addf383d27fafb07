// Package checkpoint makes, signs, opens and stores Vellum's signed
// checkpoints: a statement "the log with this origin had this many records
// and this Merkle root", signed with Ed25519, that lets anyone holding the
// public key check records and the log's growth without the HMAC key.
//
//	c := checkpoint.Checkpoint{Origin: "vellum/0123...", Size: n, Root: root}
//	s, err := checkpoint.Sign(c, signer)          // C2SP signed note
//	got, err := checkpoint.Open(s.Note, verifier) // checks the signature
//
//	l, err := checkpoint.OpenLog(fs, dir+"/checkpoints") // recovers a torn tail
//	err = l.Append(s)
//
// The body is a C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint)
// and the signature a C2SP signed note (https://c2sp.org/signed-note), made
// with golang.org/x/mod/sumdb/note, the Go checksum database's
// implementation. Keys are in that package's text formats; the public key
// is one line an auditor can be handed. The checkpoint log file is
// specified in segment/FORMAT.md ("Checkpoint log").
//
// Functions are safe for concurrent use; a Log is not (the engine's
// checkpoint goroutine owns it).
package checkpoint
