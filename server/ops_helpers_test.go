package server

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// newTestServerWith is newTestServer with server Options (metrics, disk
// space source, report); it checks the logs for secrets the same way.
func newTestServerWith(t testing.TB, store Store, opts *Options, mod func(*ServerConfig)) *testEnv {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Auth = testAuthConfig()
	if mod != nil {
		mod(cfg)
	}
	logs := &syncBuffer{}
	o := *opts
	o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o.LookupEnv = envOf(map[string]string{"ACME_INGEST": acmeIngest})
	srv, err := New(cfg, store, &o)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	scheme := "http://"
	if cfg.TLS.Enabled() {
		scheme = "https://"
	}
	e := &testEnv{t: t, base: scheme + l.Addr().String(), srv: srv, store: store, logs: logs,
		client: &http.Client{Timeout: 30 * time.Second}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		out := logs.String()
		for _, s := range append(secrets, metricsToken) {
			if strings.Contains(out, s) {
				t.Errorf("the server log contains %q:\n%s", s, out)
			}
		}
	})
	return e
}
