package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/query"
)

// Store is what the server needs from the audit store; *engine.Engine
// implements it. Implementations must be safe for concurrent use.
type Store interface {
	// Append stores records in order and returns their seqs, only once
	// they are durable (fsync'd). The store stamps Seq and Time and stores
	// a retried (tenant, event_id) once, returning its first seq. An error
	// means none of them is acknowledged; errors wrapping vellum.ErrInvalid
	// or engine.ErrTooLarge are the caller's fault.
	Append(ctx context.Context, recs ...vellum.Record) ([]uint64, error)
	// Prepare validates, redacts and encodes records once, for
	// AppendPrepared; a record it refuses is named by an
	// *engine.RecordError wrapping vellum.ErrInvalid or engine.ErrTooLarge.
	Prepare(recs ...vellum.Record) (*engine.Prepared, error)
	// AppendPrepared appends what Prepare made ready, as Append does.
	AppendPrepared(ctx context.Context, p *engine.Prepared) ([]uint64, error)
	// Get returns the record with seq, or an error wrapping
	// engine.ErrNotFound when the store does not hold it (never written,
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

var _ Store = (*engine.Engine)(nil)

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
	s := &Server{cfg: *cfg, store: store, log: opts.Logger, cursorKey: opts.CursorKey}
	s.cfg.SetDefaults()
	if err := s.cfg.Validate(); err != nil {
		return nil, err
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.lookupEnv = opts.LookupEnv
	auth, err := s.buildAuth(opts.StoredTokens)
	if err != nil {
		return nil, err
	}
	s.auth.Store(auth)
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
	s.log.Info("serving", "addr", l.Addr().String(), "principals", s.auth.Load().Len())
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
		{http.MethodGet, "/v1/audit/export", s.authed(s.handleExport)},
		{http.MethodPost, "/v1/audit/events", s.authed(s.handleIngest)},
		{http.MethodPost, "/v1/audit/checkpoints", s.authed(s.handleSignCheckpoint)},
		{http.MethodGet, "/healthz", s.handleHealthz},
		{http.MethodHead, "/healthz", s.handleHealthz},
		{http.MethodGet, "/readyz", s.handleReadyz},
		{http.MethodHead, "/readyz", s.handleReadyz},
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
// name people), the body or the Authorization header.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		st := &reqState{id: requestID(r.Header.Get("X-Request-Id"))}
		h := w.Header()
		h.Set("X-Request-Id", st.id)
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
		level := slog.LevelInfo
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			level = slog.LevelDebug
		}
		if sw.status >= 500 {
			level = slog.LevelWarn
		}
		s.log.Log(r.Context(), level, "request",
			"id", st.id, "method", r.Method, "path", r.URL.Path, "status", sw.status,
			"principal", st.principal, "bytes", sw.bytes, "duration", time.Since(start))
	})
}

// requestID keeps a caller's X-Request-Id when it is short and printable,
// and otherwise makes one.
func requestID(in string) string {
	ok := in != "" && len(in) <= 128
	for i := 0; ok && i < len(in); i++ {
		ok = in[i] > ' ' && in[i] < 0x7f
	}
	if ok {
		return in
	}
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// apiHandler is a handler that runs as an authenticated principal and
// returns its error for the common error path.
type apiHandler func(w http.ResponseWriter, r *http.Request, ps httprouter.Params, p Principal) error

func (s *Server) authed(h apiHandler) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		p, err := s.auth.Load().Authenticate(r)
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
