package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/vellumlog/vellum/buildinfo"
	"github.com/vellumlog/vellum/server"
)

// runServer announces srv (one "serving" line: URL, version, principals
// and attrs), serves it on l, and GET /metrics without a token on ml when
// metrics.addr bound one, until ctx ends or serving fails; SIGHUP reloads
// the TLS certificate meanwhile. ready, when not nil, gets l's address once
// SIGHUP is caught. It returns serving's error (nil when ctx ended); the
// caller shuts srv down.
func runServer(ctx context.Context, cfg *server.ServerConfig, srv *server.Server, l, ml net.Listener, ready chan<- string, log *slog.Logger, attrs ...any) error {
	scheme := "http://"
	if cfg.TLS.Enabled() {
		scheme = "https://"
	}
	served := make(chan error, 2)
	if ml != nil {
		log.Info("serving /metrics without authentication", slog.String("addr", "http://"+ml.Addr().String()+"/metrics"))
		go func() {
			if err := srv.ServeMetrics(ml); err != nil {
				served <- err
			}
		}()
	}
	attrs = append([]any{slog.String("addr", scheme+l.Addr().String())}, attrs...)
	attrs = append(attrs, slog.Int("principals", srv.Principals()), slog.String("version", buildinfo.Read().Version))
	log.Info("serving", attrs...)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP) // reload the TLS certificate
	defer signal.Stop(hup)
	if ready != nil {
		ready <- l.Addr().String()
	}
	go func() { served <- srv.Serve(l) }()
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping: no new connections; finishing requests in flight")
			return nil
		case err := <-served:
			return err
		case <-hup:
			srv.ReloadTLS() // logs the result; a failed reload keeps the old certificate
		}
	}
}
