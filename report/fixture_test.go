package report

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/redact"
)

// fixtureStart is the receipt time of the first fixture record.
var fixtureStart = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)

// fixture is a store with a realistic mix of records over two weeks:
// three tenants, tool calls with PII in their arguments (so redaction
// rules fire), decisions denied, pending, failed and blocked, tool errors,
// several sealed segments, and signed checkpoints.
type fixture struct {
	dir, pub string
	n        int
	key      *chain.Key
}

var (
	fixtureActions  = []string{"tool.call", "tool.result", "model.decision", "permission.decision", "approval.requested", "approval.granted", "approval.denied", "request.start"}
	fixtureTools    = []string{"web_search", "read_file", "send_email", "sql_query", "create_ticket"}
	fixtureTenants  = []string{"acme", "globex", "initech"}
	fixtureStatuses = []string{"success", "success", "success", "success", "failure", "denied", "approved", "pending", "blocked"}
	fixtureArgs     = []string{`{"query":"weather in Paris"}`, `{"to":"jane.doe@example.com","body":"call me"}`, `{"phone":"+1 415 555 0134"}`, `{"path":"/etc/hosts"}`, `{"card":"4111 1111 1111 1111"}`}
)

// buildFixture writes n records spread evenly over days days.
func buildFixture(t testing.TB, n, days int) *fixture {
	t.Helper()
	dir := t.TempDir()
	key, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	sk, vk, err := checkpoint.GenerateKey("vellum-test")
	if err != nil {
		t.Fatal(err)
	}
	keyDir := t.TempDir()
	priv, pub := filepath.Join(keyDir, "signing.key"), filepath.Join(keyDir, "signing.pub")
	if err := checkpoint.WriteKeyPair(priv, pub, sk, vk); err != nil {
		t.Fatal(err)
	}
	signer, err := checkpoint.LoadSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	red, err := redact.New(redact.Config{Presets: []string{"default", "pci"}}, redact.Options{PseudonymKey: pk.Secret()})
	if err != nil {
		t.Fatal(err)
	}
	step := time.Duration(days) * 24 * time.Hour / time.Duration(n)
	var mu sync.Mutex
	clock := fixtureStart
	e, err := engine.Open(dir, &engine.Options{
		Keys:        chain.NewKeyring(key),
		SegmentSize: 256 << 10,
		// Small spans, and no sealing by age (the fake clock runs days in
		// seconds): the layout depends on the records alone.
		BlockSize:  8 << 10,
		SegmentAge: 1 << 62,
		Redactor:   red,
		Signer:     signer,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return clock
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	ctx := context.Background()
	for i := 0; i < n; i++ {
		mu.Lock()
		clock = fixtureStart.Add(time.Duration(i) * step)
		mu.Unlock()
		r := vellum.Record{
			EventID:  fmt.Sprintf("e-%d", i),
			TenantID: fixtureTenants[rng.IntN(len(fixtureTenants))],
			UserID:   fmt.Sprintf("user-%d", rng.IntN(40)),
			Action:   fixtureActions[rng.IntN(len(fixtureActions))],
			Agent:    "support-bot",
			Outcome:  vellum.Outcome{Status: fixtureStatuses[rng.IntN(len(fixtureStatuses))]},
		}
		if r.Action == "tool.call" || r.Action == "tool.result" {
			r.Tool = vellum.Tool{Name: fixtureTools[rng.IntN(len(fixtureTools))], Arguments: json.RawMessage(fixtureArgs[rng.IntN(len(fixtureArgs))])}
			r.Tool.IsError = r.Action == "tool.result" && rng.IntN(6) == 0
		}
		if _, err := e.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.SignCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return &fixture{dir: dir, pub: pub, n: n, key: key}
}
