package server

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/backends"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/metrics"
	"github.com/vellumlog/vellum/query"
)

// Store is what the server needs from the audit store: the AuditStore
// contract (backends.Store) without Close, which the server leaves to its
// owner. *engine.Engine and every backends store implement it.
// Implementations must be safe for concurrent use.
type Store interface {
	// Append stores records in order and returns their seqs, only once
	// they are durable (fsync'd). The store stamps Seq and Time and stores
	// a retried (tenant, event_id) once, returning its first seq. An error
	// means none of them is acknowledged; errors wrapping
	// backends.ErrInvalid or backends.ErrTooLarge are the caller's fault.
	Append(ctx context.Context, recs ...vellum.Record) ([]uint64, error)
	// Get returns the record with seq, or an error wrapping
	// backends.ErrNotFound when the store does not hold it (never written,
	// or expired by retention).
	Get(ctx context.Context, seq uint64) (vellum.Record, error)
	// Query returns the next page of records matching q (q.Match), in q's
	// order, at most q.Limit of them, with Next set when the page is
	// full. q is normalized.
	Query(ctx context.Context, q query.Query) (query.Page, error)
	// Err returns nil while the store works, and the reason once it has
	// failed closed or been closed; it then accepts nothing.
	Err() error
}

var (
	_ Store = (*engine.Engine)(nil)
	_ Store = backends.Store(nil)
)

// Options are the run-time settings of a Server that do not come from the
// config file. The zero value works.
type Options struct {
	// Logger receives structured logs: requests (method, route, status,
	// principal name, duration), never tokens, keys or record contents.
	// Nil discards logs.
	Logger *slog.Logger
	// CursorKey tags paging cursors; pass
	// hmacKey.Derive(query.CursorKeyLabel) so cursors survive restarts.
	// Nil: a random key per process (cursors die with it).
	CursorKey *chain.Key
	// LookupEnv resolves token_env and the quick-start token variables;
	// nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// StoredTokens are principals from the data directory's token file
	// (LoadStoredTokens), accepted beside the config's auth.tokens;
	// SetStoredTokens replaces them while the server runs.
	StoredTokens []StoredToken
	// Replica, when replication runs, reports its lag in /readyz.
	Replica ReplicaStatus
	// ReplicaQuery answers GET /v1/audit when query.source is replica.
	ReplicaQuery Lister
	// Metrics receives the server's request, ingest and disk series and
	// serves GET /metrics; pass the one the engine observes. Nil: the
	// server makes its own (ops.go).
	Metrics *metrics.Metrics
	// DiskSpace returns the free bytes (available to this process) and
	// the total bytes of the file system holding path; nil: statfs(2).
	DiskSpace func(path string) (free, total uint64, err error)
	// Report writes the compliance report page of GET /v1/admin/report
	// (report.go); nil: that route answers 501.
	Report ReportFunc
	// Witness, when set, is the store's witness pusher: its cosigned
	// checkpoint is served in GET /v1/audit and its alarms in GET /readyz.
	Witness Witnessed
}

// Server is the HTTP API of an audit store. It is safe for concurrent use.
type Server struct {
	cfg       ServerConfig
	store     Store
	auth      atomic.Pointer[Authenticator]
	lookupEnv func(string) (string, bool)
	cursorKey *chain.Key
	log       *slog.Logger
	handler   http.Handler
	http      *http.Server
	stopping  atomic.Bool
	// replication (replica.go)
	replica     ReplicaStatus
	replicaList Lister
	ops         opsState // metrics, disk alarms, TLS (ops.go)
	witness     Witnessed
	// trusted gateway (gateway.go)
	gatewayNets   []netip.Prefix
	gatewayWarned atomic.Bool
	// step-stream ingest (steps.go)
	steps *stepSessions
}

// Timeouts of the HTTP server. Bodies may be several MiB from slow agents,
// so reads and writes get minutes; headers get seconds.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 2 * time.Minute
	writeTimeout      = 2 * time.Minute
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

// New makes a server for store from cfg (nil: DefaultConfig). cfg is
// copied, defaults are filled in and it is validated; the tokens it names
// are read from the environment now.
func New(cfg *ServerConfig, store Store, opts *Options) (*Server, error) {
	if store == nil {
		return nil, errors.New("server: nil store")
	}
	if cfg == nil {
		cfg = DefaultConfig()
	}
	if opts == nil {
		opts = &Options{}
	}
	s := &Server{cfg: *cfg, store: store, log: opts.Logger, cursorKey: opts.CursorKey, witness: opts.Witness}
	s.cfg.SetDefaults()
	if err := s.cfg.Validate(); err != nil {
		return nil, err
	}
	if err := s.checkReplicaOptions(opts); err != nil {
		return nil, err
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.lookupEnv = opts.LookupEnv
	s.gatewayNets = s.cfg.TrustedGateway.prefixes()
	s.steps = newStepSessions(defaultStepSessions, defaultStepIdle)
	auth, err := s.buildAuth(opts.StoredTokens)
	if err != nil {
		return nil, err
	}
	s.auth.Store(auth)
	if err := s.initOps(opts); err != nil { // metrics, disk alarms, TLS (ops.go)
		return nil, err
	}
	if s.cursorKey == nil {
		k, err := chain.GenerateKey()
		if err != nil {
			return nil, err
		}
		s.cursorKey = k
	}
	s.handler = s.logRequests(s.router())
	s.http = &http.Server{
		Addr:              s.cfg.Addr,
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	for _, p := range auth.Skipped() {
		s.log.Warn("an optional principal is disabled: its token variable is not set", "principal", p.Name)
	}
	if auth.Len() == 0 {
		s.log.Warn("no tokens configured: every API call will get 401; set VELLUM_ADMIN_TOKEN, auth.tokens, or create one with vellum token create")
	}
	return s, nil
}

// Handler returns the server's HTTP handler (routes, auth, logging), for
// mounting in another server or an httptest.Server.
func (s *Server) Handler() http.Handler { return s.handler }

// ListenAndServe listens on the configured addr and serves until Shutdown,
// then returns nil.
func (s *Server) ListenAndServe() error {
	l, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("server: listen: %w", err)
	}
	return s.Serve(l)
}

// Serve serves on l until Shutdown, then returns nil.
func (s *Server) Serve(l net.Listener) error {
	l = s.startOps(l) // TLS, the plain-HTTP warning, the disk monitor (ops.go)
	if err := s.http.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

// Shutdown stops accepting connections, makes /readyz answer 503, and
// waits until in-flight requests have finished (every acknowledged ingest
// is durable) or ctx ends. It does not close the store.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopping.Store(true)
	s.stopOps(ctx)
	return s.http.Shutdown(ctx)
}

// route is one entry of the API. The table is the single source of the
// routes: the router is built from it and a test checks it against
// openapi.yaml.
type route struct {
	method, path string
	handle       httprouter.Handle
}

func (s *Server) routes() []route {
	return []route{
		{http.MethodGet, "/v1/audit", s.authed(s.handleList)},
		{http.MethodGet, "/v1/audit/:seq", s.authed(s.handleGet)},
		{http.MethodGet, "/v1/audit/consistency", s.authed(s.handleConsistency)},
		{http.MethodGet, "/v1/audit/count", s.authed(s.handleCount)},
		{http.MethodGet, "/v1/audit/export", s.authed(s.handleExport)},
		{http.MethodPost, "/v1/audit/events", s.authed(s.handleIngest)},
		{http.MethodPost, "/v1/audit/steps", s.authed(s.handleSteps)},
		{http.MethodPost, "/v1/audit/checkpoints", s.authed(s.handleSignCheckpoint)},
		{http.MethodGet, "/v1/audit/holds", s.authed(s.handleListHolds)},
		{http.MethodPost, "/v1/audit/holds", s.authed(s.handleSetHold)},
		{http.MethodDelete, "/v1/audit/holds/:id", s.authed(s.handleReleaseHold)},
		{http.MethodPost, "/v1/audit/purge", s.authed(s.handlePurge)},
		{http.MethodGet, "/healthz", s.handleHealthz},
		{http.MethodHead, "/healthz", s.handleHealthz},
		{http.MethodGet, "/readyz", s.handleReadyz},
		{http.MethodHead, "/readyz", s.handleReadyz},
		{http.MethodGet, "/metrics", s.authed(s.handleMetrics)},
		{http.MethodGet, "/v1/admin/report", s.authed(s.handleReport)},
	}
}

// router builds the router from routes(). httprouter cannot hold a static
// segment beside a parameter (/v1/audit/export beside /v1/audit/:seq), so
// a parameter route dispatches its static siblings of the same method
// itself, and answers 405 (with Allow) for a static sibling served only by
// other methods: GET /v1/audit/events is 405, not "bad seq".
func (s *Server) router() *httprouter.Router {
	r := httprouter.New()
	rts := s.routes()
	for i := range rts { // the route pattern, for logs and metrics (ops.go)
		rts[i].handle = withRoute(rts[i].path, rts[i].handle)
	}
	// static[method][parent][name] is the handler of parent+name where
	// parent also has a parameter route.
	type key struct{ method, parent string }
	params := map[key]string{} // parameter route path by method and parent
	for _, rt := range rts {
		if i := strings.LastIndex(rt.path, "/:"); i >= 0 {
			params[key{rt.method, rt.path[:i+1]}] = rt.path
		}
	}
	isSibling := func(path string) (parent, name string, ok bool) {
		i := strings.LastIndex(path, "/")
		parent, name = path[:i+1], path[i+1:]
		if strings.HasPrefix(name, ":") {
			return "", "", false
		}
		for k := range params {
			if k.parent == parent {
				return parent, name, true
			}
		}
		return "", "", false
	}
	siblings := map[key]map[string]httprouter.Handle{}
	allowed := map[string][]string{} // sibling path -> methods serving it
	for _, rt := range rts {
		if parent, name, ok := isSibling(rt.path); ok {
			allowed[rt.path] = append(allowed[rt.path], rt.method)
			if _, clash := params[key{rt.method, parent}]; clash {
				k := key{rt.method, parent}
				if siblings[k] == nil {
					siblings[k] = map[string]httprouter.Handle{}
				}
				siblings[k][name] = rt.handle
				continue
			}
		}
		h := rt.handle
		if i := strings.LastIndex(rt.path, "/:"); i >= 0 {
			k := key{rt.method, rt.path[:i+1]}
			pname := rt.path[i+2:]
			h = func(w http.ResponseWriter, req *http.Request, ps httprouter.Params) {
				v := ps.ByName(pname)
				if sh, ok := siblings[k][v]; ok {
					sh(w, req, nil)
					return
				}
				if methods, ok := allowed[k.parent+v]; ok {
					notAllowed(w, req, strings.Join(append(methods, http.MethodOptions), ", "))
					return
				}
				rt.handle(w, req, ps)
			}
		}
		r.Handle(rt.method, rt.path, h)
	}
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no route %s %s (see openapi.yaml)", req.Method, req.URL.Path))
	})
	// allowedOn lists the methods that serve path, from the table: a
	// static route, or a parameter route whose value is not a sibling
	// served only by other methods (GET does not serve /v1/audit/events).
	allowedOn := func(path string) string {
		var ms []string
		for _, rt := range rts {
			ok := rt.path == path
			if i := strings.LastIndex(rt.path, "/:"); !ok && i >= 0 {
				parent := rt.path[:i+1]
				v, found := strings.CutPrefix(path, parent)
				_, sibling := allowed[path]
				_, mine := siblings[key{rt.method, parent}][v]
				ok = found && v != "" && !strings.Contains(v, "/") && (!sibling || mine)
			}
			if ok && !slices.Contains(ms, rt.method) {
				ms = append(ms, rt.method)
			}
		}
		return strings.Join(append(ms, http.MethodOptions), ", ")
	}
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		notAllowed(w, req, allowedOn(req.URL.Path))
	})
	r.PanicHandler = func(w http.ResponseWriter, req *http.Request, v any) {
		if v == http.ErrAbortHandler {
			panic(v) // a streamed response cut short on purpose
		}
		s.log.Error("handler panic", "method", req.Method, "path", req.URL.Path, "panic", fmt.Sprint(v))
		writeError(w, http.StatusInternalServerError, "internal error; see the server log")
	}
	return r
}

// reqState carries what the request log line reports, filled in as the
// request is handled.
type reqState struct {
	id        string
	principal string
	route     string // the route pattern, for logs and metrics (ops.go)
	reject    string // why an ingest was refused, for metrics (ops.go)
	authMode  string // how the principal authenticated: bearer or mtls
}

type stateKey struct{}

func stateOf(r *http.Request) *reqState {
	if st, ok := r.Context().Value(stateKey{}).(*reqState); ok {
		return st
	}
	return &reqState{}
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests assigns each request an id (X-Request-Id), sets headers that
// keep audit data out of caches, and logs one line per request: method,
// path, status, principal, duration. Never the query string (filters can
// name people), the body or the Authorization header. Every request logs
// at info (server errors at warn) unless access_log is quiet: then
// successful ingests and health checks log at debug — each acknowledged
// event is in the audit log itself, and at tens of thousands of one-event
// requests a second an info line apiece cost the server a tenth of its
// CPU (issue 14's profile); refusals, failures and every read still log
// at info or above.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rs := &reqScope{sw: statusWriter{ResponseWriter: w}} // one allocation for both
		st, sw := &rs.st, &rs.sw
		st.id = requestID(r.Header.Get("X-Request-Id"))
		// Direct map writes: the names are canonical already, and the
		// constant values share one slice (net/http only reads them).
		h := w.Header()
		h["X-Request-Id"] = []string{st.id}
		h["Cache-Control"] = noStore
		h["X-Content-Type-Options"] = noSniff
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
		d := time.Since(start)
		s.observeRequest(r, st, sw.status, d) // metrics (ops.go)
		level := slog.LevelInfo
		switch {
		case sw.status >= 500:
			level = slog.LevelWarn
		case s.cfg.AccessLog != "quiet":
		case r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics",
			r.Method == http.MethodPost && (r.URL.Path == "/v1/audit/events" || r.URL.Path == "/v1/audit/steps") && sw.status < 300:
			level = slog.LevelDebug
		}
		if !s.log.Enabled(r.Context(), level) {
			return // spare building the line's attributes
		}
		// Typed attributes: nothing is boxed into an interface. The record
		// goes to the handler as Logger.LogAttrs would send it, but without
		// the caller's program counter (runtime.Callers was a fifth of the
		// line's cost), which only a handler with AddSource prints and
		// which would name this function for every request anyway.
		rec := slog.NewRecord(time.Now(), level, "request", 0)
		rec.AddAttrs(slog.String("id", st.id), slog.String("method", r.Method), slog.String("route", st.route),
			slog.String("path", r.URL.Path), slog.Int("status", sw.status), slog.String("principal", st.principal),
			slog.Int("bytes", sw.bytes), slog.Duration("duration", d))
		s.log.Handler().Handle(r.Context(), rec)
	})
}

// reqScope holds a request's state and its status writer together.
type reqScope struct {
	st reqState
	sw statusWriter
}

var (
	noStore = []string{"no-store"}
	noSniff = []string{"nosniff"}
)

// requestIDs numbers the ids this process makes, from a random start so
// that ids of different processes and restarts do not collide.
var requestIDs atomic.Uint64

func init() {
	var b [8]byte
	rand.Read(b[:])
	requestIDs.Store(binary.LittleEndian.Uint64(b[:]))
}

// requestID keeps a caller's X-Request-Id when it is short and printable,
// and otherwise makes one: 16 hex digits, the next of this process's
// numbers (no random read per request).
func requestID(in string) string {
	ok := in != "" && len(in) <= 128
	for i := 0; ok && i < len(in); i++ {
		ok = in[i] > ' ' && in[i] < 0x7f
	}
	if ok {
		return in
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], requestIDs.Add(1))
	return hex.EncodeToString(b[:])
}

// apiHandler is a handler that runs as an authenticated principal and
// returns its error for the common error path.
type apiHandler func(w http.ResponseWriter, r *http.Request, ps httprouter.Params, p Principal) error

func (s *Server) authed(h apiHandler) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		p, err := s.authenticate(r) // a bearer token, or a client certificate (tls.go)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		stateOf(r).principal = p.Name
		if err := h(w, r, ps, p); err != nil {
			s.fail(w, r, err)
		}
	}
}

// fail writes err as {"detail": ...} with its status, and logs the causes
// of server-side errors.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	ae := toAPIError(err)
	stateOf(r).reject = rejectReason(ae) // metrics (ops.go)
	if ae.status == http.StatusUnauthorized {
		v := `Bearer realm="vellum"`
		if r.Header.Get("Authorization") != "" {
			v += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", v)
	}
	if ae.status >= 500 && ae.cause != nil {
		s.log.Error("request failed", "id", stateOf(r).id, "status", ae.status, "err", ae.cause.Error())
	}
	writeError(w, ae.status, ae.detail)
}
