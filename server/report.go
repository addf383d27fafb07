package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/vellumlog/vellum"
)

// ReportRequest selects what a compliance report covers: receipt times in
// [Since, Until) (zero: unbounded) and, when Tenants is not empty, only
// those tenants' records.
type ReportRequest struct {
	Since, Until time.Time
	Tenants      []string
	// Principal is the name of the principal asking, printed on the page.
	Principal string
}

// ReportFunc writes the self-contained HTML compliance report (package
// report) for req to w. `vellum serve` supplies one over its data
// directory.
type ReportFunc func(ctx context.Context, w io.Writer, req ReportRequest) error

// reportCSP forbids the page any outside resource: it must render offline
// from the file alone (inline styles and SVG only; no scripts at all).
const reportCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// GET /v1/admin/report: the compliance report as one HTML page. Admins and
// auditors; an auditor limited to tenants gets only theirs. Like every
// read, it is recorded as an audit.query record first.
func (s *Server) handleReport(w http.ResponseWriter, r *http.Request, _ httprouter.Params, p Principal) error {
	if !p.CanRead() {
		return forbidden("role %s may not read the audit log (admin or auditor may)", p.Role)
	}
	if s.ops.report == nil {
		return httpErr(http.StatusNotImplemented, "this server has no report generator configured")
	}
	if err := s.storeOK(); err != nil {
		return err
	}
	vals, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return badRequest("the query string is malformed: %v", err)
	}
	req := ReportRequest{Principal: p.Name}
	for k, v := range vals {
		switch k {
		case "since", "until":
			t, err := time.Parse(time.RFC3339Nano, v[len(v)-1])
			if err != nil {
				return badRequest("parameter %s: %q is not an RFC 3339 time like 2026-11-27T10:00:00Z", k, v[len(v)-1])
			}
			if k == "since" {
				req.Since = t.UTC()
			} else {
				req.Until = t.UTC()
			}
		case "tenant_id":
			for _, t := range v {
				if t == "" {
					return badRequest("parameter tenant_id: is empty")
				}
				if !slices.Contains(req.Tenants, t) {
					req.Tenants = append(req.Tenants, t)
				}
			}
		default:
			return badRequest("parameter %s: unknown (the report takes since, until and tenant_id)", k)
		}
	}
	if !req.Since.IsZero() && !req.Until.IsZero() && !req.Since.Before(req.Until) {
		return badRequest("parameter until: must be after since")
	}
	attrs := map[string]string{"route": "GET /v1/admin/report", "role": string(p.Role)}
	if len(p.Tenants) > 0 {
		attrs["query.scope"] = strings.Join(p.Tenants, ",")
		for _, t := range req.Tenants {
			if !p.InScope(t) {
				s.auditDenied(r, p, t, attrs, "tenant outside the principal's scope")
				return forbidden("tenant_id %q is outside the tenants principal %s may read", t, p.Name)
			}
		}
		if len(req.Tenants) == 0 {
			req.Tenants = slices.Clone(p.Tenants)
		}
	}
	for k, v := range vals {
		attrs["query."+k] = strings.Join(v, ",")
	}
	tenant := ""
	if len(req.Tenants) == 1 {
		tenant = req.Tenants[0]
	}
	// Render first, so a report that cannot be made is not recorded as
	// read; record the read before a byte of it is sent.
	var page bytes.Buffer
	if err := s.ops.report(r.Context(), &page, req); err != nil {
		return err
	}
	attrs["result_bytes"] = strconv.Itoa(page.Len())
	if _, err := s.audit(r, p, tenant, attrs, vellum.Outcome{Status: vellum.StatusSuccess}); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", reportCSP)
	h.Set("Content-Disposition", `inline; filename="vellum-report.html"`)
	w.WriteHeader(http.StatusOK)
	w.Write(page.Bytes())
	return nil
}
