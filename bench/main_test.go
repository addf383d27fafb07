package bench

import (
	"os"
	"testing"
)

// cleanups run after every benchmark of the process: stores built once and
// shared across benchmarks register their removal here.
var cleanups []func()

func TestMain(m *testing.M) {
	code := m.Run()
	for _, f := range cleanups {
		f()
	}
	os.Exit(code)
}
