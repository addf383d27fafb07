package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/vellumlog/vellum/buildinfo"
)

func runVersion(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("version", stderr)
	asJSON := fl.Bool("json", false, "print JSON")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	in := buildinfo.Read()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(in)
		return 0
	}
	commit := in.Commit
	if commit == "" {
		commit = "unknown (built without VCS information)"
	} else if in.Modified {
		commit += " (with uncommitted changes)"
	}
	fmt.Fprintf(stdout, "vellum %s\n  module   %s\n  commit   %s\n", in.Version, in.Module, commit)
	if in.CommitTime != "" {
		fmt.Fprintf(stdout, "  date     %s\n", in.CommitTime)
	}
	fmt.Fprintf(stdout, "  go       %s\n  fips140  %s", in.GoVersion, in.FIPS)
	if in.FIPSModule != "" {
		fmt.Fprintf(stdout, " (Go Cryptographic Module %s)", in.FIPSModule)
	}
	fmt.Fprintln(stdout)
	return 0
}
