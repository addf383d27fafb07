package server

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/cosign"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/witness"
)

func TestWitnessConfig(t *testing.T) {
	_, vkey, _ := cosign.GenerateKey("w.test")
	_, logKey, _ := checkpoint.GenerateKey("vellum")
	w := func(s string) string { return "audit:\n  witness:\n" + s }
	tests := []struct {
		name, yaml, key string
	}{
		{"one witness", w("    witnesses:\n      - {url: 'http://w:8090', key: '" + vkey + "'}\n"), ""},
		{"quorum 1 of 1", w("    quorum: 1\n    witnesses:\n      - {url: 'https://w', key_file: /etc/w.pub}\n"), ""},
		{"quorum above the witnesses", w("    quorum: 2\n    witnesses:\n      - {url: 'http://w', key: '" + vkey + "'}\n"), "audit.witness.quorum"},
		{"quorum without witnesses", w("    quorum: 1\n"), "audit.witness.quorum"},
		{"no url scheme", w("    witnesses:\n      - {url: 'w:8090', key: '" + vkey + "'}\n"), "audit.witness.witnesses[0].url"},
		{"no key", w("    witnesses:\n      - {url: 'http://w'}\n"), "audit.witness.witnesses[0].key"},
		{"both keys", w("    witnesses:\n      - {url: 'http://w', key: '" + vkey + "', key_file: f}\n"), "audit.witness.witnesses[0].key_file"},
		{"a log key is not a witness key", w("    witnesses:\n      - {url: 'http://w', key: '" + logKey + "'}\n"), "audit.witness.witnesses[0].key"},
		{"the same witness twice", w("    witnesses:\n      - {url: 'http://a', key: '" + vkey + "'}\n      - {url: 'http://b', key: '" + vkey + "'}\n"), "audit.witness.witnesses[1].key"},
		{"negative retry", w("    retry_max: -1s\n"), "audit.witness.retry_max"},
		{"not the segment store", "audit:\n  store: \"null\"\n  witness:\n    witnesses:\n      - {url: 'http://w', key: '" + vkey + "'}\n", "audit.witness"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.yaml), envOf(nil))
			if tt.key == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.key+":") {
				t.Fatalf("err = %v, want it to name %s", err, tt.key)
			}
		})
	}
}

// TestCosignedCheckpointServed: with a witness pusher, GET /v1/audit
// carries the checkpoint the witness cosigned beside the signed one, and
// /readyz each witness's state; a witness that refuses is an alarm there,
// and the server stays ready.
func TestCosignedCheckpointServed(t *testing.T) {
	priv, pub, _ := checkpoint.GenerateKey("test-log")
	signer, _ := note.NewSigner(priv)
	logKey, _ := note.NewVerifier(pub)
	key, _ := chain.GenerateKey()
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts := &engine.Options{Keys: chain.NewKeyring(key), Signer: signer, Logger: quiet, CheckpointInterval: -1}
	e, err := engine.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	origin := e.Origin()
	e.Close()

	watching, err := witness.Open(t.TempDir(), &witness.Options{Name: "w1.test", Logs: []witness.Log{{Origin: origin, Key: logKey}}})
	if err != nil {
		t.Fatal(err)
	}
	defer watching.Close()
	notWatching, err := witness.Open(t.TempDir(), &witness.Options{Name: "w2.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer notWatching.Close()
	s1, s2 := httptest.NewServer(watching.Handler()), httptest.NewServer(notWatching.Handler())
	defer s1.Close()
	defer s2.Close()
	p, err := witness.NewPusher(dir, &witness.PusherOptions{Quorum: 1, RetryMax: 50 * time.Millisecond, Targets: []witness.Target{
		{URL: s1.URL, Key: watching.Verifier()}, {URL: s2.URL, Key: notWatching.Verifier()}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	opts.OnCheckpoint = p.Notify
	e, err = engine.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	p.Start(e, nil)
	env := newTestServer(t, e, nil)
	env.srv.witness = p // as serve does through Options.Witness

	env.ingest(adminToken, event("tenant_id", "acme"), event("tenant_id", "acme"))
	cp, err := e.SignCheckpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if got, ok := p.LatestCosigned(); ok && got.Size == cp.Size {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the checkpoint was not cosigned")
		}
		time.Sleep(5 * time.Millisecond)
	}
	status, body, _ := env.do("GET", "/v1/audit", adminToken, nil)
	var got struct {
		CosignedCheckpoint *struct {
			TreeSize uint64 `json:"tree_size"`
			Note     string `json:"note"`
		} `json:"cosigned_checkpoint"`
	}
	if status != 200 || json.Unmarshal(body, &got) != nil || got.CosignedCheckpoint == nil {
		t.Fatalf("GET /v1/audit: %d %s", status, body)
	}
	c, err := cosign.Open([]byte(got.CosignedCheckpoint.Note), logKey, []note.Verifier{watching.Verifier()}, 1)
	if err != nil || c.Size != cp.Size {
		t.Fatalf("the served cosigned checkpoint: %v", err)
	}

	var ready struct {
		Status    string
		Witnesses []witness.Status
		Alarms    []string
	}
	for {
		status, body, _ = env.do("GET", "/readyz", "", nil)
		json.Unmarshal(body, &ready)
		if len(ready.Alarms) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if status != 200 || ready.Status != "ready" || len(ready.Witnesses) != 2 || ready.Witnesses[0].State != witness.StateOK ||
		ready.Witnesses[1].State != witness.StateRefused || ready.Witnesses[1].Kind != witness.KindUnknownLog ||
		len(ready.Alarms) != 1 || !strings.Contains(ready.Alarms[0], "does not watch origin") {
		t.Fatalf("readyz: %d %s", status, body)
	}
	_ = http.StatusOK
}
