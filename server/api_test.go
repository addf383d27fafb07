package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	tdproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/export"
)

// newSigningStore opens a real engine that signs checkpoints, and returns
// it with the verifier of its key.
func newSigningStore(t *testing.T) (*engine.Engine, note.Verifier) {
	t.Helper()
	priv, pub, err := checkpoint.GenerateKey("test-log")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(priv)
	verifier, _ := note.NewVerifier(pub)
	key, _ := chain.GenerateKey()
	e, err := engine.Open(t.TempDir(), &engine.Options{Keys: chain.NewKeyring(key), Signer: signer, Origin: "test-log",
		CheckpointInterval: -1, CheckpointRecords: -1, SegmentSize: 8 << 10,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, verifier
}

// signNow asks POST /v1/audit/checkpoints for a checkpoint and opens it
// with the public key.
func (e *testEnv) signNow(v note.Verifier) checkpoint.Signed {
	e.t.Helper()
	status, body, _ := e.do("POST", "/v1/audit/checkpoints", adminToken, nil)
	if status != http.StatusOK {
		e.t.Fatalf("POST /v1/audit/checkpoints: %d %s", status, body)
	}
	var cj checkpointJSON
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cj); err != nil {
		e.t.Fatal(err)
	}
	s, err := checkpoint.Open([]byte(cj.Note), v)
	if err != nil {
		e.t.Fatalf("the checkpoint does not verify: %v", err)
	}
	if s.Size != cj.TreeSize || s.Root != cj.RootHash || s.Origin != cj.Origin {
		e.t.Fatalf("fields %+v differ from the signed note %+v", cj, s.Checkpoint)
	}
	return s
}

func b64s(hs []string) [][]byte {
	out := make([][]byte, len(hs))
	for i, h := range hs {
		out[i] = mustB64(h)
	}
	return out
}

// TestLeafInput: leaf_input is the exact bytes whose SHA-256(0x00 || ...)
// is the leaf, checked here with transparency-dev's verifier alone, for
// records whose arguments carry whitespace that re-encoding the JSON would
// lose.
func TestLeafInput(t *testing.T) {
	store, v := newSigningStore(t)
	e := newTestServer(t, store, nil)
	args := []string{`{"q":  "a  b"}`, "{\n  \"q\": [1, 2,\t3]\n}", `"just a string"`, `{ }`}
	var seqs []uint64
	for _, a := range args {
		ev := `{"tenant_id":"acme","action":"tool.call","tool":{"name":"t","arguments":` + a + `},"outcome":{"status":"success"}}`
		seqs = append(seqs, e.ingest(ingestToken, ev)...)
	}
	cp := e.signNow(v)
	for i, seq := range seqs {
		status, body, _ := e.do("GET", fmt.Sprintf("/v1/audit/%d", seq), adminToken, nil)
		if status != 200 {
			t.Fatalf("%d %s", status, body)
		}
		var got struct {
			vellum.Record
			InclusionProof struct {
				LeafIndex uint64   `json:"leaf_index"`
				TreeSize  uint64   `json:"tree_size"`
				Hashes    []string `json:"hashes"`
				LeafInput string   `json:"leaf_input"`
			} `json:"inclusion_proof"`
			Checkpoint checkpointJSON `json:"checkpoint"`
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		var compact bytes.Buffer
		json.Compact(&compact, []byte(args[i]))
		if string(got.Tool.Arguments) != compact.String() {
			t.Fatalf("arguments %q, sent %q", got.Tool.Arguments, args[i])
		}
		input := mustB64(got.InclusionProof.LeafInput)
		leaf := sha256.Sum256(append([]byte{0}, input...))
		p := got.InclusionProof
		if p.TreeSize != cp.Size || p.LeafIndex != seq-1 {
			t.Fatalf("proof for leaf %d of %d", p.LeafIndex, p.TreeSize)
		}
		if err := tdproof.VerifyInclusion(rfc6962.DefaultHasher, p.LeafIndex, p.TreeSize, leaf[:], b64s(p.Hashes), cp.Root[:]); err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		// The input is the canonical encoding, then the MAC; it says
		// what the JSON says.
		if !bytes.Equal(input[len(input)-32:], got.MAC[:]) {
			t.Fatal("leaf_input does not end with the record's MAC")
		}
		var dec vellum.Record
		if err := dec.UnmarshalBinary(input[:len(input)-32]); err != nil {
			t.Fatal(err)
		}
		dec.KeyID, dec.PrevMAC, dec.MAC = got.KeyID, got.PrevMAC, got.MAC
		a, _ := json.Marshal(dec)
		b, _ := json.Marshal(got.Record)
		if !bytes.Equal(a, b) {
			t.Fatalf("leaf_input decodes to\n%s\nthe JSON says\n%s", a, b)
		}
		// One flipped byte no longer verifies.
		input[5] ^= 1
		bad := sha256.Sum256(append([]byte{0}, input...))
		if tdproof.VerifyInclusion(rfc6962.DefaultHasher, p.LeafIndex, p.TreeSize, bad[:], b64s(p.Hashes), cp.Root[:]) == nil {
			t.Fatal("an altered leaf input verified")
		}
	}
}

// TestConsistencyEndpoint checks GET /v1/audit/consistency between every
// pair of signed checkpoint sizes (the size-0 start included) with
// transparency-dev's verifier, and its refusals.
func TestConsistencyEndpoint(t *testing.T) {
	store, v := newSigningStore(t)
	e := newTestServer(t, store, nil)
	cps := []checkpoint.Signed{{Checkpoint: checkpoint.Checkpoint{Size: 0, Root: [32]byte(rfc6962.DefaultHasher.EmptyRoot())}}}
	for _, n := range []int{1, 2, 5, 9, 30, 64} {
		evs := make([]string, n)
		for i := range evs {
			evs[i] = event("tenant_id", "acme", "user_id", "u"+strconv.Itoa(i))
		}
		e.ingest(ingestToken, evs...)
		cps = append(cps, e.signNow(v))
	}
	for _, a := range cps {
		for _, b := range cps {
			if a.Size > b.Size {
				continue
			}
			status, body, _ := e.do("GET", fmt.Sprintf("/v1/audit/consistency?first=%d&second=%d", a.Size, b.Size), auditToken, nil)
			if status != 200 {
				t.Fatalf("%d..%d: %d %s", a.Size, b.Size, status, body)
			}
			var got struct {
				First  uint64   `json:"first"`
				Second uint64   `json:"second"`
				Hashes []string `json:"hashes"`
			}
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil || got.First != a.Size || got.Second != b.Size || got.Hashes == nil {
				t.Fatalf("%s: %v", body, err)
			}
			if err := tdproof.VerifyConsistency(rfc6962.DefaultHasher, a.Size, b.Size, b64s(got.Hashes), a.Root[:], b.Root[:]); err != nil {
				t.Fatalf("%d..%d: %v", a.Size, b.Size, err)
			}
			if len(got.Hashes) > 0 {
				h := b64s(got.Hashes)
				h[0][0] ^= 1
				if tdproof.VerifyConsistency(rfc6962.DefaultHasher, a.Size, b.Size, h, a.Root[:], b.Root[:]) == nil {
					t.Fatalf("%d..%d: an altered proof verified", a.Size, b.Size)
				}
			}
		}
	}
	last := cps[len(cps)-1].Size
	for _, tt := range []struct {
		query, token string
		status       int
		detail       string
	}{
		{"first=5&second=2", auditToken, 400, "parameter first: 5 is larger than second 2"},
		{fmt.Sprintf("first=1&second=%d", last+1000), auditToken, 400, "parameter second:"},
		{"first=1", auditToken, 400, "parameter second: give it once"},
		{"first=x&second=2", auditToken, 400, `parameter first: "x" is not a tree size`},
		{"first=1&second=2&extra=1", auditToken, 400, "parameter extra: unknown parameter"},
		{"first=1&second=2", ingestToken, 403, "may not read"},
		{"first=1&second=2", "", 401, "missing bearer token"},
	} {
		status, body, _ := e.do("GET", "/v1/audit/consistency?"+tt.query, tt.token, nil)
		if d := detail(t, body); status != tt.status || !strings.Contains(d, tt.detail) {
			t.Errorf("%s: %d %s, want %d %q", tt.query, status, d, tt.status, tt.detail)
		}
	}
}

// TestSignCheckpointNow: POST /v1/audit/checkpoints covers every record
// acknowledged before it, and only an admin may ask.
func TestSignCheckpointNow(t *testing.T) {
	store, v := newSigningStore(t)
	e := newTestServer(t, store, nil)
	for round := 0; round < 3; round++ {
		seqs := e.ingest(ingestToken, event("tenant_id", "acme"), event("tenant_id", "acme"))
		if cp := e.signNow(v); cp.Size < seqs[1] {
			t.Fatalf("checkpoint of %d records, seq %d was acknowledged before", cp.Size, seqs[1])
		}
	}
	for _, tok := range []string{auditToken, ingestToken} {
		if status, body, _ := e.do("POST", "/v1/audit/checkpoints", tok, nil); status != 403 {
			t.Fatalf("%d %s", status, body)
		}
	}
	plain := newTestServer(t, nil, nil) // a store without a signing key
	if status, body, _ := plain.do("POST", "/v1/audit/checkpoints", adminToken, nil); status != 501 || !strings.Contains(detail(t, body), "signing key") {
		t.Fatalf("%d %s", status, body)
	}
}

// TestMethodsAndHead: a path served by other methods is 405 with Allow
// (not a "bad seq" 400), and the probes answer HEAD.
func TestMethodsAndHead(t *testing.T) {
	e := newTestServer(t, nil, nil)
	for _, tt := range []struct{ method, path, allow string }{
		{"GET", "/v1/audit/events", "POST, OPTIONS"},
		{"GET", "/v1/audit/checkpoints", "POST, OPTIONS"},
		{"DELETE", "/v1/audit", "GET, OPTIONS"},
		{"DELETE", "/v1/audit/events", "POST, OPTIONS"},
		{"PUT", "/v1/audit/7", "GET, OPTIONS"},
		{"POST", "/healthz", "GET, HEAD, OPTIONS"},
	} {
		status, body, h := e.do(tt.method, tt.path, adminToken, nil)
		if status != 405 || h.Get("Allow") != tt.allow || !strings.Contains(detail(t, body), "is not allowed") {
			t.Errorf("%s %s: %d Allow %q %s", tt.method, tt.path, status, h.Get("Allow"), body)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		status, body, _ := e.do("HEAD", path, "", nil)
		if status != 200 || len(body) != 0 {
			t.Errorf("HEAD %s: %d %q", path, status, body)
		}
	}
}

// TestErrorDetailNotHTMLEscaped: the 401 detail reads as written.
func TestErrorDetailNotHTMLEscaped(t *testing.T) {
	e := newTestServer(t, nil, nil)
	_, body, _ := e.do("GET", "/v1/audit", "", nil)
	if !bytes.Contains(body, []byte("Authorization: Bearer <token>")) {
		t.Fatalf("%s", body)
	}
}

// TestHTTPExport streams JSON lines and CSV with the query filters, scoped
// like a query, recorded as an audit.query record, bounded by the log as
// it stood when it began (its own record is not in it).
func TestHTTPExport(t *testing.T) {
	e := newTestServer(t, nil, nil)
	// An empty log exports nothing, not the export's own record.
	if status, body, _ := e.do("GET", "/v1/audit/export?format=csv", adminToken, nil); status != 200 || string(body) != strings.Join(export.Columns, ",")+"\n" {
		t.Fatalf("empty export: %d %q", status, body)
	}
	var acme []uint64
	for i := 0; i < 2500; i++ { // more than one internal page
		tenant := "acme"
		if i%3 == 0 {
			tenant = "globex"
		}
		seq := e.ingest(ingestToken, event("tenant_id", tenant, "user_id", "u"+strconv.Itoa(i)))[0]
		if tenant == "acme" {
			acme = append(acme, seq)
		}
	}
	get := func(token, q string) (int, []byte, http.Header) {
		req, _ := http.NewRequest("GET", e.base+"/v1/audit/export?"+q, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		h := resp.Header.Clone()
		for k, v := range resp.Trailer {
			h[k] = v
		}
		return resp.StatusCode, b, h
	}
	status, body, h := get(adminToken, "tenant_id=acme")
	if status != 200 || h.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("%d %s", status, h)
	}
	var got []uint64
	for _, l := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
		var r vellum.Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		got = append(got, r.Seq)
	}
	if !slices.Equal(got, acme) || h.Get(TrailerRecordCount) != strconv.Itoa(len(acme)) {
		t.Fatalf("exported %s, want %s; count %q", fmtSeqs(got), fmtSeqs(acme), h.Get(TrailerRecordCount))
	}
	through, _ := strconv.ParseUint(h.Get(HeaderThroughSeq), 10, 64)
	if through < acme[len(acme)-1] {
		t.Fatalf("%s = %d", HeaderThroughSeq, through)
	}

	// CSV of the same, for the acme-scoped auditor.
	status, body, h = get(acmeToken, "format=csv")
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if status != 200 || err != nil || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") || !slices.Equal(rows[0], export.Columns) {
		t.Fatalf("%d %v %s", status, err, h)
	}
	for _, row := range rows[1:] {
		if row[slices.Index(export.Columns, "tenant_id")] != "acme" {
			t.Fatalf("scoped export holds %v", row)
		}
	}
	if len(rows)-1 < len(acme) {
		t.Fatalf("%d rows, want at least %d", len(rows)-1, len(acme))
	}

	// Every export is recorded; an export of audit.query records does not
	// hold its own.
	status, body, _ = get(adminToken, "action=audit.query&format=jsonl")
	if status != 200 {
		t.Fatal(status)
	}
	var routes []string
	for _, l := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
		var r vellum.Record
		json.Unmarshal([]byte(l), &r)
		routes = append(routes, r.Attributes["route"]+" "+r.UserID+" "+r.Attributes["export.format"])
	}
	want := []string{"GET /v1/audit/export ops csv", "GET /v1/audit/export ops jsonl", "GET /v1/audit/export acme-auditor csv"}
	if !slices.Equal(routes, want) {
		t.Fatalf("audit.query records %v, want %v", routes, want)
	}

	for _, tt := range []struct {
		token, query string
		status       int
		detail       string
	}{
		{adminToken, "limit=5", 400, "parameter limit: is not accepted by an export"},
		{adminToken, "format=xml", 400, `parameter format: "xml" is not jsonl or csv`},
		{acmeToken, "tenant_id=globex", 403, "outside the tenants"},
		{ingestToken, "", 403, "may not read"},
	} {
		status, body, _ := get(tt.token, tt.query)
		if d := detail(t, body); status != tt.status || !strings.Contains(d, tt.detail) {
			t.Errorf("%s: %d %s", tt.query, status, d)
		}
	}
}

func mustB64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
