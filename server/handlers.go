package server

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/query"
)

// ActionAuditQuery is the action of the record every read of the log
// appends.
const ActionAuditQuery = "audit.query"

// listResponse is the body of GET /v1/audit.
type listResponse struct {
	Records    []vellum.Record `json:"records"`
	NextCursor string          `json:"next_cursor,omitempty"`
	// Checkpoint is the latest signed checkpoint, once the store makes
	// them.
	Checkpoint *checkpointJSON `json:"checkpoint,omitempty"`
	// CosignedCheckpoint is the latest checkpoint a quorum of the store's
	// witnesses cosigned, when witnesses are configured.
	CosignedCheckpoint *checkpointJSON `json:"cosigned_checkpoint,omitempty"`
}

// getResponse is the body of GET /v1/audit/:seq: the record, and when the
// latest signed checkpoint covers it, its inclusion proof against that
// checkpoint.
type getResponse struct {
	vellum.Record
	InclusionProof *inclusionJSON  `json:"inclusion_proof,omitempty"`
	Checkpoint     *checkpointJSON `json:"checkpoint,omitempty"`
}

type ingestResponse struct {
	Seqs []uint64 `json:"seqs"`
}

// storeOK refuses work while the store has failed.
func (s *Server) storeOK() error {
	if err := s.store.Err(); err != nil {
		return storeFailed(err)
	}
	return nil
}

// storeErr explains an error from the store: 503 when the store has failed
// since, otherwise by its kind.
func (s *Server) storeErr(err error) error {
	if serr := s.store.Err(); serr != nil {
		return storeFailed(serr)
	}
	return err
}

// GET /v1/audit
func (s *Server) handleList(w http.ResponseWriter, r *http.Request, _ httprouter.Params, p Principal) error {
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
	q, cursor, err := query.ParseValues(vals)
	if err != nil {
		return err
	}
	if err := s.scope(r, p, &q, queryAttrs(&q, cursor != "")); err != nil {
		return err
	}
	if cursor != "" {
		c, err := query.DecodeCursor(s.cursorKey, &q, cursor)
		if err != nil {
			return err
		}
		c.Apply(&q)
	} else {
		// The first page pins the end of the log: no later page returns
		// a record appended after it (such as this read's own record).
		q.MaxSeq = s.lastSeq()
	}
	page, err := s.lister().Query(r.Context(), q)
	if err != nil {
		return s.storeErr(err)
	}
	resp := listResponse{Records: page.Records, Checkpoint: s.latestCheckpoint(), CosignedCheckpoint: s.cosignedCheckpoint()}
	if resp.Records == nil {
		resp.Records = []vellum.Record{}
	}
	attrs := queryAttrs(&q, cursor != "")
	attrs["result_count"] = strconv.Itoa(len(resp.Records))
	// The audit.query record is appended and fsynced while the page is
	// encoded; no byte of the answer is written before it is durable.
	type appended struct {
		seq uint64
		err error
	}
	done := make(chan appended, 1)
	go func(tenant string) {
		seq, err := s.audit(r, p, tenant, attrs, vellum.Outcome{Status: vellum.StatusSuccess})
		done <- appended{seq, err}
	}(q.TenantID)
	enc := getListEncoder()
	defer enc.release()
	encErr := enc.encodeRecords(resp.Records)
	a := <-done
	if a.err != nil {
		return a.err
	}
	seq := a.seq
	if q.MaxSeq == 0 {
		// A store that cannot tell its last seq: everything this page
		// could have seen was appended before this read's own record.
		q.MaxSeq = seq - 1
	}
	if next := page.Next; next != nil && (q.Desc || next.Seq < q.MaxSeq) {
		resp.NextCursor = query.EncodeCursor(s.cursorKey, &q, *next)
	}
	if encErr == nil {
		encErr = enc.finish(&resp)
	}
	if encErr != nil { // what the hand encoder cannot write exactly (listjson.go)
		writeJSON(w, http.StatusOK, resp)
		return nil
	}
	enc.write(w)
	return nil
}

// scope limits q to the tenants principal p may read. Asking for a tenant
// outside them is refused, and the refusal recorded with attrs.
func (s *Server) scope(r *http.Request, p Principal, q *query.Query, attrs map[string]string) error {
	if len(p.Tenants) == 0 {
		return nil
	}
	if q.TenantID != "" && !p.InScope(q.TenantID) {
		attrs["query.scope"] = strings.Join(p.Tenants, ",")
		s.auditDenied(r, p, q.TenantID, attrs, "tenant outside the principal's scope")
		return forbidden("tenant_id %q is outside the tenants principal %s may read", q.TenantID, p.Name)
	}
	q.Tenants = p.Tenants
	return q.Normalize()
}

// lastSeqer is implemented by stores that can tell the last seq they hold
// (*engine.Engine does).
type lastSeqer interface{ LastSeq() uint64 }

// lastSeq returns the store's last seq, or 0 when it cannot tell.
func (s *Server) lastSeq() uint64 {
	if ls, ok := s.lister().(lastSeqer); ok { // the replica's own mark with query.source: replica
		return ls.LastSeq()
	}
	return 0
}

// GET /v1/audit/:seq
func (s *Server) handleGet(w http.ResponseWriter, r *http.Request, ps httprouter.Params, p Principal) error {
	if !p.CanRead() {
		return forbidden("role %s may not read the audit log (admin or auditor may)", p.Role)
	}
	raw := ps.ByName("seq")
	seq, err := strconv.ParseUint(raw, 10, 64)
	if err != nil || seq == 0 || raw[0] == '+' {
		return badRequest("parameter seq: %q is not a sequence number (a whole number from 1)", raw)
	}
	if err := s.storeOK(); err != nil {
		return err
	}
	rec, err := s.store.Get(r.Context(), seq)
	ok := err == nil
	if err != nil && !errors.Is(err, backends.ErrNotFound) {
		return s.storeErr(err)
	}
	attrs := map[string]string{"route": "GET /v1/audit/:seq", "role": string(p.Role), "query.seq": raw}
	if len(p.Tenants) > 0 {
		attrs["query.scope"] = strings.Join(p.Tenants, ",")
	}
	if ok && !p.InScope(rec.TenantID) {
		s.auditDenied(r, p, rec.TenantID, attrs, "record outside the principal's scope")
		return forbidden("record %d belongs to a tenant outside the tenants principal %s may read", seq, p.Name)
	}
	tenant := ""
	if ok {
		tenant = rec.TenantID
		attrs["result_count"] = "1"
	} else {
		attrs["result_count"] = "0"
	}
	if _, err := s.audit(r, p, tenant, attrs, vellum.Outcome{Status: vellum.StatusSuccess}); err != nil {
		return err
	}
	if !ok {
		return httpErr(http.StatusNotFound, "no record with seq %d", seq)
	}
	resp := getResponse{Record: rec}
	resp.InclusionProof, resp.Checkpoint = s.inclusion(r.Context(), &rec)
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// POST /v1/audit/events
func (s *Server) handleIngest(w http.ResponseWriter, r *http.Request, _ httprouter.Params, p Principal) error {
	if !p.CanIngest() {
		return forbidden("role %s may not ingest events (ingest or admin may)", p.Role)
	}
	if err := s.storeOK(); err != nil {
		return err
	}
	id, err := s.gatewayIdentity(r, p) // trusted-gateway identity (gateway.go)
	if err != nil {
		return err
	}
	body, err := s.readBody(w, r) // size limit after gzip (body.go)
	if err != nil {
		return err
	}
	// A store that prepares records (the engine) validates and measures
	// each once, with the server's attributes; another store gets them
	// checked here.
	_, prepares := s.store.(preparer)
	sc := getScratch() // released once the store has encoded the records
	starts := sc.starts[:0]
	recs, err := decodeEventsInto(sc, body, DecodeOptions{
		NDJSON:        isNDJSON(r.Header.Get("Content-Type")),
		MaxEvents:     s.cfg.MaxEvents,
		MaxRecordSize: int(s.cfg.Audit.MaxRecordSize),
	}, &starts, !prepares)
	if err != nil {
		return err
	}
	if err := applyIdentity(id, recs); err != nil {
		return err
	}
	for i := range recs {
		if !p.InScope(recs[i].TenantID) {
			return forbidden("events[%d]: tenant_id %q is outside the tenants principal %s may write", i, recs[i].TenantID, p.Name)
		}
		if recs[i].Attributes == nil {
			recs[i].Attributes = sc.attrs()
		}
		recs[i].Attributes[ReservedAttrPrefix+"principal"] = p.Name
	}
	if err := s.diskOK(r.ContentLength, int64(len(body))); err != nil { // AU-4/AU-5 floor (disk.go)
		return err
	}
	seqs := []uint64{}
	if len(recs) > 0 {
		if seqs, err = s.ingestRecords(r.Context(), body, starts, recs); err != nil {
			var ee *EventError
			if errors.As(err, &ee) {
				return err
			}
			return s.storeErr(err)
		}
	}
	writeSeqs(w, seqs)
	// The records were decoded into their own arena (decodeEvents) and
	// encoded by the store; nothing refers to body now. (On the error
	// paths above it is left to the garbage collector.)
	releaseBody(body)
	if prepares {
		// The engine keeps the encodings, not the records (scratch.go);
		// another store may keep what it was given.
		sc.release(recs, starts)
	}
	return nil
}

func isNDJSON(contentType string) bool {
	if contentType == "application/json" || contentType == "" {
		return false // the common case, without parsing
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch mt {
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines", "application/jsonlines":
		return true
	}
	return false
}

// GET /healthz: the process is up.
func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// GET /readyz: the store is open and has not failed, free disk space is
// above the floor, and the server is not shutting down (ops.go says what
// each answer looks like).
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	s.writeReadiness(w, r)
}

// queryAttrs records the filters of q as attributes of its audit.query
// record: "query.<parameter>" for each parameter, the principal's scope,
// and whether it continued from a cursor (never the cursor itself).
func queryAttrs(q *query.Query, paged bool) map[string]string {
	attrs := map[string]string{"route": "GET /v1/audit"}
	for k, v := range q.Values() {
		attrs["query."+k] = v[0]
	}
	if len(q.Tenants) > 0 {
		attrs["query.scope"] = strings.Join(q.Tenants, ",")
	}
	if paged {
		attrs["query.cursor"] = "true"
	}
	return attrs
}

// audit appends the audit.query record of a read before its answer is
// written, and returns its seq: no read goes unrecorded. A read whose
// record cannot be appended is refused. The append outlives a client that
// hangs up, since the read has already happened.
func (s *Server) audit(r *http.Request, p Principal, tenant string, attrs map[string]string, out vellum.Outcome) (uint64, error) {
	attrs["role"] = string(p.Role)
	rec := vellum.Record{
		Action:     ActionAuditQuery,
		TenantID:   tenant,
		UserID:     p.Name,
		AuthMode:   stateOf(r).authModeOr("bearer"),
		RequestID:  stateOf(r).id,
		Outcome:    out,
		Attributes: attrs,
	}
	seqs, err := s.appendRecords(context.WithoutCancel(r.Context()), rec)
	if err != nil {
		return 0, s.storeErr(err)
	}
	return seqs[0], nil
}

// auditDenied records a refused read (an authenticated principal asking
// outside its scope). The refusal stands even if the record cannot be
// written; that failure is logged.
func (s *Server) auditDenied(r *http.Request, p Principal, tenant string, attrs map[string]string, reason string) {
	if _, err := s.audit(r, p, tenant, attrs, vellum.Outcome{Status: vellum.StatusDenied, Reason: reason}); err != nil {
		s.log.Error("cannot record a denied read", "id", stateOf(r).id, "principal", p.Name, "err", err.Error())
	}
}
