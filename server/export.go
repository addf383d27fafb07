package server

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/export"
	"github.com/vellumlog/vellum/query"
)

// Headers of GET /v1/audit/export.
const (
	// HeaderThroughSeq says what an export covers: every matching record
	// with a seq up to this one (the log's last when the export began).
	HeaderThroughSeq = "X-Vellum-Through-Seq"
	// TrailerRecordCount is sent after the body: how many records the
	// export holds. A response cut short has none.
	TrailerRecordCount = "X-Vellum-Record-Count"
)

// GET /v1/audit/export: every record matching the query filters, in seq
// order, streamed as JSON lines or CSV. Like every read it is recorded as
// an audit.query record, before the first byte is sent. It covers the log
// as it stood when it began (HeaderThroughSeq).
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request, _ httprouter.Params, p Principal) error {
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
	format := export.JSONL
	if fs, ok := vals["format"]; ok {
		if len(fs) != 1 {
			return badRequest("parameter format: given %d times; give it once", len(fs))
		}
		if format, err = export.ParseFormat(fs[0]); err != nil {
			return badRequest("parameter format: %q is not jsonl or csv", fs[0])
		}
		delete(vals, "format")
	}
	q, err := query.ParseFilterValues(vals)
	if err != nil {
		return err
	}
	attrs := queryAttrs(&q, false)
	delete(attrs, "query.order")
	delete(attrs, "query.limit")
	attrs["route"] = "GET /v1/audit/export"
	if err := s.scope(r, p, &q, attrs); err != nil {
		return err
	}
	q.Limit = query.MaxLimit
	q.MaxSeq = s.lastSeq()
	attrs["export.format"] = string(format)
	attrs["export.through_seq"] = strconv.FormatUint(q.MaxSeq, 10)
	seq, err := s.audit(r, p, q.TenantID, attrs, vellum.Outcome{Status: vellum.StatusSuccess})
	if err != nil {
		return err
	}
	if q.MaxSeq == 0 {
		q.MaxSeq = seq - 1 // a store that cannot tell its last seq
	}
	empty := q.MaxSeq == 0 // nothing before this export's own record

	h := w.Header()
	h.Set("Content-Type", format.ContentType())
	h.Set("Content-Disposition", `attachment; filename="vellum-export.`+string(format)+`"`)
	h.Set(HeaderThroughSeq, strconv.FormatUint(q.MaxSeq, 10))
	h.Set("Trailer", TrailerRecordCount)
	ew, _ := export.NewWriter(w, format)
	rc := http.NewResponseController(w)
	started := false
	for !empty {
		// Each page gets a fresh write deadline, so a long export is
		// bounded per page, not as a whole.
		rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		page, err := s.store.Query(r.Context(), q)
		if err != nil {
			if !started {
				return s.storeErr(err)
			}
			s.log.Error("export cut short", "id", stateOf(r).id, "records", ew.Count(), "err", err.Error())
			panic(http.ErrAbortHandler) // the client sees a broken transfer, never a clean end
		}
		for i := range page.Records {
			if err := ew.Write(&page.Records[i]); err != nil {
				panic(http.ErrAbortHandler)
			}
		}
		started = true
		if err := ew.Flush(); err != nil {
			panic(http.ErrAbortHandler)
		}
		if page.Next == nil || page.Next.Seq >= q.MaxSeq {
			break
		}
		q.After = page.Next
	}
	if empty {
		if err := ew.Flush(); err != nil { // a CSV header
			panic(http.ErrAbortHandler)
		}
	}
	h.Set(TrailerRecordCount, strconv.Itoa(ew.Count()))
	return nil
}
