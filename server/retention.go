package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/layout"
)

// Retainer is what a store's retention offers the API (*engine.Retainer
// does): purges on demand and legal holds (docs/retention.md).
type Retainer interface {
	Purge(ctx context.Context, o engine.PurgeOptions) (*engine.PurgeResult, error)
	Holds() []layout.Hold
	SetHold(ctx context.Context, h layout.Hold, by string) (layout.Hold, error)
	ReleaseHold(ctx context.Context, id, by string) (layout.Hold, error)
}

var _ Retainer = (*engine.Retainer)(nil)

// retentionStore is a store that purges by retention (*engine.Engine).
type retentionStore interface {
	Retention() *engine.Retainer
}

var _ retentionStore = (*engine.Engine)(nil)

// retainer returns the store's retention side for an admin, or the error
// to answer.
func (s *Server) retainer(p Principal, what string) (Retainer, error) {
	if p.Role != RoleAdmin {
		return nil, forbidden("role %s may not %s (admin may)", p.Role, what)
	}
	st, ok := s.store.(retentionStore)
	if !ok {
		return nil, httpErr(http.StatusNotImplemented, "this store has no retention purge or legal holds (audit.store segment has)")
	}
	return st.Retention(), s.storeOK()
}

type holdsResponse struct {
	Holds []layout.Hold `json:"holds"`
}

// GET /v1/audit/holds
func (s *Server) handleListHolds(w http.ResponseWriter, r *http.Request, _ httprouter.Params, p Principal) error {
	rt, err := s.retainer(p, "list legal holds")
	if err != nil {
		return err
	}
	hs := rt.Holds()
	if hs == nil {
		hs = []layout.Hold{}
	}
	writeJSON(w, http.StatusOK, holdsResponse{Holds: hs})
	return nil
}

// holdRequest is the body of POST /v1/audit/holds.
type holdRequest struct {
	TenantID string    `json:"tenant_id"`
	Since    time.Time `json:"since"`
	Until    time.Time `json:"until"`
	Reason   string    `json:"reason"`
}

// POST /v1/audit/holds
func (s *Server) handleSetHold(w http.ResponseWriter, r *http.Request, _ httprouter.Params, p Principal) error {
	rt, err := s.retainer(p, "set legal holds")
	if err != nil {
		return err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	var req holdRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return badRequest("the body is not a hold ({\"tenant_id\", \"since\", \"until\", \"reason\"}): %v", err)
	}
	if dec.More() {
		return badRequest("the body holds more than one JSON value")
	}
	h, err := rt.SetHold(r.Context(), layout.Hold{TenantID: req.TenantID, Since: req.Since, Until: req.Until, Reason: req.Reason}, p.Name)
	if err != nil {
		return s.storeErr(err)
	}
	s.log.Info("legal hold set", "id", stateOf(r).id, "principal", p.Name, "hold", h.ID, "seq", h.Seq)
	writeJSON(w, http.StatusCreated, h)
	return nil
}

// DELETE /v1/audit/holds/:id
func (s *Server) handleReleaseHold(w http.ResponseWriter, r *http.Request, ps httprouter.Params, p Principal) error {
	rt, err := s.retainer(p, "release legal holds")
	if err != nil {
		return err
	}
	h, err := rt.ReleaseHold(r.Context(), ps.ByName("id"), p.Name)
	if errors.Is(err, engine.ErrNoHold) {
		return httpErr(http.StatusNotFound, "no legal hold %q is set", ps.ByName("id"))
	}
	if err != nil {
		return s.storeErr(err)
	}
	s.log.Info("legal hold released", "id", stateOf(r).id, "principal", p.Name, "hold", h.ID)
	writeJSON(w, http.StatusOK, h)
	return nil
}

// POST /v1/audit/purge
func (s *Server) handlePurge(w http.ResponseWriter, r *http.Request, _ httprouter.Params, p Principal) error {
	rt, err := s.retainer(p, "purge")
	if err != nil {
		return err
	}
	dry := false
	if v := r.URL.Query().Get("dry_run"); v != "" {
		if dry, err = strconv.ParseBool(v); err != nil {
			return badRequest("parameter dry_run: %q is not true or false", v)
		}
	}
	res, err := rt.Purge(r.Context(), engine.PurgeOptions{DryRun: dry, By: p.Name})
	if err != nil {
		return s.storeErr(err)
	}
	if !dry {
		s.log.Info("purge on request", "id", stateOf(r).id, "principal", p.Name, "segments", len(res.Segments), "anchor_seq", res.AnchorSeq)
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
