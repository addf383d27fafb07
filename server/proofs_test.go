package server

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/merkle"
)

// TestRecordWithInclusionProof: with a signing store, GET /v1/audit/:seq
// returns the record with an inclusion proof against the latest signed
// checkpoint, and an auditor holding only the public key can check both.
// GET /v1/audit carries the checkpoint too.
func TestRecordWithInclusionProof(t *testing.T) {
	priv, pub, err := checkpoint.GenerateKey("test-log")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(priv)
	verifier, _ := note.NewVerifier(pub)
	key, _ := chain.GenerateKey()
	e, err := engine.Open(t.TempDir(), &engine.Options{Keys: chain.NewKeyring(key), Signer: signer,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	env := newTestServer(t, e, nil)
	var evs []string
	for i := 0; i < 10; i++ {
		evs = append(evs, event("tenant_id", "acme", "user_id", fmt.Sprintf("u%d", i)))
	}
	env.ingest(adminToken, evs...)
	if _, err := e.SignCheckpoint(t.Context()); err != nil {
		t.Fatal(err)
	}
	status, body, _ := env.do("GET", "/v1/audit/7", adminToken, nil)
	if status != http.StatusOK {
		t.Fatalf("GET: %d %s", status, body)
	}
	var got struct {
		vellum.Record
		InclusionProof *merkle.InclusionProof `json:"inclusion_proof"`
		Checkpoint     *struct {
			TreeSize uint64 `json:"tree_size"`
			RootHash string `json:"root_hash"`
			Note     string `json:"note"`
		} `json:"checkpoint"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Seq != 7 || got.InclusionProof == nil || got.Checkpoint == nil {
		t.Fatalf("response lacks the record, proof or checkpoint: %s", body)
	}
	signed, err := checkpoint.Open([]byte(got.Checkpoint.Note), verifier)
	if err != nil {
		t.Fatalf("checkpoint does not verify with the public key: %v", err)
	}
	if base64.StdEncoding.EncodeToString(signed.Root[:]) != got.Checkpoint.RootHash || signed.Size != got.Checkpoint.TreeSize {
		t.Fatal("checkpoint fields differ from its signed note")
	}
	enc, _ := got.Record.MarshalBinary()
	if err := merkle.VerifyInclusion(got.InclusionProof, merkle.LeafHash(enc, got.MAC), signed.Root); err != nil {
		t.Fatalf("inclusion proof does not verify: %v", err)
	}
	// A changed record no longer verifies against the signed root.
	got.Record.UserID = "mallory"
	enc, _ = got.Record.MarshalBinary()
	if merkle.VerifyInclusion(got.InclusionProof, merkle.LeafHash(enc, got.MAC), signed.Root) == nil {
		t.Fatal("a changed record verified")
	}
	if status, body, _ := env.do("GET", "/v1/audit?limit=1", adminToken, nil); status != 200 || !json.Valid(body) ||
		!containsKey(body, "checkpoint") {
		t.Fatalf("list without checkpoint: %d %s", status, body)
	}
}

func containsKey(body []byte, k string) bool {
	var m map[string]json.RawMessage
	json.Unmarshal(body, &m)
	_, ok := m[k]
	return ok
}
