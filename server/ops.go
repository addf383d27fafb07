package server

// Operations (issue 15): Prometheus metrics, readiness with its reasons,
// the disk alarms (disk.go) and TLS (tls.go). New() calls initOps; Serve
// calls startOps; Shutdown calls stopOps.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/backends/replicate"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/metrics"
	"github.com/vellumlog/vellum/witness"
)

// opsState is the server's operational machinery.
type opsState struct {
	metrics *metrics.Metrics
	disk    *diskMonitor
	tls     *tlsState    // nil: plain HTTP
	certs   certAuth     // principals bound to client certificates
	report  ReportFunc   // nil: GET /v1/admin/report answers 501
	mhttp   *http.Server // the open metrics listener (metrics.addr), or nil

	// mu orders the disk monitor's start (first Serve) and stop
	// (Shutdown), which may race: a stopped server starts nothing.
	mu      sync.Mutex
	started bool
	stopped bool
	stop    chan struct{}
	wg      sync.WaitGroup
}

func (s *Server) initOps(opts *Options) error {
	o := &s.ops
	o.metrics = opts.Metrics
	if o.metrics == nil {
		o.metrics = metrics.New(&metrics.Options{NoRuntime: true})
	}
	if src, ok := s.store.(metrics.StatsSource); ok {
		o.metrics.WatchStore(src)
	}
	o.report = opts.Report
	if r := opts.Replica; r != nil { // audit.replicate: lag at every scrape
		name := s.cfg.Audit.Replicate.Backend
		if name == "" {
			name = "replica"
		}
		o.metrics.WatchReplica(name, func() (uint64, float64) { l := r.Lag(); return l.Records, l.Seconds })
	}
	o.stop = make(chan struct{})
	dir := s.cfg.DataDir
	if d, ok := s.store.(interface{ Dir() string }); ok {
		dir = d.Dir() // the store's own directory, when it says
	}
	o.disk = newDiskMonitor(dir, &s.cfg.Audit.Disk, opts.DiskSpace, s.log, o.metrics)
	if s.cfg.TLS.Enabled() {
		t, err := newTLSState(&s.cfg.TLS, s.log)
		if err != nil {
			return err
		}
		o.tls = t
	}
	o.certs = newCertAuth(s.cfg.Auth.Tokens)
	if s.cfg.Metrics.Addr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", o.metrics.Handler())
		o.mhttp = &http.Server{
			Addr:              s.cfg.Metrics.Addr,
			Handler:           mux,
			ReadHeaderTimeout: readHeaderTimeout,
			WriteTimeout:      time.Minute,
			IdleTimeout:       idleTimeout,
		}
	}
	return nil
}

// Principals returns how many principals may call the server: by token
// (configured or quick-start) or by client certificate.
func (s *Server) Principals() int { return s.auth.Load().Len() + len(s.ops.certs) }

// Metrics returns the server's metrics.
func (s *Server) Metrics() *metrics.Metrics { return s.ops.metrics }

// startOps runs once, when the server starts serving: it wraps l in TLS
// when configured, warns about plain HTTP off loopback, and starts the
// disk monitor.
func (s *Server) startOps(l net.Listener) net.Listener {
	o := &s.ops
	o.mu.Lock()
	if !o.started && !o.stopped {
		o.started = true
		o.disk.check()
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			o.disk.run(o.stop)
		}()
	}
	o.mu.Unlock()
	if o.tls != nil {
		return o.tls.listener(l)
	}
	if !isLoopback(l.Addr()) {
		s.log.Warn("serving plain HTTP on a non-loopback address: bearer tokens and audit records cross the network unencrypted; set tls.cert_file and tls.key_file, or terminate TLS in front of vellum",
			"addr", l.Addr().String())
	}
	return l
}

// ServeMetrics serves GET /metrics without authentication on l (the
// metrics.addr listener) until Shutdown. It returns an error when
// metrics.addr is not configured.
func (s *Server) ServeMetrics(l net.Listener) error {
	if s.ops.mhttp == nil {
		return errors.New("server: metrics.addr is not configured")
	}
	if !isLoopback(l.Addr()) {
		s.log.Warn("serving /metrics without authentication on a non-loopback address; make sure only the monitoring network reaches it", "addr", l.Addr().String())
	}
	if err := s.ops.mhttp.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: metrics listener: %w", err)
	}
	return nil
}

func (s *Server) stopOps(ctx context.Context) {
	o := &s.ops
	o.mu.Lock()
	first := !o.stopped
	if first {
		o.stopped = true
		close(o.stop)
	}
	o.mu.Unlock()
	if first && o.mhttp != nil {
		o.mhttp.Shutdown(ctx)
	}
	o.wg.Wait()
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// withRoute records the route pattern of the request for the log line and
// the metrics (a path holds seqs; the pattern is a bounded label).
func withRoute(route string, h httprouter.Handle) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		stateOf(r).route = route
		h(w, r, ps)
	}
}

// observeRequest counts a finished request and, for ingest, its refusal.
func (s *Server) observeRequest(r *http.Request, st *reqState, status int, d time.Duration) {
	route := st.route
	if route == "" {
		route = "other" // 404s and 405s: never the path
	}
	s.ops.metrics.Request(route, r.Method, status, d)
	if route == "/v1/audit/events" && r.Method == http.MethodPost && status >= 400 {
		reason := st.reject
		if reason == "" {
			reason = metrics.ReasonInternal
		}
		s.ops.metrics.IngestRejected(reason)
	}
}

// rejectReason classifies a refused request for
// vellum_ingest_rejections_total.
func rejectReason(ae *apiError) string {
	switch ae.status {
	case http.StatusUnauthorized:
		return metrics.ReasonUnauthenticated
	case http.StatusForbidden:
		return metrics.ReasonForbidden
	case http.StatusBadRequest:
		return metrics.ReasonBadEvent
	case http.StatusRequestEntityTooLarge:
		return metrics.ReasonTooLarge
	case http.StatusInsufficientStorage:
		return metrics.ReasonDiskFull
	case http.StatusServiceUnavailable:
		if errors.Is(ae.cause, context.Canceled) || errors.Is(ae.cause, context.DeadlineExceeded) {
			return metrics.ReasonCanceled
		}
		return metrics.ReasonStoreFailed
	}
	return metrics.ReasonInternal
}

// appendRecords appends through the store and counts the call's result.
// preparer is a store that validates, redacts and encodes records once
// before it appends them (*engine.Engine): ingest then adds the server's
// attributes first, and the size limit measures the records as stored.
type preparer interface {
	Prepare(recs ...vellum.Record) (*engine.Prepared, error)
	PrepareOwned(recs []vellum.Record) (*engine.Prepared, error)
	AppendPrepared(ctx context.Context, p *engine.Prepared) ([]uint64, error)
}

var _ preparer = (*engine.Engine)(nil)

// ingestRecords appends an ingest body's records, prepared once when the
// store can; a record the store refuses becomes the *EventError of its
// event (starts are the events' offsets in body).
func (s *Server) ingestRecords(ctx context.Context, body []byte, starts []int, recs []vellum.Record) ([]uint64, error) {
	ps, ok := s.store.(preparer)
	if !ok {
		return s.appendRecords(ctx, recs...)
	}
	// The records were decoded for this request alone and are not read
	// after (an error names its record by index): the redactor may
	// rewrite them in place rather than copies.
	prepared, err := ps.PrepareOwned(recs)
	if err != nil {
		s.ops.metrics.AppendResult(appendResult(err))
		return nil, recordError(body, starts, err)
	}
	seqs, err := ps.AppendPrepared(ctx, prepared)
	s.ops.metrics.AppendResult(appendResult(err))
	return seqs, err
}

func (s *Server) appendRecords(ctx context.Context, recs ...vellum.Record) ([]uint64, error) {
	seqs, err := s.store.Append(ctx, recs...)
	s.ops.metrics.AppendResult(appendResult(err))
	return seqs, err
}

func appendResult(err error) string {
	switch {
	case err == nil:
		return metrics.ResultOK
	case errors.Is(err, vellum.ErrInvalid):
		return metrics.ResultInvalid
	case errors.Is(err, engine.ErrTooLarge), errors.Is(err, vellum.ErrTooLarge):
		return metrics.ResultTooLarge
	case errors.Is(err, engine.ErrFailed):
		return metrics.ResultFailed
	case errors.Is(err, engine.ErrClosed):
		return metrics.ResultClosed
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return metrics.ResultCanceled
	}
	return metrics.ResultError
}

// GET /metrics on the main listener: role metrics or admin.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request, _ httprouter.Params, p Principal) error {
	if !p.CanScrape() {
		return forbidden("role %s may not read metrics (metrics or admin may)", p.Role)
	}
	s.ops.metrics.Handler().ServeHTTP(w, r)
	return nil
}

// readiness is the body of GET /readyz when it answers 200.
type readiness struct {
	// Status is "ready", or "degraded" while free disk space is below
	// audit.disk.warn_free (ingest still works).
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Replica is the SQL replica's lag, when replication runs (the
	// server stays ready while it lags).
	Replica *replicate.Lag `json:"replica,omitempty"`
	// Witnesses is each configured witness's state, and Alarms one line
	// for each that refuses the store's checkpoints (witness.go). A
	// refusing witness does not make the server unready: the store still
	// keeps every record durably, and refusing ingest would lose them.
	Witnesses []witness.Status `json:"witnesses,omitempty"`
	Alarms    []string         `json:"alarms,omitempty"`
}

// writeReadiness answers GET /readyz: 503 with a detail while shutting
// down, after the store failed closed (with its reason), or while free
// disk space is below the floor (ingest refused); 200 "degraded" while it
// is below the warning threshold; 200 "ready" otherwise.
func (s *Server) writeReadiness(w http.ResponseWriter, r *http.Request) {
	if s.stopping.Load() {
		writeError(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	if err := s.store.Err(); err != nil {
		s.log.Warn("not ready", "id", stateOf(r).id, "err", err.Error())
		if errors.Is(err, engine.ErrClosed) {
			writeError(w, http.StatusServiceUnavailable, "the audit store is closed")
			return
		}
		writeError(w, http.StatusServiceUnavailable, "the audit store failed closed and accepts nothing until an operator restarts it: "+failReason(err))
		return
	}
	ds := s.ops.disk.check()
	if ds.level == diskRefuse {
		writeError(w, http.StatusServiceUnavailable, ds.detail())
		return
	}
	rd := readiness{Status: "ready"}
	if ds.level == diskWarn || ds.err != nil {
		rd.Status, rd.Detail = "degraded", ds.detail()
	}
	if s.replica != nil {
		l := s.replica.Lag()
		rd.Replica = &l
	}
	if s.witness != nil {
		rd.Witnesses, rd.Alarms = s.witness.WitnessStatus(), s.witness.Alarms()
	}
	writeJSON(w, http.StatusOK, rd)
}

// failReason says why the store failed, for /readyz, which anyone may
// call: the operating system's error (such as "no space left on device")
// or the kind of failure, never file paths or record contents (the full
// error is in the log).
func failReason(err error) string {
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno):
		return fmt.Sprintf("an I/O error: %s (the server log names the file)", errno.Error())
	case engine.IsCorrupt(err):
		return "stored data does not verify (corruption or tampering; the server log names the place)"
	}
	return "an I/O or internal error (the server log has the details)"
}
