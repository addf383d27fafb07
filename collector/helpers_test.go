package collector

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"iter"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/step"
	"github.com/vellumlog/vellum/vfs"
)

func testKey(t testing.TB) *chain.Keyring {
	t.Helper()
	k, err := chain.NewKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return chain.NewKeyring(k)
}

func openEngine(t testing.TB, fs vfs.FS, dir string) *engine.Engine {
	t.Helper()
	e, err := engine.Open(dir, &engine.Options{Keys: testKey(t), FS: fs, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// stream yields evs, as an agent's step stream would.
func stream(evs []step.Event) iter.Seq2[step.Event, error] {
	return func(yield func(step.Event, error) bool) {
		for _, ev := range evs {
			if !yield(ev, nil) {
				return
			}
		}
	}
}

// loadSession reads a recorded session: a header line {"context": {...}}
// and one step per line.
func loadSession(t testing.TB, path string) (step.Context, []step.Event) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var hdr struct{ Context step.Context }
	var evs []step.Event
	for n := 1; sc.Scan(); n++ {
		if n == 1 {
			if err := json.Unmarshal(sc.Bytes(), &hdr); err != nil {
				t.Fatalf("%s:1: %v", path, err)
			}
			continue
		}
		ev, err := step.Decode(sc.Bytes())
		if err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
		evs = append(evs, ev)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return hdr.Context, evs
}

func sessionRequest(c step.Context) Request {
	return Request{TenantID: "acme", UserID: "alice", AuthMode: c.AuthMode, SessionID: c.SessionID,
		TraceID: c.TraceID, Agent: c.Agent, Model: c.Model, RequestID: "req-1"}
}

var bg = context.Background()

func fixedNow() time.Time { return time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC) }
