package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/checkpoint"
)

// HMACKeyFile is the default name of the HMAC key inside a key directory.
const HMACKeyFile = "hmac.key"

func runKeygen(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("keygen", stderr)
	out := fl.String("out", "./vellum-keys", "directory to write the keys into (created with mode 0700)")
	name := fl.String("name", "vellum", "name of the checkpoint signing key (in every signature line); C2SP tlog-checkpoint recommends the log's origin, vellum/<store id>, which vellum serve prints when they differ")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	// Refuse before writing anything: keys are never overwritten, and a
	// half-written key directory helps nobody.
	for _, f := range []string{HMACKeyFile, checkpoint.PrivateKeyFile, checkpoint.PublicKeyFile} {
		p := filepath.Join(*out, f)
		if _, err := os.Lstat(p); err == nil {
			fmt.Fprintf(stderr, "vellum keygen: %s already exists; keygen never overwrites a key: choose another --out directory, or move the old keys away first\n", p)
			return 2
		}
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		fmt.Fprintf(stderr, "vellum keygen: %v\n", err)
		return 2
	}
	k, err := chain.GenerateKey()
	if err != nil {
		fmt.Fprintf(stderr, "vellum keygen: %v\n", err)
		return 2
	}
	path := filepath.Join(*out, HMACKeyFile)
	if err := chain.WriteKeyFile(path, k); err != nil {
		fmt.Fprintf(stderr, "vellum keygen: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "wrote HMAC key %s (key id %s, mode 0600)\n", path, k.ID())
	priv, pub, err := checkpoint.GenerateKey(*name)
	if err != nil {
		fmt.Fprintf(stderr, "vellum keygen: %v\n", err)
		return 2
	}
	privPath, pubPath := filepath.Join(*out, checkpoint.PrivateKeyFile), filepath.Join(*out, checkpoint.PublicKeyFile)
	if err := checkpoint.WriteKeyPair(privPath, pubPath, priv, pub); err != nil {
		fmt.Fprintf(stderr, "vellum keygen: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "wrote checkpoint signing key %s (Ed25519, mode 0600)\n", privPath)
	fmt.Fprintf(stdout, "wrote checkpoint public key %s: give it to auditors (vellum verify --pubkey)\n  %s\n", pubPath, pub)
	return 0
}
