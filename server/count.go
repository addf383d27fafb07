package server

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/julienschmidt/httprouter"
	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/query"
)

// Counter is implemented by stores that count matching records without
// returning them (*engine.Engine does, from its postings). GET
// /v1/audit/count pages through Query on a store or replica that does not.
type Counter interface {
	Count(ctx context.Context, q query.Query) (uint64, error)
}

type countResponse struct {
	Count uint64 `json:"count"`
}

// GET /v1/audit/count: how many records match the filters of GET
// /v1/audit (no paging). Recorded, like every read, as an audit.query
// record before it is answered.
func (s *Server) handleCount(w http.ResponseWriter, r *http.Request, _ httprouter.Params, p Principal) error {
	if !p.CanRead() {
		return forbidden("role %s may not read the audit log (admin or auditor may)", p.Role)
	}
	if err := s.storeOK(); err != nil {
		return err
	}
	vals, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return badRequest("the query string is malformed: %v", err)
	}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k == "order" || k == "limit" || k == "cursor" {
			return &query.ParamError{Param: k, Reason: "is not accepted by GET /v1/audit/count, which counts every matching record"}
		}
	}
	q, _, err := query.ParseValues(vals)
	if err != nil {
		return err
	}
	if err := s.scope(r, p, &q, countAttrs(&q)); err != nil {
		return err
	}
	attrs := countAttrs(&q)
	n, err := s.count(r.Context(), q)
	if err != nil {
		return s.storeErr(err)
	}
	attrs["result_count"] = strconv.FormatUint(n, 10)
	if _, err := s.audit(r, p, q.TenantID, attrs, vellum.Outcome{Status: vellum.StatusSuccess}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, countResponse{Count: n})
	return nil
}

// countAttrs are the audit.query attributes of a count: those of a list
// (the filters, the scope) under its own route, without paging.
func countAttrs(q *query.Query) map[string]string {
	attrs := queryAttrs(q, false)
	attrs["route"] = "GET /v1/audit/count"
	delete(attrs, "query.order")
	delete(attrs, "query.limit")
	return attrs
}

// count counts with the store's Counter, or by paging through its Query up
// to the log's end as it stood when the count began.
func (s *Server) count(ctx context.Context, q query.Query) (uint64, error) {
	l := s.lister()
	if c, ok := l.(Counter); ok {
		return c.Count(ctx, q)
	}
	q.Limit = query.MaxLimit
	q.MaxSeq = s.lastSeq()
	var n uint64
	for {
		page, err := l.Query(ctx, q)
		if err != nil {
			return 0, err
		}
		n += uint64(len(page.Records))
		if page.Next == nil {
			return n, nil
		}
		q.After = page.Next
	}
}
