// Package cosign makes and checks witness cosignatures: C2SP
// tlog-cosignature "cosignature/v1" signatures, with Ed25519, over a
// checkpoint's note body and the time it was cosigned. A witness cosigns a
// checkpoint only after checking that it extends the last one it cosigned
// for that log, so a checkpoint carrying cosignatures from witnesses the
// operator does not control cannot later be rolled back or forked without
// the data failing to match it.
//
//	skey, vkey, err := cosign.GenerateKey("witness.example/w1")
//	s, err := cosign.NewSigner(skey)
//	line, err := s.Cosign(signed.Marshal())      // "— witness.example/w1 <base64>\n"
//
//	v, err := cosign.NewVerifier(vkey)           // what auditors are given
//	c, err := cosign.Open(note, logVerifier, []note.Verifier{v}, 1)
//
// Keys are in the golang.org/x/mod/sumdb/note text formats with the
// cosignature/v1 signature type 0x04: "<name>+<8 hex key hash>+<base64 of
// 0x04 || 32-byte Ed25519 public key>", and "PRIVATE+KEY+<name>+<hash>+
// <base64 of 0x04 || 32-byte seed>" for the signer (readable by
// transparency-dev's note.NewSignerForCosignatureV1 and
// NewVerifierForCosignatureV1). Only crypto/ed25519 and crypto/sha256 from
// the standard library are used (FIPS 186-5, FIPS 180-4).
//
// Specifications: https://c2sp.org/tlog-cosignature,
// https://c2sp.org/signed-note, https://c2sp.org/tlog-checkpoint.
//
// Functions and types are safe for concurrent use.
package cosign
