package server

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/vellumlog/vellum/metrics"
	"github.com/vellumlog/vellum/query"
	"github.com/vellumlog/vellum/report"
)

// TestReportRoute: GET /v1/admin/report serves the report page of the
// store (self-contained, with a CSP forbidding anything else), records
// the read as an audit.query record, and keeps scoped auditors to their
// tenants.
func TestReportRoute(t *testing.T) {
	m := metrics.New(&metrics.Options{NoRuntime: true})
	dir := t.TempDir()
	store := opsStore(t, nil, dir, m)
	var got []ReportRequest
	gen := func(ctx context.Context, w io.Writer, req ReportRequest) error {
		got = append(got, req)
		return report.Generate(ctx, w, &report.Options{Dir: dir, Filter: report.Filter{Since: req.Since, Until: req.Until, Tenants: req.Tenants}, Principal: req.Principal})
	}
	e := newTestServerWith(t, store, &Options{Metrics: m, Report: gen}, nil)
	e.ingest(ingestToken, event("tenant_id", "acme", "tool", "web_search"), event("tenant_id", "globex", "status", "denied"))
	if _, err := store.SignCheckpoint(t.Context()); err != nil {
		t.Fatal(err)
	}
	status, body, h := e.do("GET", "/v1/admin/report?since=2020-01-01T00:00:00Z", adminToken, nil)
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	page := string(body)
	if !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("headers %v", h)
	}
	if !strings.Contains(page, "Vellum compliance report") || !strings.Contains(page, `id="chart-records-per-day"`) || strings.Contains(page, "<script") {
		t.Fatalf("page:\n%.2000s", page)
	}
	if len(got) != 1 || got[0].Principal != "ops" || got[0].Since.Year() != 2020 {
		t.Fatalf("report request %+v", got)
	}
	// The read is on the record.
	q := query.Query{Action: "audit.query", Limit: 10}
	pg, err := store.Query(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range pg.Records {
		if r.Attributes["route"] == "GET /v1/admin/report" && r.UserID == "ops" {
			found = true
		}
	}
	if !found {
		t.Fatal("the report read was not recorded")
	}
	// A scoped auditor gets its tenants, and 403 outside them.
	if status, _, _ := e.do("GET", "/v1/admin/report", acmeToken, nil); status != 200 {
		t.Fatalf("scoped auditor: %d", status)
	}
	if last := got[len(got)-1]; len(last.Tenants) != 1 || last.Tenants[0] != "acme" {
		t.Fatalf("scoped auditor's report covers %v", last.Tenants)
	}
	if status, _, _ := e.do("GET", "/v1/admin/report?tenant_id=globex", acmeToken, nil); status != http.StatusForbidden {
		t.Fatalf("scoped auditor, other tenant: %d", status)
	}
	for _, tt := range []struct {
		token, query string
		status       int
	}{
		{ingestToken, "", 403},
		{"", "", 401},
		{adminToken, "since=yesterday", 400},
		{adminToken, "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", 400},
		{adminToken, "foo=bar", 400},
	} {
		if status, b, _ := e.do("GET", "/v1/admin/report?"+tt.query, tt.token, nil); status != tt.status {
			t.Errorf("%q %q: %d %s, want %d", tt.token, tt.query, status, b, tt.status)
		}
	}
}
