package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/query"
	"github.com/vellumlog/vellum/redact"
	"github.com/vellumlog/vellum/server"
)

// adminTokenFile holds the SHA-256 of the admin token printed on first run.
const adminTokenFile = "admin-token.sha256"

// shutdownGrace bounds how long SIGTERM waits for requests in flight.
const shutdownGrace = 30 * time.Second

func runServe(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("serve", stderr)
	cfgPath := fl.String("config", "", "YAML config file (see vellum.example.yaml); none: defaults")
	dataDir := fl.String("data", "", "data directory (overrides data_dir; default ./vellum-data)")
	addr := fl.String("addr", "", "listen address host:port (overrides addr; default 127.0.0.1:8080)")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, *cfgPath, *dataDir, *addr, nil, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "vellum serve: %v\n", err)
		return 2
	}
	return 0
}

// serve runs the server until ctx ends. ready, when not nil, receives the
// listening address once the server accepts connections.
func serve(ctx context.Context, cfgPath, dataDir, addr string, ready chan<- string, stdout, stderr io.Writer) error {
	cfg := server.DefaultConfig()
	if cfgPath != "" {
		var err error
		if cfg, err = server.LoadConfig(cfgPath); err != nil {
			return err
		}
	}
	if dataDir != "" {
		cfg.DataDir = dataDir
	}
	if addr != "" {
		cfg.Addr = addr
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.Level()}))
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return err
	}

	keys, err := loadHMACKey(cfg, log)
	if err != nil {
		return err
	}
	redactor, err := buildRedactor(cfg, log)
	if err != nil {
		return err
	}
	if err := firstRunToken(cfg, stdout, log); err != nil {
		return err
	}
	if cfg.Audit.Retention.MaxAge > 0 {
		log.Warn("retention.max_age is set, but this build does not expire segments yet; everything is kept")
	}

	// Signed checkpoints (issue 3): without a signing key the store keeps
	// Merkle roots but signs nothing an auditor could check.
	signer, err := loadSigner(cfg, log)
	if err != nil {
		return err
	}
	eng, err := engine.Open(cfg.DataDir, &engine.Options{
		Keys:               keys,
		SegmentSize:        int64(cfg.Audit.SegmentMaxSize),
		SegmentAge:         time.Duration(cfg.Audit.SegmentMaxAge),
		MaxRecordSize:      int(cfg.Audit.MaxRecordSize),
		Redactor:           redactor,
		Logger:             log,
		Signer:             signer,
		CheckpointRecords:  cfg.Audit.Checkpoint.EveryRecords,
		CheckpointInterval: time.Duration(cfg.Audit.Checkpoint.Every),
	})
	if err != nil {
		return err
	}
	srv, err := server.New(cfg, eng, &server.Options{
		Logger:    log,
		CursorKey: keys.Active().Derive(query.CursorKeyLabel),
	})
	if err != nil {
		eng.Close()
		return err
	}
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		eng.Close()
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	log.Info("serving", slog.String("addr", "http://"+l.Addr().String()), slog.String("data", cfg.DataDir),
		slog.Uint64("last_seq", eng.LastSeq()))
	if ready != nil {
		ready <- l.Addr().String()
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("stopping: no new connections; finishing requests in flight")
	case serveErr = <-served:
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && serveErr == nil {
		serveErr = err
	}
	// Everything acknowledged is already fsync'd; Close commits what
	// callers handed in and releases the lock.
	if err := eng.Close(); err != nil && serveErr == nil {
		serveErr = err
	}
	log.Info("stopped")
	return serveErr
}

// loadHMACKey reads the chain key from the configured file or variable, or
// generates <data>/hmac.key (0600) on first run.
func loadHMACKey(cfg *server.ServerConfig, log *slog.Logger) (*chain.Keyring, error) {
	if cfg.Audit.HMACKeyEnv != "" {
		k, err := chain.KeyFromEnv(cfg.Audit.HMACKeyEnv)
		if err != nil {
			return nil, err
		}
		return chain.NewKeyring(k), nil
	}
	path := cfg.HMACKeyPath()
	k, err := chain.LoadKeyFile(path)
	if errors.Is(err, os.ErrNotExist) && cfg.Audit.HMACKeyFile == "" {
		if nums, _ := layout.ListSegments(nil, cfg.DataDir); len(nums) > 0 {
			return nil, fmt.Errorf("the store in %s has segments but its key %s is missing; restore the key (a new one cannot verify the existing chain)", cfg.DataDir, path)
		}
		if k, err = chain.GenerateKey(); err != nil {
			return nil, err
		}
		if err := chain.WriteKeyFile(path, k); err != nil {
			return nil, err
		}
		log.Warn("generated a new HMAC key in the data directory; for production keep it elsewhere (audit.hmac_key_file) so a copy of the data does not carry its key",
			slog.String("path", path), slog.String("key_id", k.ID().String()))
		return chain.NewKeyring(k), nil
	}
	if err != nil {
		return nil, err
	}
	return chain.NewKeyring(k), nil
}

// buildRedactor compiles the redaction config, with the pseudonym key from
// its file (generated on first run when the default path is used).
func buildRedactor(cfg *server.ServerConfig, log *slog.Logger) (*redact.Redactor, error) {
	path := cfg.PseudonymKeyPath()
	k, err := chain.LoadKeyFile(path)
	if errors.Is(err, os.ErrNotExist) && cfg.Audit.PseudonymKeyFile == "" {
		if k, err = chain.GenerateKey(); err == nil {
			err = chain.WriteKeyFile(path, k)
		}
		if err == nil {
			log.Info("generated the pseudonym key", slog.String("path", path))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("pseudonym key: %w", err)
	}
	r, err := redact.New(cfg.Audit.Redaction, redact.Options{PseudonymKey: k.Secret()})
	if err != nil {
		return nil, fmt.Errorf("redaction config: %w", err)
	}
	return r, nil
}

// firstRunToken makes sure somebody can read the log: with no token
// configured at all, it creates an admin token, prints it once, and keeps
// only its SHA-256 in <data>/admin-token.sha256 for later runs.
func firstRunToken(cfg *server.ServerConfig, stdout io.Writer, log *slog.Logger) error {
	path := filepath.Join(cfg.DataDir, adminTokenFile)
	if b, err := os.ReadFile(path); err == nil {
		cfg.Auth.Tokens = append(cfg.Auth.Tokens, server.TokenConfig{Name: "admin", Role: server.RoleAdmin, TokenSHA256: strings.TrimSpace(string(b))})
		return cfg.Validate()
	}
	if len(cfg.Auth.Tokens) > 0 {
		return nil
	}
	if !cfg.Auth.DisableQuickStartEnv && (os.Getenv(server.EnvAdminToken) != "" || os.Getenv(server.EnvIngestToken) != "") {
		return nil
	}
	tok, err := server.GenerateToken()
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(server.HashToken(tok)+"\n"), 0o600); err != nil {
		return err
	}
	cfg.Auth.Tokens = append(cfg.Auth.Tokens, server.TokenConfig{Name: "admin", Role: server.RoleAdmin, TokenSHA256: server.HashToken(tok)})
	fmt.Fprintf(stdout, "\nFirst run: the admin token is\n\n    %s\n\nIt is shown only now (%s keeps its SHA-256). Use it as\n    Authorization: Bearer <token>\n\n", tok, path)
	log.Info("created the first-run admin token", slog.String("hash_file", path))
	return cfg.Validate()
}

// loadSigner reads the checkpoint signing key from audit.signing_key_file,
// or, when none is configured, from <data>/signing.key, generating that key
// pair on first run (private 0600; signing.pub is what auditors are given).
func loadSigner(cfg *server.ServerConfig, log *slog.Logger) (note.Signer, error) {
	if cfg.Audit.SigningKeyFile != "" {
		return checkpoint.LoadSigner(cfg.Audit.SigningKeyFile)
	}
	priv := filepath.Join(cfg.DataDir, checkpoint.PrivateKeyFile)
	pub := filepath.Join(cfg.DataDir, checkpoint.PublicKeyFile)
	if _, err := os.Stat(priv); err == nil {
		return checkpoint.LoadSigner(priv)
	}
	if res, err := checkpoint.ReadLog(nil, filepath.Join(cfg.DataDir, checkpoint.LogName)); err == nil && len(res.Entries) > 0 {
		return nil, fmt.Errorf("the store in %s has signed checkpoints but its signing key %s is missing; restore it or set audit.signing_key_file", cfg.DataDir, priv)
	}
	sk, vk, err := checkpoint.GenerateKey("vellum")
	if err != nil {
		return nil, err
	}
	if err := checkpoint.WriteKeyPair(priv, pub, sk, vk); err != nil {
		return nil, err
	}
	log.Warn("generated a checkpoint signing key in the data directory; give auditors the public key, and for production keep the private key elsewhere (audit.signing_key_file)",
		slog.String("public_key", pub))
	return checkpoint.LoadSigner(priv)
}
