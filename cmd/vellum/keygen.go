package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/vellumlog/vellum/chain"
)

// HMACKeyFile is the default name of the HMAC key inside a key directory.
const HMACKeyFile = "hmac.key"

func runKeygen(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("keygen", stderr)
	out := fl.String("out", "./vellum-keys", "directory to write the keys into (created with mode 0700)")
	if code, ok := parse(fl, args); !ok {
		return code
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
	return 0
}
