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

func init() {
	helps["version"] = helpText{
		usage: "version [--json]",
		description: `Prints which build this is: the module version, the VCS commit it was
built from (when the build recorded one), the Go version, and the FIPS
140-3 mode in force: off, on, or only (GODEBUG=fips140=only: non-approved
algorithms are refused). The vellum_build_info metric carries the same.`,
		examples: `vellum version
GODEBUG=fips140=only vellum version --json`,
	}
}
