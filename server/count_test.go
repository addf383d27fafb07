package server

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// TestCount: GET /v1/audit/count counts what GET /v1/audit pages through,
// under the same scope, refuses paging parameters, and records an
// audit.query record like every read.
func TestCount(t *testing.T) {
	e := newTestServer(t, nil, nil)
	e.ingest(ingestToken,
		event("tenant_id", "acme", "user_id", "alice", "action", "approval.denied", "status", "denied"),
		event("tenant_id", "acme", "action", "approval.granted", "status", "approved"),
		event("tenant_id", "acme", "action", "tool.call"),
		event("tenant_id", "globex", "action", "approval.denied", "status", "denied"))
	count := func(token, raw string) (int, uint64, string) {
		t.Helper()
		status, b, _ := e.do("GET", "/v1/audit/count?"+raw, token, nil)
		if status != http.StatusOK {
			return status, 0, detail(t, b)
		}
		var r struct {
			Count *uint64 `json:"count"`
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil || r.Count == nil {
			t.Fatalf("body %s: %v", b, err)
		}
		return status, *r.Count, ""
	}
	for _, tt := range []struct {
		token, raw string
		want       uint64
	}{
		{adminToken, "tenant_id=acme&action=approval.", 2},
		{adminToken, "tenant_id=globex&user_id=alice", 0},
		{adminToken, "action=approval.", 3},
		{adminToken, "action=approval.denied&outcome=denied", 2},
		{adminToken, "tenant_id=acme&action=approval.&outcome=denied", 1},
		{adminToken, "tenant_id=nobody&action=tool.call", 0},
		{acmeToken, "action=approval.denied", 1}, // the auditor's scope: acme only
	} {
		_, n, d := count(tt.token, tt.raw)
		if n != tt.want || d != "" {
			t.Fatalf("count %s = %d (%s), want %d", tt.raw, n, d, tt.want)
		}
		if l := e.list(tt.token, tt.raw+"&limit=1000"); uint64(len(l.Records)) != tt.want {
			t.Fatalf("list %s has %d records, count says %d", tt.raw, len(l.Records), tt.want)
		}
	}
	// The audit record of a count, read back before the next read.
	count(acmeToken, "action=approval.&outcome=denied")
	res := e.list(adminToken, "action=audit.query&order=desc&limit=1")
	want := map[string]string{"route": "GET /v1/audit/count", "role": "auditor", "query.action": "approval.",
		"query.outcome": "denied", "query.scope": "acme", "result_count": "1"}
	if r := res.Records[0]; r.UserID != "acme-auditor" || !reflect.DeepEqual(r.Attributes, want) {
		t.Fatalf("audit record %+v\nattributes %v", r, r.Attributes)
	}
	for _, tt := range []struct {
		token, raw string
		status     int
		detail     string
	}{
		{adminToken, "limit=5", http.StatusBadRequest, "limit"},
		{adminToken, "cursor=abc", http.StatusBadRequest, "cursor"},
		{adminToken, "order=desc", http.StatusBadRequest, "order"},
		{adminToken, "outcome=maybe", http.StatusBadRequest, "outcome"},
		{acmeToken, "tenant_id=globex", http.StatusForbidden, "globex"},
		{ingestToken, "", http.StatusForbidden, "role"},
	} {
		status, _, d := count(tt.token, tt.raw)
		if status != tt.status || !strings.Contains(d, tt.detail) {
			t.Fatalf("%s: %d %q, want %d naming %q", tt.raw, status, d, tt.status, tt.detail)
		}
	}
}
