// Package buildinfo says which build of Vellum is running: the module
// version, the VCS commit it was built from, the Go version, and whether
// the FIPS 140-3 module is enabled or enforced. `vellum version` prints it
// and the vellum_build_info metric carries it.
//
//	info := buildinfo.Read()
//	fmt.Println(info.Version, info.Commit, info.FIPS)
//
// Read is safe for concurrent use.
package buildinfo

import (
	"crypto/fips140"
	"runtime"
	"runtime/debug"
)

// Info describes the running binary.
type Info struct {
	// Module is the main module's path.
	Module string `json:"module"`
	// Version is the main module's version: a tag, a pseudo-version, or
	// "(devel)" for a build from a work tree.
	Version string `json:"version"`
	// Commit is the VCS revision the binary was built from ("" when the
	// build had no VCS information, such as `go test` or `go run`).
	Commit string `json:"commit,omitempty"`
	// CommitTime is the revision's commit time (RFC 3339).
	CommitTime string `json:"commit_time,omitempty"`
	// Modified reports uncommitted changes in the work tree at build time.
	Modified bool `json:"modified,omitempty"`
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string `json:"go_version"`
	// FIPS is "off", "on" (the FIPS 140-3 module is enabled) or "only"
	// (enabled, and non-approved algorithms are refused:
	// GODEBUG=fips140=only).
	FIPS string `json:"fips140"`
	// FIPSModule is the version of the Go Cryptographic Module.
	FIPSModule string `json:"fips140_module,omitempty"`
}

// Read returns the running binary's build information.
func Read() Info {
	in := Info{Version: "(unknown)", GoVersion: runtime.Version(), FIPS: FIPSMode()}
	if fips140.Enabled() {
		in.FIPSModule = fips140.Version()
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return in
	}
	in.Module = bi.Main.Path
	if bi.Main.Version != "" {
		in.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Commit = s.Value
		case "vcs.time":
			in.CommitTime = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	return in
}

// FIPSMode returns "only" when FIPS 140-3 mode is enforced, "on" when it
// is enabled, and "off" otherwise.
func FIPSMode() string {
	switch {
	case fips140.Enforced():
		return "only"
	case fips140.Enabled():
		return "on"
	}
	return "off"
}
