// Package chain computes and checks the HMAC-SHA256 chain that links every
// record of a Vellum log to the one before it, and loads the keys it runs
// under. MAC_n = HMAC-SHA256(key, MAC_{n-1} || encoded record n); the value
// before the first record (genesis) is derived from the store id and key id.
//
//	key, err := chain.LoadKeyFile("/etc/vellum/hmac.key") // 0600, hex, >= 32 bytes
//	h := key.NewHasher()
//	prev := chain.Genesis(storeID, key.ID())
//	mac := h.Next(prev, encoded)
//
// Key and Keyring are safe for concurrent use; a Hasher is not (make one per
// goroutine). This is the only package besides redact (keyed pseudonyms)
// that imports crypto/hmac; it uses nothing but crypto/hmac and
// crypto/sha256, so it runs under GODEBUG=fips140=only. The chain is
// specified in segment/FORMAT.md ("Chain").
package chain
