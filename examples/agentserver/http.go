package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"strings"

	"github.com/vellumlog/vellum/collector"
	"github.com/vellumlog/vellum/step"
)

// The agent server's own API, beside Vellum's /v1/ routes:
//
//	POST /chat              {"session_id": "...", "message": "..."}
//	                        → the step stream as JSON lines (application/x-ndjson),
//	                          one step per line, flushed as it happens
//	POST /questions/{id}    {"outcome": "approve" | "deny"}: an operator's answer
//
// Both sit behind the ecosystem's gateway, which authenticates the caller
// and sets X-Auth-Subject (the user; for /questions the approver) and
// X-Tenant. Those headers count only from the gateway's networks
// (collector.Gateway, -gateway); from anywhere else they are ignored, and
// a request without a gateway identity is refused.

// maxBody bounds a request body of the agent's API.
const maxBody = 64 << 10

// streamFunc runs a request of id (who, from the gateway) and returns its
// step stream, already observed by the audit collector.
type streamFunc func(r *http.Request, id collector.Request, sessionID, message string) iter.Seq2[step.Event, error]

// agentAPI serves /chat and /questions/.
type agentAPI struct {
	agent  *Agent
	gw     *collector.Gateway
	stream streamFunc
	log    *slog.Logger
}

// identity returns who r comes from, as the trusted gateway says.
func (a *agentAPI) identity(r *http.Request) (collector.Request, error) {
	id, err := a.gw.Request(r, collector.Request{})
	if err != nil {
		return id, err
	}
	if id.TenantID == "" || id.UserID == "" {
		return id, errors.New("no gateway identity: X-Tenant and X-Auth-Subject count only from the trusted gateway (-gateway)")
	}
	return id, nil
}

func (a *agentAPI) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /chat", a.chat)
	mux.HandleFunc("POST /questions/{id}", a.answer)
}

func problem(w http.ResponseWriter, code int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"status": code, "detail": detail})
}

func readJSON(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return err
	}
	if len(b) > maxBody {
		return fmt.Errorf("body over %d bytes", maxBody)
	}
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

func (a *agentAPI) chat(w http.ResponseWriter, r *http.Request) {
	id, err := a.identity(r)
	if err != nil {
		problem(w, http.StatusUnauthorized, err.Error())
		return
	}
	var req struct {
		SessionID string `json:"session_id"`
		Message   string `json:"message"`
	}
	if err := readJSON(r, &req); err != nil {
		problem(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if req.SessionID == "" || len(req.SessionID) > 512 {
		problem(w, http.StatusBadRequest, "session_id: required, at most 512 bytes")
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	for ev, err := range a.stream(r, id, req.SessionID, req.Message) {
		if err != nil {
			// The stream failed (fail_closed: a step whose audit record
			// could not be made durable). The client sees why, as the last
			// line; nothing after it was released.
			a.log.Warn("agent stream failed", "session", req.SessionID, "err", err)
			enc.Encode(map[string]string{"type": "error", "error": err.Error()})
			rc.Flush()
			return
		}
		if err := enc.Encode(ev); err != nil {
			return // the client went away; the range stops the stream
		}
		rc.Flush()
	}
}

func (a *agentAPI) answer(w http.ResponseWriter, r *http.Request) {
	id, err := a.identity(r)
	if err != nil {
		problem(w, http.StatusUnauthorized, err.Error())
		return
	}
	var req struct {
		Outcome string `json:"outcome"`
	}
	if err := readJSON(r, &req); err != nil {
		problem(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if req.Outcome != "approve" && req.Outcome != "deny" {
		problem(w, http.StatusBadRequest, fmt.Sprintf("outcome: %q is not approve or deny", req.Outcome))
		return
	}
	if !a.agent.Answer(r.PathValue("id"), req.Outcome, id.UserID) {
		problem(w, http.StatusNotFound, "no call waits for question "+r.PathValue("id"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
