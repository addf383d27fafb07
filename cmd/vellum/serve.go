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
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/layout"
	"github.com/vellumlog/vellum/metrics"
	"github.com/vellumlog/vellum/query"
	"github.com/vellumlog/vellum/redact"
	"github.com/vellumlog/vellum/server"
)

// shutdownGrace bounds how long SIGTERM waits for requests in flight.
const shutdownGrace = 30 * time.Second

func runServe(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("serve", stderr)
	cfgPath := fl.String("config", "", "YAML config file (see vellum.example.yaml); none: defaults")
	dataDir := fl.String("data", "", "data directory (overrides data_dir; default ./vellum-data)")
	addr := fl.String("addr", "", "listen address host:port (overrides addr; default 127.0.0.1:8080)")
	cpuProfile := fl.String("cpuprofile", "", "write a CPU profile (pprof) of the whole run to this file, for benchmarking; off by default")
	memProfile := fl.String("memprofile", "", "write an allocation profile (pprof: what the run allocated, sampled) to this file when the server stops, for benchmarking; off by default")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	if *cpuProfile != "" {
		stopProfile, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "vellum serve: %v\n", err)
			return 2
		}
		defer stopProfile()
	}
	if *memProfile != "" {
		// Opened now, so that a bad path fails before the server starts.
		f, err := os.OpenFile(*memProfile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			fmt.Fprintf(stderr, "vellum serve: --memprofile: %v\n", err)
			return 2
		}
		defer func() {
			if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
				fmt.Fprintf(stderr, "vellum serve: --memprofile: %v\n", err)
			}
			f.Close()
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, *cfgPath, *dataDir, *addr, nil, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "vellum serve: %v\n", err)
		return 2
	}
	return 0
}

// startCPUProfile profiles the process's CPU into path (created 0600: a
// profile names functions, never data) until the returned func runs.
func startCPUProfile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// serve runs the server until ctx ends. ready, when not nil, receives the
// listening address once the server accepts connections.
//
// The order matters: everything in the config (tokens and their
// variables, redaction rules, configured key files) is checked before
// anything is written; the address is bound before any key, directory or
// token is created, so a busy port leaves nothing behind; a first-run
// admin token is stored and printed only once the store is open and the
// server can serve.
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
	// Log lines reach stderr in batches, at most server.LogFlushDelay
	// late: with access_log all, a write(2) per request was a third of the
	// access log's cost. Close writes the rest before serve returns.
	logw := server.NewLogWriter(stderr)
	defer logw.Close()
	log := server.NewLogger(logw, cfg) // log_format text or json
	// The startup lines are out before ready says so.
	if ready != nil {
		outer, inner := ready, make(chan string, 1)
		defer close(inner)
		go func() {
			if addr, ok := <-inner; ok {
				logw.Flush()
				outer <- addr
			}
		}()
		ready = inner
	}

	// 1. Check everything, write nothing.
	stored, err := server.LoadStoredTokens(cfg.DataDir)
	if err != nil {
		return err
	}
	if err := checkBeforeDisk(cfg, stored); err != nil {
		return err
	}
	pusher, err := newPusher(cfg, log) // witnesses (issue 16): nil without any; reads their key files, writes nothing
	if err != nil {
		return err
	}

	// 2. Bind: a busy port fails here, before anything is created.
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	defer l.Close()     // after Serve returns this is a no-op
	var ml net.Listener // the open /metrics listener (metrics.addr)
	if cfg.Metrics.Addr != "" {
		if ml, err = net.Listen("tcp", cfg.Metrics.Addr); err != nil {
			return fmt.Errorf("listen on metrics.addr %s: %w", cfg.Metrics.Addr, err)
		}
		defer ml.Close()
	}

	// 3. Create what a first run needs, open the store.
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
	if cfg.Audit.Store != server.StoreSegment { // audit.store: sqlite, postgres, null (backends.go)
		return serveSQL(ctx, cfg, keys, redactor, stored, l, ml, ready, stdout, log)
	}
	signer, origin, err := loadSigner(cfg, log)
	if err != nil {
		return err
	}
	codec, _ := cfg.Audit.CompressionCodec() // validated above
	// Prometheus series (docs/metrics.md): the engine reports to m.
	m := metrics.New(nil)
	eng, err := engine.Open(cfg.DataDir, &engine.Options{
		Codec:              codec,
		NoPostings:         !cfg.Audit.PostingsOn(),
		NoPreallocate:      !cfg.Audit.PreallocateOn(),
		Keys:               keys,
		SegmentSize:        int64(cfg.Audit.SegmentMaxSize),
		SegmentAge:         time.Duration(cfg.Audit.SegmentMaxAge),
		MaxRecordSize:      int(cfg.Audit.MaxRecordSize),
		Redactor:           m.CountRedactions(redactor),
		Observer:           m,
		Logger:             log,
		Signer:             signer,
		Origin:             origin,
		CheckpointRecords:  cfg.Audit.Checkpoint.EveryRecords,
		CheckpointInterval: time.Duration(cfg.Audit.Checkpoint.Every),
		OnCheckpoint:       pusher.Notify,
		Retention:          cfg.Audit.Retention.EngineRetention(), // docs/retention.md
	})
	if err != nil {
		return err
	}
	repl, err := startReplication(ctx, cfg, eng, log) // audit.replicate (backends.go)
	if err != nil {
		eng.Close()
		return err
	}
	defer repl.Close()
	if repl != nil && repl.r != nil {
		// A purge never removes what the replica has not copied yet.
		eng.Retention().SetPurgeGuard(func() (uint64, string) {
			n, _ := repl.r.Replicated()
			return n, "not yet copied to the replica (audit.replicate)"
		})
		// And what a purge removed goes from the replica too: after each
		// purge (scheduled, admin API), and at start whatever the manifest
		// says was purged (by `vellum purge`, or while the replica was
		// down) and the replica has not applied yet.
		eng.Retention().OnPurge(func(res *engine.PurgeResult) { repl.r.Purged(res.Through()) })
		if m := eng.Retention().Purged(); m != nil {
			repl.r.Purged(m.LastSeq)
		}
	}
	startPusher(pusher, eng, log)
	defer pusher.Close()

	// 4. A store nobody can call gets an admin token: made now, kept and
	// printed only once the server is set up.
	var firstToken string
	if needsFirstToken(cfg, stored) {
		if firstToken, err = server.GenerateToken(); err != nil {
			eng.Close()
			return err
		}
		stored = append(stored, server.StoredToken{Name: "admin", Role: server.RoleAdmin, TokenSHA256: server.HashToken(firstToken),
			Created: time.Now().UTC().Truncate(time.Second)})
	}
	srv, err := server.New(cfg, eng, &server.Options{
		Logger:       log,
		CursorKey:    keys.Active().Derive(query.CursorKeyLabel),
		StoredTokens: stored,
		Replica:      repl.status(),
		ReplicaQuery: repl.lister(),
		Metrics:      m,
		Report:       serveReport(cfg), // GET /v1/admin/report (report.go)
		Witness:      witnessed(pusher),
	})
	if err != nil {
		eng.Close()
		return err
	}
	if firstToken != "" {
		if err := server.SaveStoredTokens(cfg.DataDir, stored); err != nil {
			eng.Close()
			return err
		}
		printFirstToken(stdout, firstToken, cfg.DataDir, eng.LastSeq() == 0)
		log.Info("created an admin token", slog.String("tokens_file", filepath.Join(cfg.DataDir, server.TokenFileName)))
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go watchTokens(watchCtx, srv, cfg.DataDir, log)
	serveErr := runServer(ctx, cfg, srv, l, ml, ready, log, // serveops.go
		slog.String("data", cfg.DataDir), slog.Uint64("last_seq", eng.LastSeq()), slog.String("origin", eng.Origin()))
	stopWatch()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && serveErr == nil {
		serveErr = err
	}
	repl.Close() // stops tailing; it resumes from the database's cursor next start
	// Everything acknowledged is already fsync'd; Close commits what
	// callers handed in and releases the lock.
	pusher.Close()
	if err := eng.Close(); err != nil && serveErr == nil {
		serveErr = err
	}
	log.Info("stopped")
	return serveErr
}

// checkBeforeDisk checks what serve will need, reading but never writing:
// the principals (token_env variables must be set, names and tokens
// unique, stored tokens included), the redaction rules, and every key file
// or variable the config names.
func checkBeforeDisk(cfg *server.ServerConfig, stored []server.StoredToken) error {
	auth := cfg.Auth
	auth.Tokens = slices.Clone(auth.Tokens)
	for _, t := range stored {
		auth.Tokens = append(auth.Tokens, t.Config())
	}
	if _, err := server.NewAuthenticator(&auth, nil); err != nil {
		return err
	}
	// The rules compile the same with any key; the real one may not
	// exist yet.
	if _, err := redact.New(cfg.Audit.Redaction, redact.Options{PseudonymKey: make([]byte, 32)}); err != nil {
		return fmt.Errorf("redaction config: %w", err)
	}
	a := &cfg.Audit
	switch {
	case a.HMACKeyEnv != "":
		if _, err := chain.KeyFromEnv(a.HMACKeyEnv); err != nil {
			return fmt.Errorf("audit.hmac_key_env: %w", err)
		}
	case a.HMACKeyFile != "":
		if _, err := chain.LoadKeyFile(a.HMACKeyFile); err != nil {
			return fmt.Errorf("audit.hmac_key_file: %w", err)
		}
	}
	if a.SigningKeyFile != "" {
		if _, err := checkpoint.LoadSigner(a.SigningKeyFile); err != nil {
			return fmt.Errorf("audit.signing_key_file: %w", err)
		}
	}
	if a.PseudonymKeyFile != "" {
		if _, err := chain.LoadKeyFile(a.PseudonymKeyFile); err != nil {
			return fmt.Errorf("audit.pseudonym_key_file: %w", err)
		}
	}
	return server.CheckTLSFiles(&cfg.TLS) // certificate, key and client CAs load

}

// needsFirstToken reports whether nobody could call the server: no token
// in the config, none stored in the data directory, and no quick-start
// variable.
func needsFirstToken(cfg *server.ServerConfig, stored []server.StoredToken) bool {
	if len(cfg.Auth.Tokens) > 0 || len(stored) > 0 {
		return false
	}
	return cfg.Auth.DisableQuickStartEnv || os.Getenv(server.EnvAdminToken) == "" && os.Getenv(server.EnvIngestToken) == ""
}

// printFirstToken shows the created admin token, the only time it is
// shown. "First run" only on a store without records.
func printFirstToken(w io.Writer, tok, dataDir string, empty bool) {
	path := filepath.Join(dataDir, server.TokenFileName)
	if empty {
		fmt.Fprintf(w, "\nFirst run: the admin token is\n\n    %s\n\n", tok)
	} else {
		fmt.Fprintf(w, "\nNo API token is configured for this store (auth.tokens, %s, vellum token): created the admin token\n\n    %s\n\n",
			server.EnvAdminToken, tok)
	}
	fmt.Fprintf(w, "It is shown only now (%s keeps its SHA-256). Use it as\n    Authorization: Bearer <token>\nLost it? vellum token create --data %s --name admin2 --role admin, then vellum token revoke --data %s admin.\n\n",
		path, dataDir, dataDir)
}

// tokenPoll is how often serve looks for changes to the token file.
const tokenPoll = 2 * time.Second

// watchTokens reloads the stored tokens when the token files change, so
// vellum token create and revoke take effect without a restart. A file
// that does not load keeps the previous tokens (and is logged).
func watchTokens(ctx context.Context, srv *server.Server, dataDir string, log *slog.Logger) {
	stamp := func() string {
		var b strings.Builder
		for _, name := range []string{server.TokenFileName, server.LegacyAdminTokenFile} {
			if fi, err := os.Stat(filepath.Join(dataDir, name)); err == nil {
				fmt.Fprintf(&b, "%s %d %d;", name, fi.Size(), fi.ModTime().UnixNano())
			}
		}
		return b.String()
	}
	last := stamp()
	t := time.NewTicker(tokenPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := stamp()
		if now == last {
			continue
		}
		last = now
		stored, err := server.LoadStoredTokens(dataDir)
		if err == nil {
			err = srv.SetStoredTokens(stored)
		}
		if err != nil {
			log.Error("the token file changed but cannot be used; keeping the previous tokens", slog.String("err", err.Error()))
		}
	}
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

// loadSigner reads the checkpoint signing key from audit.signing_key_file,
// or, when none is configured, from <data>/signing.key, generating that key
// pair on first run (private 0600; signing.pub is what auditors are given)
// named after the store's origin, vellum/<store id>, as C2SP
// tlog-checkpoint recommends. It returns the origin to sign under: the
// store's, which a key named otherwise does not change (a warning says
// so).
func loadSigner(cfg *server.ServerConfig, log *slog.Logger) (note.Signer, string, error) {
	id, err := engine.InitStore(cfg.DataDir)
	if err != nil {
		return nil, "", err
	}
	origin := engine.DefaultOrigin(id)
	path := cfg.Audit.SigningKeyFile
	if path == "" {
		path = filepath.Join(cfg.DataDir, checkpoint.PrivateKeyFile)
		pub := filepath.Join(cfg.DataDir, checkpoint.PublicKeyFile)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if res, err := checkpoint.ReadLog(nil, filepath.Join(cfg.DataDir, checkpoint.LogName)); err == nil && len(res.Entries) > 0 {
				return nil, "", fmt.Errorf("the store in %s has signed checkpoints but its signing key %s is missing; restore it or set audit.signing_key_file", cfg.DataDir, path)
			}
			sk, vk, err := checkpoint.GenerateKey(origin)
			if err != nil {
				return nil, "", err
			}
			if err := checkpoint.WriteKeyPair(path, pub, sk, vk); err != nil {
				return nil, "", err
			}
			log.Warn("generated a checkpoint signing key in the data directory; give auditors the public key, and for production keep the private key elsewhere (audit.signing_key_file)",
				slog.String("public_key", pub))
		}
	}
	signer, err := checkpoint.LoadSigner(path)
	if err != nil {
		return nil, "", err
	}
	if signer.Name() != origin {
		log.Warn("the checkpoint signing key is not named after the log's origin (C2SP tlog-checkpoint recommends it); make one that is with vellum keygen --name "+origin,
			slog.String("key_name", signer.Name()), slog.String("origin", origin))
	}
	return signer, origin, nil
}
