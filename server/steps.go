package server

import (
	"container/list"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/collector"
	"github.com/vellumlog/vellum/step"
)

// Bounds of the step-stream sessions the server keeps between requests.
const (
	defaultStepSessions = 10_000
	defaultStepIdle     = 10 * time.Minute
	// maxIdleSweep bounds the idle sessions one request closes.
	maxIdleSweep = 64
)

// stepSessions is the mapping state of POST /v1/audit/steps per (tenant,
// session): a collector.Mapper each, so a session may be posted in several
// requests, in order. At most max sessions are kept (least recently used
// evicted) and a session idle for longer than idle is closed; either way
// its pending tool calls are recorded then. Safe for concurrent use.
type stepSessions struct {
	mu    sync.Mutex
	max   int
	idle  time.Duration
	lru   *list.List // of *stepSession, most recently used first
	byKey map[sessionKey]*list.Element
}

type sessionKey struct{ tenant, session string }

type stepSession struct {
	key  sessionKey
	mu   sync.Mutex // serializes the batches of one session
	m    *collector.Mapper
	last time.Time
	gone bool // evicted: a batch holding mu must start a new session
}

func newStepSessions(max int, idle time.Duration) *stepSessions {
	return &stepSessions{max: max, idle: idle, lru: list.New(), byKey: map[sessionKey]*list.Element{}}
}

// get returns the session of k (new or kept), marked used at now, and the
// sessions closed to make room or for idleness: their Mappers' pending
// calls must be recorded by the caller.
func (ss *stepSessions) get(k sessionKey, req collector.Request, now time.Time) (*stepSession, []*stepSession) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var closed []*stepSession
	for i := 0; i < maxIdleSweep; i++ {
		e := ss.lru.Back()
		if e == nil || now.Sub(e.Value.(*stepSession).last) < ss.idle {
			break
		}
		closed = append(closed, ss.remove(e))
	}
	if e, ok := ss.byKey[k]; ok {
		s := e.Value.(*stepSession)
		s.last = now
		ss.lru.MoveToFront(e)
		return s, closed
	}
	for ss.lru.Len() >= ss.max {
		closed = append(closed, ss.remove(ss.lru.Back()))
	}
	s := &stepSession{key: k, m: collector.NewMapper(req), last: now}
	ss.byKey[k] = ss.lru.PushFront(s)
	return s, closed
}

func (ss *stepSessions) remove(e *list.Element) *stepSession {
	s := e.Value.(*stepSession)
	ss.lru.Remove(e)
	delete(ss.byKey, s.key)
	return s
}

// len returns how many sessions are kept.
func (ss *stepSessions) len() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.lru.Len()
}

// POST /v1/audit/steps: a batch of an agent's step-stream events, mapped
// to records by the collector's Mapper (the same code path as the Go
// collector). Tenant and user come from the principal, or from a trusted
// gateway's headers; never from the body.
func (s *Server) handleSteps(w http.ResponseWriter, r *http.Request, _ httprouter.Params, p Principal) error {
	if !p.CanIngest() {
		return forbidden("role %s may not ingest events (ingest or admin may)", p.Role)
	}
	if err := s.storeOK(); err != nil {
		return err
	}
	id, err := s.gatewayIdentity(r, p)
	if err != nil {
		return err
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	batch, err := step.DecodeBatch(body)
	if err != nil {
		return badRequest("%s", err.Error())
	}
	if len(batch.Steps) > s.cfg.MaxEvents {
		return httpErr(http.StatusRequestEntityTooLarge, "%d steps, more than the %d allowed per request (max_events)", len(batch.Steps), s.cfg.MaxEvents)
	}
	req := collector.Request{UserID: p.Name, SessionID: batch.Context.SessionID, TraceID: batch.Context.TraceID,
		Agent: batch.Context.Agent, Model: batch.Context.Model, AuthMode: batch.Context.AuthMode, RequestID: stateOf(r).id}
	if len(p.Tenants) == 1 {
		req.TenantID = p.Tenants[0]
	}
	if id.gateway {
		if id.tenant != "" {
			req.TenantID = id.tenant
		}
		if id.user != "" {
			req.UserID = id.user
		}
	}
	if req.AuthMode == "" {
		switch {
		case id.gateway:
			req.AuthMode = "gateway"
		case stateOf(r).authMode != "":
			req.AuthMode = stateOf(r).authMode
		default:
			req.AuthMode = "bearer"
		}
	}
	if !p.InScope(req.TenantID) {
		return forbidden("the steps' tenant %q is outside the tenants principal %s may write (send X-Tenant through a trusted gateway, or use a token scoped to one tenant)", req.TenantID, p.Name)
	}
	if err := s.diskOK(r.ContentLength, int64(len(body))); err != nil {
		return err
	}
	now := time.Now()
	// The session's state, and the records of sessions closed to make
	// room or for idleness (their pending calls), appended first.
	var recs []vellum.Record
	var sess *stepSession
	for {
		var closed []*stepSession
		sess, closed = s.steps.get(sessionKey{req.TenantID, req.SessionID}, req, now)
		for _, c := range closed {
			c.mu.Lock()
			c.gone = true
			recs = c.m.Flush(now, recs)
			c.mu.Unlock()
		}
		sess.mu.Lock()
		if !sess.gone {
			break
		}
		sess.mu.Unlock() // closed by another request meanwhile: start afresh
	}
	defer sess.mu.Unlock()
	ownFrom := len(recs)
	m := sess.m.Clone() // the session goes on from m only if its records are stored
	m.SetRequest(req)
	stamp := func(recs []vellum.Record) {
		for i := range recs {
			if recs[i].Attributes == nil {
				recs[i].Attributes = make(map[string]string, 1)
			}
			recs[i].Attributes[ReservedAttrPrefix+"principal"] = p.Name
		}
	}
	skip, err := resume(m, &batch)
	if err != nil {
		if ownFrom > 0 { // the closed sessions' records are not lost with it
			stamp(recs)
			if _, aerr := s.appendRecords(r.Context(), recs...); aerr != nil {
				return s.storeErr(aerr)
			}
		}
		return err
	}
	for i := skip; i < len(batch.Steps); i++ {
		recs = m.Map(&batch.Steps[i], now, recs)
	}
	stamp(recs)
	var seqs []uint64
	if len(recs) > 0 {
		if seqs, err = s.appendRecords(r.Context(), recs...); err != nil {
			if errors.Is(err, vellum.ErrInvalid) {
				return err
			}
			return s.storeErr(err)
		}
	}
	sess.m = m
	var resumed *stepsResume
	if batch.Context.FirstStep != nil {
		resumed = &stepsResume{skipped: skip, next: m.Steps()}
	}
	writeStepsResult(w, len(batch.Steps), seqs[ownFrom:], resumed)
	return nil
}

// resume places a batch that carries context.first_step in its session's
// stream (m has consumed m.Steps() steps, K): the number of its first
// steps to skip, consumed already (a resend of a batch whose answer was
// lost), or a 409 when the batch is not the session's next. A session
// with no step consumed (new, or its state evicted or lost in a restart)
// starts at first_step. The records of a batch with first_step get event
// ids from the session and the steps, so a resend mapped afresh is stored
// once (the store's (tenant, event_id) dedup). Without first_step nothing
// is skipped and ids are the session state's own.
func resume(m *collector.Mapper, b *step.Batch) (int, error) {
	if b.Context.FirstStep == nil {
		m.SetSessionIDs(false)
		return 0, nil
	}
	m.SetSessionIDs(true)
	first, k, n := *b.Context.FirstStep, m.Steps(), uint64(len(b.Steps))
	switch {
	case k == 0 || first == k:
		m.SetNext(first)
		return 0, nil
	case first > k:
		return 0, httpErr(http.StatusConflict, "context.first_step: expected %d, got %d: steps %d to %d of session %q never arrived (a gap); send them first", k, first, k, first-1, b.Context.SessionID)
	case first+n < k:
		return 0, httpErr(http.StatusConflict, "context.first_step: expected %d, got %d: the batch ends at step %d, before the session's last step %d, so it is not a resend of the last batch", k, first, first+n-1, k-1)
	}
	// A resend: its step k-1 must be the one consumed there, or this is
	// another stream under the same session id (a client that restarted
	// its count).
	if d, ok := m.LastDigest(); !ok || collector.StepDigest(&b.Steps[k-1-first]) != d {
		return 0, httpErr(http.StatusConflict, "context.first_step: expected %d, got %d: steps[%d] (step %d) is not the step %d the session consumed, so the batch is not a resend (another stream under session_id %q?)", k, first, k-1-first, k-1, k-1, b.Context.SessionID)
	}
	return int(k - first), nil
}

// stepsResume is what a batch with first_step adds to the answer.
type stepsResume struct {
	skipped int
	next    uint64
}

func writeStepsResult(w http.ResponseWriter, steps int, seqs []uint64, resumed *stepsResume) {
	b := []byte(`{"steps":`)
	b = strconv.AppendInt(b, int64(steps), 10)
	b = append(b, `,"records":`...)
	b = strconv.AppendInt(b, int64(len(seqs)), 10)
	if len(seqs) > 0 {
		b = append(b, `,"first_seq":`...)
		b = strconv.AppendUint(b, seqs[0], 10)
		b = append(b, `,"last_seq":`...)
		b = strconv.AppendUint(b, seqs[len(seqs)-1], 10)
	}
	if resumed != nil {
		b = append(b, `,"skipped":`...)
		b = strconv.AppendInt(b, int64(resumed.skipped), 10)
		b = append(b, `,"next_step":`...)
		b = strconv.AppendUint(b, resumed.next, 10)
	}
	b = append(b, "}\n"...)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}
