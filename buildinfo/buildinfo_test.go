package buildinfo

import (
	"crypto/fips140"
	"os"
	"runtime"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	in := Read()
	if in.GoVersion != runtime.Version() {
		t.Errorf("GoVersion %q, want %q", in.GoVersion, runtime.Version())
	}
	if in.Module != "" && in.Module != "github.com/vellumlog/vellum" {
		t.Errorf("Module %q", in.Module)
	}
	if in.Version == "" {
		t.Error("empty Version")
	}
	want := "off"
	if strings.Contains(os.Getenv("GODEBUG"), "fips140=only") {
		want = "only"
	} else if fips140.Enabled() {
		want = "on"
	}
	if in.FIPS != want {
		t.Errorf("FIPS %q, want %q (GODEBUG=%q)", in.FIPS, want, os.Getenv("GODEBUG"))
	}
	if (in.FIPSModule != "") != fips140.Enabled() {
		t.Errorf("FIPSModule %q with fips140.Enabled() %v", in.FIPSModule, fips140.Enabled())
	}
}
