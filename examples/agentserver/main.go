// Command agentserver is a small agent server that embeds Vellum as its
// default store: a scripted model with three tools (lookup_order, plain;
// issue_refund, which needs an operator's approval and is denied over a
// limit; fetch_invoice, which fails), whose step stream is observed by
// collector.AuditCollector and recorded in an engine in the same process.
// It serves its agent API (/chat, /questions/{id}) and Vellum's own
// (GET /v1/audit and the rest of the standalone server's routes).
//
//	VELLUM_ADMIN_TOKEN=$(openssl rand -hex 16) go run ./examples/agentserver -data /tmp/agent
//	# the gateway's X-Tenant / X-Auth-Subject count only from -gateway's networks (loopback by default)
//	curl -N -H 'X-Tenant: acme' -H 'X-Auth-Subject: alice' \
//	     -d '{"session_id": "s-1", "message": "refund order 1234"}' http://127.0.0.1:8090/chat
//	curl -H 'X-Tenant: acme' -H 'X-Auth-Subject: ops-bob' -d '{"outcome": "approve"}' \
//	     http://127.0.0.1:8090/questions/q-1
//	curl -H "Authorization: Bearer $VELLUM_ADMIN_TOKEN" 'http://127.0.0.1:8090/v1/audit?session_id=s-1'
//
// See examples/agentserver/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/collector"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/query"
	"github.com/vellumlog/vellum/server"
	"github.com/vellumlog/vellum/step"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "agentserver:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	data       string
	addr       string
	policy     collector.Policy
	timeout    time.Duration
	askTimeout time.Duration
	gateway    []string
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	var policy string
	fs := flag.NewFlagSet("agentserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.data, "data", "agentserver-data", "directory of the audit store (vellum/) and the collector's spill file")
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8090", "listen address")
	fs.StringVar(&policy, "policy", "fail_closed", "audit failure policy: fail_closed (a step waits until its records are durable) or fail_open (spill and go on)")
	fs.DurationVar(&c.timeout, "audit-timeout", collector.DefaultTimeout, "fail_closed: how long a step may wait for its records to be durable")
	fs.DurationVar(&c.askTimeout, "ask-timeout", 2*time.Minute, "how long a question waits for an operator")
	gateway := fs.String("gateway", "127.0.0.1/32,::1/128", "comma-separated source networks of the trusted gateway, whose X-Tenant and X-Auth-Subject say who the user is (from anywhere else they are ignored)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c.policy = collector.Policy(policy)
	if c.policy != collector.FailClosed && c.policy != collector.FailOpen {
		return c, fmt.Errorf("-policy %q is not fail_closed or fail_open", policy)
	}
	for _, n := range strings.Split(*gateway, ",") {
		if n = strings.TrimSpace(n); n != "" {
			c.gateway = append(c.gateway, n)
		}
	}
	if c.timeout <= 0 || c.askTimeout <= 0 {
		return c, errors.New("-audit-timeout and -ask-timeout must be positive")
	}
	return c, nil
}

// run serves until ctx ends. When ready is not nil it receives the base
// URL once the server listens.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- string) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	// The store: an engine in this process, with its HMAC key beside it
	// (production keeps the key apart from the data, as the standalone
	// server's audit.hmac_key_file does).
	storeDir := filepath.Join(cfg.data, "vellum")
	if err := os.MkdirAll(storeDir, 0o700); err != nil {
		return err
	}
	key, err := loadOrCreateKey(filepath.Join(cfg.data, "hmac.key"))
	if err != nil {
		return err
	}
	eng, err := engine.Open(storeDir, &engine.Options{Keys: chain.NewKeyring(key), Logger: log})
	if err != nil {
		return err
	}
	defer eng.Close()

	// The collector observes every agent stream.
	copts := &collector.Options{Policy: cfg.policy, Timeout: cfg.timeout, Logger: log}
	if cfg.policy == collector.FailOpen {
		copts.SpillPath = filepath.Join(cfg.data, "audit.spill")
	}
	coll, err := collector.New(eng, copts)
	if err != nil {
		return err
	}
	defer coll.Close()

	// Vellum's API over the same engine: GET /v1/audit for auditors
	// (VELLUM_ADMIN_TOKEN or auth tokens of the standalone config format).
	vcfg := server.DefaultConfig()
	vcfg.DataDir = storeDir
	vsrv, err := server.New(vcfg, eng, &server.Options{Logger: log, CursorKey: key.Derive(query.CursorKeyLabel)})
	if err != nil {
		return err
	}

	gw, err := collector.NewGateway(cfg.gateway, log)
	if err != nil {
		return err
	}
	agent := NewAgent(cfg.askTimeout)
	api := &agentAPI{agent: agent, gw: gw, log: log, stream: func(r *http.Request, id collector.Request, session, message string) iter.Seq2[step.Event, error] {
		id.SessionID, id.Agent, id.Model = session, agent.Name, agent.Model
		id.TraceID, id.RequestID = r.Header.Get("X-Trace-Id"), r.Header.Get("X-Request-Id")
		ctx := collector.WithRequest(r.Context(), id)
		return coll.Wrap(ctx, agent.Run(ctx, message))
	}}
	mux := http.NewServeMux()
	api.routes(mux)
	mux.Handle("/v1/", vsrv.Handler())
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := eng.Err(); err != nil {
			problem(w, http.StatusServiceUnavailable, "audit store: "+err.Error())
			return
		}
		if err := coll.Ready(); err != nil {
			problem(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		w.Write([]byte("ready\n"))
	})

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	url := "http://" + ln.Addr().String()
	log.Info("serving", "addr", url, "policy", string(cfg.policy))
	if ready != nil {
		ready <- url
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}

// loadOrCreateKey reads the HMAC key at path, creating it on first run.
func loadOrCreateKey(path string) (*chain.Key, error) {
	k, err := chain.LoadKeyFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if k, err = chain.GenerateKey(); err == nil {
			err = chain.WriteKeyFile(path, k)
		}
	}
	return k, err
}
