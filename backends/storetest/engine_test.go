package storetest_test

import (
	"io"
	"log/slog"
	"testing"

	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/backends/storetest"
	"github.com/vellumlog/vellum/engine"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openEngine(t *testing.T, env storetest.Env) backends.Store {
	e, err := engine.Open(t.TempDir(), &engine.Options{Keys: env.Keys, Now: env.Now, MaxRecordSize: env.MaxRecordSize,
		Logger: quiet(), CheckpointInterval: -1, CheckpointRecords: -1})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestEngine runs the conformance suite against the segment engine.
func TestEngine(t *testing.T) {
	storetest.Run(t, openEngine, storetest.Caps{})
}
