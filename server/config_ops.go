package server

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"
)

// Defaults of the operational settings (issue 15).
const (
	DefaultLogFormat = "text"
	// DefaultAccessLog logs every request at info.
	DefaultAccessLog = "all"
	// DefaultDiskWarnFree: below this much free space /readyz reports
	// degraded and vellum_disk_alarm{level="warn"} is 1.
	DefaultDiskWarnFree = 1 << 30
	// DefaultDiskMinFree: below this much free space ingest is refused
	// with 507. It leaves room for the requests in flight (each at most
	// body_limit), a segment seal, checkpoints and the audit.query
	// records of reads, which go on.
	DefaultDiskMinFree = 256 << 20
	// DefaultDiskCheckInterval is how often free space is checked when no
	// request asks (ingest requests and every /readyz check too; see
	// diskReuseAge).
	DefaultDiskCheckInterval = Duration(10 * time.Second)
)

// RoleMetrics may scrape GET /metrics and nothing else.
const RoleMetrics Role = "metrics"

// CanScrape reports whether p may read /metrics on the main listener.
func (p Principal) CanScrape() bool { return p.Role == RoleAdmin || p.Role == RoleMetrics }

// MetricsConfig says who may scrape the Prometheus metrics.
type MetricsConfig struct {
	// Addr, when set, also serves GET /metrics without authentication on
	// this separate host:port (say 127.0.0.1:9464, or an address only the
	// monitoring network reaches). Empty: /metrics is served only on the
	// main listener, to principals with role metrics or admin.
	Addr string `yaml:"addr"`
}

// DiskConfig sets the free-space alarms of the data directory's file
// system (NIST 800-53 AU-4, AU-5).
type DiskConfig struct {
	// WarnFree: below it /readyz answers 200 with status "degraded", the
	// vellum_disk_alarm{level="warn"} gauge is 1 and a warning is logged.
	WarnFree ByteSize `yaml:"warn_free"`
	// MinFree: below it (counting the request's own body) ingest is
	// refused with 507 before the disk fills, /readyz answers 503, and
	// ingest resumes by itself once space is freed.
	MinFree ByteSize `yaml:"min_free"`
	// CheckInterval is how often free space is checked in the background.
	CheckInterval Duration `yaml:"check_interval"`
}

// TLSConfig serves HTTPS instead of HTTP.
type TLSConfig struct {
	// CertFile and KeyFile are the server's PEM certificate chain and
	// private key; both or neither. They are read again on SIGHUP.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile, when set, asks clients for a certificate signed by
	// one of these PEM CAs; principals with cert_subject are then
	// authenticated by their certificate instead of a bearer token.
	ClientCAFile string `yaml:"client_ca_file"`
}

// Enabled reports whether the server serves HTTPS.
func (t *TLSConfig) Enabled() bool { return t.CertFile != "" }

// setOpsDefaults fills the operational settings' defaults (called by
// SetDefaults).
func (c *ServerConfig) setOpsDefaults() {
	setDefault(&c.LogFormat, DefaultLogFormat)
	setDefault(&c.AccessLog, DefaultAccessLog)
	d := &c.Audit.Disk
	setDefault(&d.WarnFree, DefaultDiskWarnFree)
	setDefault(&d.MinFree, DefaultDiskMinFree)
	setDefault(&d.CheckInterval, DefaultDiskCheckInterval)
}

// validateOps checks the operational settings (called by Validate).
func (c *ServerConfig) validateOps() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrConfig, key, fmt.Sprintf(format, args...))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return bad("log_format", "%q is not text or json", c.LogFormat)
	}
	switch c.AccessLog {
	case "all", "quiet":
	default:
		return bad("access_log", "%q is not all or quiet", c.AccessLog)
	}
	if a := c.Metrics.Addr; a != "" {
		_, port, err := net.SplitHostPort(a)
		if p, perr := strconv.Atoi(port); err != nil || perr != nil || p < 0 || p > 65535 {
			return bad("metrics.addr", "%q is not host:port (e.g. 127.0.0.1:9464)", a)
		}
		if a == c.Addr && port != "0" { // port 0: each gets a free one
			return bad("metrics.addr", "%q is also addr; give the metrics listener its own port, or leave metrics.addr empty to serve /metrics on addr to role metrics", a)
		}
	}
	d := &c.Audit.Disk
	if d.WarnFree < 0 || d.MinFree < 0 {
		return bad("audit.disk", "free-space thresholds must not be negative")
	}
	if d.MinFree > d.WarnFree {
		return bad("audit.disk.min_free", "%s is above audit.disk.warn_free %s (the warning must come first)", d.MinFree, d.WarnFree)
	}
	if d.CheckInterval < Duration(100*time.Millisecond) {
		return bad("audit.disk.check_interval", "%s is below the minimum of 100ms", d.CheckInterval)
	}
	t := &c.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		return bad("tls", "set both tls.cert_file and tls.key_file, or neither")
	}
	if t.ClientCAFile != "" && t.CertFile == "" {
		return bad("tls.client_ca_file", "client certificates need TLS: set tls.cert_file and tls.key_file too")
	}
	for i, tk := range c.Auth.Tokens {
		if tk.CertSubject != "" && t.ClientCAFile == "" {
			return bad(fmt.Sprintf("auth.tokens[%d].cert_subject", i), "needs tls.client_ca_file (the CAs that sign client certificates)")
		}
	}
	return nil
}

// opsLogValue describes the operational settings for the startup log.
func (c *ServerConfig) opsLogValue() slog.Attr {
	return slog.Group("ops",
		slog.String("log_format", c.LogFormat),
		slog.String("access_log", c.AccessLog),
		slog.String("metrics_addr", c.Metrics.Addr),
		slog.String("disk_warn_free", c.Audit.Disk.WarnFree.String()),
		slog.String("disk_min_free", c.Audit.Disk.MinFree.String()),
		slog.Bool("tls", c.TLS.Enabled()),
		slog.Bool("client_certs", c.TLS.ClientCAFile != ""),
	)
}
