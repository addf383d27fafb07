package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vellumlog/vellum/report"
	"github.com/vellumlog/vellum/server"
)

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runReport(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("report", stderr)
	dir := fl.String("data", "./vellum-data", "data directory (read only; no lock is taken, so it works beside a running server or on a copy)")
	since := fl.String("since", "", "first receipt time to count: RFC 3339 (2026-11-01T00:00:00Z) or a UTC date (2026-11-01); default: the first record")
	until := fl.String("until", "", "receipt time to stop before (exclusive), same forms; default: after the last record")
	var tenants multiFlag
	fl.Var(&tenants, "tenant", "only this tenant's records (repeat for several)")
	out := fl.String("out", "", "the HTML file to write (required; refuses to overwrite)")
	pub := fl.String("pubkey", "", "checkpoint public key to check the latest checkpoint's signature (default: DIR/signing.pub when present)")
	cfgPath := fl.String("config", "", "the server's config file, to show its retention and legal holds")
	if code, ok := parse(fl, args); !ok {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "vellum report: "+format+"\n", a...)
		return 2
	}
	if *out == "" {
		return fail("--out FILE.html is required")
	}
	var f report.Filter
	var err error
	if f.Since, err = parseReportTime("since", *since); err != nil {
		return fail("%v", err)
	}
	if f.Until, err = parseReportTime("until", *until); err != nil {
		return fail("%v", err)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return fail("--until must be after --since")
	}
	f.Tenants = tenants
	o := &report.Options{Dir: *dir, Filter: f, PublicKeyFile: *pub}
	if *cfgPath != "" {
		cfg, err := server.LoadConfig(*cfgPath)
		if err != nil {
			return fail("%v", err)
		}
		o.Retention = retentionOf(cfg)
	}
	fh, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return fail("%v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	bar := newProgress(stderr, "reading segments", false)
	o.Progress = func(done, total int) { bar.update(int64(done), int64(total)) }
	start := time.Now()
	r, err := report.Build(ctx, o)
	bar.done()
	if err == nil {
		bw := bufio.NewWriter(fh)
		if err = r.Write(bw, o); err == nil {
			err = bw.Flush()
		}
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(*out)
		return fail("%v", err)
	}
	verdict := "NOT VERIFIED"
	if r.Integrity.Verified() {
		verdict = "verified"
	} else if r.Integrity.Latest == nil {
		verdict = "no signed checkpoint"
	}
	fmt.Fprintf(stderr, "vellum report: %s: %d records (%d read from %d segments) in %s; latest checkpoint: %s\n",
		*out, r.Summary.Records, r.Summary.Scanned, r.Summary.Segments, time.Since(start).Round(time.Millisecond), verdict)
	return 0
}

func parseReportTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--%s %q is not an RFC 3339 time (2026-11-01T00:00:00Z) or a date (2026-11-01)", name, s)
}

// retentionOf is what the report says about retention: the configured
// values, enforced by the segment store (docs/retention.md).
func retentionOf(cfg *server.ServerConfig) report.Retention {
	return report.Retention{Configured: true, MaxAge: time.Duration(cfg.Audit.Retention.MaxAge), LegalHolds: cfg.Audit.Retention.LegalHolds,
		Enforced: cfg.Audit.Store == server.StoreSegment}
}

// serveReport is the server's report generator (GET /v1/admin/report):
// the same page over the server's own data directory, read without a lock
// beside the running engine.
func serveReport(cfg *server.ServerConfig) server.ReportFunc {
	dir := cfg.DataDir
	ret := retentionOf(cfg)
	pub := ""
	if cfg.Audit.SigningKeyFile != "" {
		// A configured key keeps its public half beside it, as keygen
		// writes the pair.
		if p := filepath.Join(filepath.Dir(cfg.Audit.SigningKeyFile), "signing.pub"); fileExists(p) {
			pub = p
		}
	}
	return func(ctx context.Context, w io.Writer, req server.ReportRequest) error {
		return report.Generate(ctx, w, &report.Options{
			Dir:           dir,
			Filter:        report.Filter{Since: req.Since, Until: req.Until, Tenants: req.Tenants},
			PublicKeyFile: pub,
			Retention:     ret,
			Principal:     req.Principal,
		})
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func init() {
	helps["report"] = helpText{
		usage: "report --data DIR [--since T] [--until T] [--tenant ID]... [--pubkey FILE] [--config FILE] --out FILE.html",
		description: `Writes the compliance report: one self-contained HTML page (inline SVG
charts and CSS; no scripts, fonts or stylesheets from anywhere, so it opens
offline and can be handed over as a file). It shows records per day by
outcome, top actions and tools, denied and approval-pending decisions over
time, failures, redaction hits by rule and per-tenant activity, and the
integrity section: the latest signed checkpoint, its signature checked
with the public key and its Merkle root recomputed from the segment files,
the key's fingerprint, retention and legal holds as --config says, and the
commands to re-verify offline. It reads DIR once, without a lock (beside a
running server or on a copy); a progress bar shows on a terminal only.
GET /v1/admin/report serves the same page from a running server, and
records the read.`,
		examples: `vellum report --data ./vellum-data --out report.html
vellum report --data ./copy --since 2026-11-01 --until 2026-12-01 --tenant acme --pubkey signing.pub --out acme-november.html
vellum report --data /var/lib/vellum --config /etc/vellum/vellum.yaml --out report.html   # shows retention and holds`,
	}
}
