package server

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/layout"
)

// TestHoldsAndPurgeAPI: holds are set, listed and released over the API by
// an admin only, each is an audit record, and POST /v1/audit/purge purges
// (or, dry, lists) what expired and nothing a hold keeps.
func TestHoldsAndPurgeAPI(t *testing.T) {
	var mu sync.Mutex
	now := time.Now().Add(-400 * 24 * time.Hour)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
	store := newTestStoreOpts(t, func(o *engine.Options) {
		o.Now, o.SegmentSize = clock, 200
		o.Retention = engine.Retention{MaxAge: 100 * 24 * time.Hour}
	})
	e := newTestServer(t, store, nil)
	start := clock()
	for i := range 3 {
		set(start.Add(time.Duration(i) * 24 * time.Hour))
		e.ingest(ingestToken, event("tenant_id", "acme"))
	}
	for _, tok := range []string{auditToken, ingestToken} {
		for _, r := range [][2]string{{"GET", "/v1/audit/holds"}, {"POST", "/v1/audit/holds"}, {"DELETE", "/v1/audit/holds/x"}, {"POST", "/v1/audit/purge"}} {
			if status, body, _ := e.do(r[0], r[1], tok, []byte(`{"reason":"r"}`)); status != 403 {
				t.Fatalf("%s %s as %s: %d %s", r[0], r[1], tok, status, body)
			}
		}
	}
	if status, body, _ := e.do("POST", "/v1/audit/holds", adminToken, []byte(`{"tenant_id":"acme"}`)); status != 400 || !strings.Contains(detail(t, body), "reason") {
		t.Fatalf("hold without reason: %d %s", status, body)
	}
	if status, body, _ := e.do("POST", "/v1/audit/holds", adminToken, []byte(`{"reason":"x","tenant":"acme"}`)); status != 400 {
		t.Fatalf("unknown field: %d %s", status, body)
	}
	status, body, _ := e.do("POST", "/v1/audit/holds", adminToken, []byte(`{"tenant_id":"acme","reason":"case 17"}`))
	var h layout.Hold
	if status != 201 || json.Unmarshal(body, &h) != nil || h.ID == "" || h.Seq == 0 {
		t.Fatalf("set: %d %s", status, body)
	}
	status, body, _ = e.do("GET", "/v1/audit/holds", adminToken, nil)
	if status != 200 || !strings.Contains(string(body), h.ID) {
		t.Fatalf("list: %d %s", status, body)
	}
	set(time.Now())
	var res engine.PurgeResult
	status, body, _ = e.do("POST", "/v1/audit/purge?dry_run=true", adminToken, nil)
	if status != 200 || json.Unmarshal(body, &res) != nil || len(res.Segments) != 0 || res.Kept == nil || len(res.Kept.Holds) != 1 {
		t.Fatalf("held: %d %s", status, body)
	}
	if status, body, _ = e.do("DELETE", "/v1/audit/holds/"+h.ID, adminToken, nil); status != 200 {
		t.Fatalf("release: %d %s", status, body)
	}
	if status, body, _ = e.do("DELETE", "/v1/audit/holds/"+h.ID, adminToken, nil); status != 404 {
		t.Fatalf("release twice: %d %s", status, body)
	}
	status, body, _ = e.do("POST", "/v1/audit/purge", adminToken, nil)
	if status != 200 || json.Unmarshal(body, &res) != nil || len(res.Segments) < 3 || res.AnchorSeq == 0 || res.DryRun {
		t.Fatalf("purge: %d %s", status, body)
	}
	got := e.list(adminToken, "action=retention.")
	var actions []string
	for _, r := range got.Records {
		actions = append(actions, r.Action+"/"+r.UserID)
	}
	if a := strings.Join(actions, " "); !strings.Contains(a, engine.ActionPurge+"/ops") || !strings.Contains(a, engine.ActionHoldRelease+"/ops") {
		t.Fatalf("retention records: %s", a)
	}
}
