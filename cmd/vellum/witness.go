package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/witness"
)

// logFlags collects repeated --log ORIGIN=KEY flags.
type logFlags []witness.Log

func (l *logFlags) String() string { return fmt.Sprint(len(*l), " logs") }

func (l *logFlags) Set(v string) error {
	origin, key, ok := strings.Cut(v, "=")
	if !ok || origin == "" || key == "" {
		return fmt.Errorf("%q is not ORIGIN=KEY (KEY: the log's checkpoint public key, or a file holding it, such as its signing.pub)", v)
	}
	ver, err := checkpoint.ParseVerifier(key)
	if err != nil {
		if ver, err = checkpoint.LoadVerifier(key); err != nil {
			return fmt.Errorf("log %s: %v", origin, err)
		}
	}
	*l = append(*l, witness.Log{Origin: origin, Key: ver})
	return nil
}

func init() {
	helps["witness"] = helpText{
		usage: "witness --data DIR --addr HOST:PORT --log ORIGIN=KEY [--log ...] [--name NAME]",
		description: `Runs a witness: a separate process, best on a machine the log's operator
does not control, that cosigns a Vellum store's checkpoints (C2SP
tlog-witness, tlog-cosignature) only when each extends the last one it
cosigned, and refuses a rollback, a fork or a bad signature loudly (HTTP
status, an ALARM log line, and an entry in its alarm log).

On first run it creates DIR with the witness's Ed25519 key pair
(witness.key, mode 0600; witness.pub), and prints the public key: give it
to auditors (vellum verify --witness KEY) and to the log's operator
(audit.witness in the server's config). DIR also holds the witness's view
(state) and its alarm log (alarms); neither may be removed, and the
witness refuses to start if they were. HTTP: POST /add-checkpoint (C2SP
tlog-witness, for the log's server), GET /checkpoint?origin=O (the latest
checkpoint cosigned for O, for auditors), GET /alarms, GET /healthz.
See docs/witness.md.`,
		examples: `vellum witness --data /var/lib/vellum-witness --addr 0.0.0.0:8090 \
    --name witness.example.com/audit \
    --log vellum/0123456789abcdef0123456789abcdef=/etc/vellum-witness/store-a.pub`,
	}
}

func runWitness(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("witness", stderr)
	dir := fl.String("data", "./vellum-witness", "the witness's directory: its key, its view and its alarm log")
	addr := fl.String("addr", "127.0.0.1:8090", "listen address host:port")
	name := fl.String("name", "", "the witness's key name on first run, ideally a host name and path that identify it (default: "+witness.DefaultName+"/<host name>)")
	var logs logFlags
	fl.Var(&logs, "log", "a log to watch, as ORIGIN=KEY: the origin line of its checkpoints (vellum/<store id>) and its checkpoint public key or a file holding it (signing.pub); repeatable")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	if *name == "" {
		*name = defaultWitnessName()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serveWitness(ctx, *dir, *addr, *name, logs, nil, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "vellum witness: %v\n", err)
		return 2
	}
	return 0
}

// defaultWitnessName is "vellum-witness/<host name>", with characters a
// key name may not hold left out.
func defaultWitnessName() string {
	h, _ := os.Hostname()
	h = strings.Map(func(r rune) rune {
		if r <= ' ' || r == '+' || r == 0x7f {
			return -1
		}
		return r
	}, h)
	if h == "" {
		return witness.DefaultName
	}
	return witness.DefaultName + "/" + h
}

// serveWitness runs the witness until ctx ends. ready, when not nil,
// receives the listening address.
func serveWitness(ctx context.Context, dir, addr, name string, logs []witness.Log, ready chan<- string, stdout, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	w, err := witness.Open(dir, &witness.Options{Name: name, Logs: logs, Logger: log})
	if err != nil {
		return err
	}
	defer w.Close()
	fmt.Fprintf(stdout, "witness public key (for auditors: vellum verify --witness KEY; for the log: audit.witness):\n\n    %s\n\n", w.Verifier())
	if n := len(w.Alarms()); n > 0 {
		fmt.Fprintf(stdout, "WARNING: %d alarms on record (see the log above, or GET /alarms)\n", n)
	}
	if len(logs) == 0 {
		log.Warn("the witness watches no log and will answer 404 to every checkpoint; add --log ORIGIN=KEY")
	}
	for _, l := range logs {
		log.Info("watching", slog.String("origin", l.Origin), slog.String("log_key", fmt.Sprintf("%s+%08x", l.Key.Name(), l.Key.KeyHash())))
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: w.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	log.Info("serving", slog.String("addr", "http://"+ln.Addr().String()), slog.String("data", dir), slog.String("witness_key", w.Verifier().String()))
	if ready != nil {
		ready <- ln.Addr().String()
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	log.Info("stopped")
	return err
}

var _ flag.Value = (*logFlags)(nil)
