package null_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/backends/null"
	"github.com/vellumlog/vellum/backends/storetest"
)

// TestConformance runs the cases that apply to a store that keeps nothing.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env storetest.Env) backends.Store {
		return null.Open(slog.New(slog.DiscardHandler), env.MaxRecordSize)
	}, storetest.Caps{Discards: true})
}

// TestLoud: opening it says, at error level, that records are discarded.
func TestLoud(t *testing.T) {
	var buf bytes.Buffer
	null.Open(slog.New(slog.NewTextHandler(&buf, nil)), 0).Close()
	if !strings.Contains(buf.String(), "level=ERROR") || !strings.Contains(buf.String(), "DISCARDED") {
		t.Errorf("log: %s", buf.String())
	}
}
