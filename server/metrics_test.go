package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vellumlog/vellum/chain"
	"github.com/vellumlog/vellum/checkpoint"
	"github.com/vellumlog/vellum/engine"
	"github.com/vellumlog/vellum/metrics"
	"github.com/vellumlog/vellum/redact"
	"github.com/vellumlog/vellum/vfs"
)

const metricsToken = "metrics-token-0123456789abcd"

// opsStore opens a real engine observed by m: a signing key (so
// checkpoints are made) and the default redaction rules (so they fire).
func opsStore(t testing.TB, fs vfs.FS, dir string, m *metrics.Metrics) *engine.Engine {
	t.Helper()
	key, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	sk, vk, err := checkpoint.GenerateKey("vellum-test")
	if err != nil {
		t.Fatal(err)
	}
	kd := t.TempDir()
	if err := checkpoint.WriteKeyPair(filepath.Join(kd, "s.key"), filepath.Join(kd, "s.pub"), sk, vk); err != nil {
		t.Fatal(err)
	}
	signer, err := checkpoint.LoadSigner(filepath.Join(kd, "s.key"))
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := chain.GenerateKey()
	red, err := redact.New(redact.Config{}, redact.Options{PseudonymKey: pk.Secret()})
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.Open(dir, &engine.Options{
		Keys: chain.NewKeyring(key), FS: fs, Signer: signer, Redactor: m.CountRedactions(red), Observer: m,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// scrape reads /metrics and parses it with the Prometheus text parser.
func (e *testEnv) scrape(token string) map[string]*dto.MetricFamily {
	e.t.Helper()
	status, body, h := e.do("GET", "/metrics", token, nil)
	if status != http.StatusOK {
		e.t.Fatalf("GET /metrics: %d %s", status, body)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		e.t.Fatalf("Content-Type %q", ct)
	}
	return parseMetrics(e.t, body)
}

func parseMetrics(t testing.TB, body []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the metrics do not parse: %v\n%s", err, body)
	}
	return fams
}

// value returns the value of the series name{labels} (counter, gauge, or a
// histogram's count), failing the test when it is absent.
func value(t testing.TB, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("series %s is missing", name)
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("series %s%v is missing", name, labels)
	return 0
}

// TestMetricsScrape scrapes /metrics after ingest, queries, rejected
// ingests and a checkpoint, and checks the documented series hold the
// right values; then fails the engine closed and checks that too.
func TestMetricsScrape(t *testing.T) {
	m := metrics.New(&metrics.Options{NoRuntime: true})
	// Sources plug in as functions (a replicator's Lag, a collector's
	// Stats).
	m.WatchReplica("sqlite", func() (uint64, float64) { return 7, 3 })
	m.WatchSpill("collector", func() (int, int64) { return 2, 900 })
	store := opsStore(t, nil, t.TempDir(), m)
	e := newTestServerWith(t, store, &Options{Metrics: m}, func(c *ServerConfig) {
		c.Auth.Tokens = append(c.Auth.Tokens, TokenConfig{Name: "prometheus", Role: RoleMetrics, TokenSHA256: HashToken(metricsToken)})
	})
	// Who may scrape.
	for _, tt := range []struct {
		token  string
		status int
	}{{"", 401}, {ingestToken, 403}, {auditToken, 403}, {metricsToken, 200}, {adminToken, 200}} {
		if status, b, _ := e.do("GET", "/metrics", tt.token, nil); status != tt.status {
			t.Fatalf("GET /metrics with %q: %d %s, want %d", tt.token, status, b, tt.status)
		}
	}
	// Ingest: 4 success, 2 denied, 1 pending; one with an e-mail address
	// in its arguments.
	var evs []string
	for i := 0; i < 4; i++ {
		evs = append(evs, event("tenant_id", "acme", "status", "success"))
	}
	evs = append(evs, event("tenant_id", "acme", "status", "denied"), event("tenant_id", "acme", "status", "denied"), event("tenant_id", "acme", "status", "pending"))
	evs = append(evs, `{"action":"tool.call","tenant_id":"acme","tool":{"name":"send_email","arguments":{"to":"jane.doe@example.com"}},"outcome":{"status":"success"}}`)
	e.ingest(ingestToken, evs...)
	// Rejected ingests: a bad event, no token, a forbidden tenant.
	e.do("POST", "/v1/audit/events", ingestToken, []byte(`[{"action":"tool.call"}]`))
	e.do("POST", "/v1/audit/events", "", []byte("["+event()+"]"))
	e.do("POST", "/v1/audit/events", acmeIngest, []byte("["+event("tenant_id", "globex")+"]"))
	// Three queries (each appends an audit.query record, outcome success).
	for i := 0; i < 3; i++ {
		e.list(auditToken, "tenant_id=acme")
	}
	e.do("GET", "/v1/audit/1", auditToken, nil)
	cp, err := store.SignCheckpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	f := e.scrape(metricsToken)
	for name := range f {
		if !strings.HasPrefix(name, "vellum_") {
			t.Errorf("series %s does not start with vellum_", name)
		}
	}
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"vellum_records_appended_total", []string{"outcome", "success"}, 5 + 4}, // 5 events + 3 lists + 1 get
		{"vellum_records_appended_total", []string{"outcome", "denied"}, 2},
		{"vellum_records_appended_total", []string{"outcome", "pending"}, 1},
		{"vellum_records_appended_total", []string{"outcome", "failure"}, 0},
		{"vellum_append_calls_total", []string{"result", "ok"}, 1 + 4},
		{"vellum_ingest_rejections_total", []string{"reason", "bad_event"}, 1},
		{"vellum_ingest_rejections_total", []string{"reason", "unauthenticated"}, 1},
		{"vellum_ingest_rejections_total", []string{"reason", "forbidden"}, 1},
		{"vellum_ingest_rejections_total", []string{"reason", "disk_full"}, 0},
		{"vellum_redactions_total", []string{"rule", "EMAIL"}, 1},
		{"vellum_redacted_records_total", nil, 1},
		{"vellum_http_request_duration_seconds", []string{"route", "/v1/audit"}, 3},
		{"vellum_http_request_duration_seconds", []string{"route", "/v1/audit/:seq"}, 1},
		{"vellum_http_requests_total", []string{"route", "/v1/audit/events", "code", "400"}, 1},
		{"vellum_segments", []string{"state", "active"}, 1},
		{"vellum_segments", []string{"state", "sealed"}, 0},
		{"vellum_last_seq", nil, float64(store.LastSeq())},
		{"vellum_stored_records", nil, 12},
		{"vellum_checkpoint_tree_size", nil, float64(cp.Size)},
		{"vellum_open_verifications_total", []string{"result", "ok"}, 1},
		{"vellum_open_verified_segments", nil, 1},
		{"vellum_store_failed", nil, 0},
		{"vellum_store_failures_total", nil, 0},
		{"vellum_disk_alarm", []string{"level", "warn"}, 0},
		{"vellum_disk_min_free_bytes", nil, DefaultDiskMinFree},
		{"vellum_replica_lag_records", []string{"replica", "sqlite"}, 7},
		{"vellum_replica_lag_seconds", []string{"replica", "sqlite"}, 3},
		{"vellum_spill_events", []string{"spill", "collector"}, 2},
		{"vellum_spill_bytes", []string{"spill", "collector"}, 900},
	}
	for _, c := range checks {
		if got := value(t, f, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	commits := value(t, f, "vellum_commits_total")
	if commits < 5 || value(t, f, "vellum_fsync_duration_seconds") != commits || value(t, f, "vellum_commit_batch_records") != commits {
		t.Errorf("commits %v, fsync observations %v, batch observations %v", commits, value(t, f, "vellum_fsync_duration_seconds"), value(t, f, "vellum_commit_batch_records"))
	}
	if b := value(t, f, "vellum_written_bytes_total"); b < 12*100 {
		t.Errorf("written bytes %v", b)
	}
	if value(t, f, "vellum_checkpoints_signed_total") < 1 || value(t, f, "vellum_checkpoint_age_seconds") < 0 || value(t, f, "vellum_checkpoint_note_bytes") < 50 {
		t.Error("checkpoint series wrong")
	}
	if value(t, f, "vellum_disk_free_bytes") <= 0 || value(t, f, "vellum_disk_total_bytes") <= 0 {
		t.Error("disk series are zero")
	}
	if value(t, f, "vellum_build_info") != 1 {
		t.Error("vellum_build_info is not 1")
	}
	// Every series docs/metrics.md documents is served.
	doc, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range regexp.MustCompile("`(vellum_[a-z0-9_]+)").FindAllStringSubmatch(string(doc), -1) {
		n := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name[1], "_bucket"), "_sum"), "_count")
		if _, ok := f[n]; !ok {
			t.Errorf("docs/metrics.md documents %s, which /metrics does not serve", name[1])
		}
	}
	for name := range f {
		if !strings.Contains(string(doc), "`"+name+"`") && !strings.Contains(string(doc), "`"+name+"{") {
			t.Errorf("%s is served but not documented in docs/metrics.md", name)
		}
	}
}

// TestMetricsFailedClosed fails the engine's fsync: the store_failed gauge,
// the failures counter and /readyz say so, with the reason.
func TestMetricsFailedClosed(t *testing.T) {
	m := metrics.New(&metrics.Options{NoRuntime: true})
	mem := vfs.NewMem()
	store := opsStore(t, mem, "/data", m)
	e := newTestServerWith(t, store, &Options{Metrics: m, DiskSpace: func(string) (uint64, uint64, error) { return 10 << 30, 20 << 30, nil }}, nil)
	e.ingest(ingestToken, event())
	mem.SetCapacity(1) // the next write finds the disk full: ENOSPC
	status, b, _ := e.do("POST", "/v1/audit/events", ingestToken, []byte("["+event()+"]"))
	if status != http.StatusServiceUnavailable {
		t.Fatalf("ingest on a full disk: %d %s", status, b)
	}
	status, b, _ = e.do("GET", "/readyz", "", nil)
	if d := detail(t, b); status != 503 || !strings.Contains(d, "failed closed") || !strings.Contains(d, "no space left on device") {
		t.Fatalf("readyz after failing closed: %d %s", status, b)
	}
	f := e.scrape(adminToken)
	if value(t, f, "vellum_store_failed") != 1 || value(t, f, "vellum_store_failures_total") != 1 {
		t.Fatalf("store_failed %v, failures %v", value(t, f, "vellum_store_failed"), value(t, f, "vellum_store_failures_total"))
	}
	if value(t, f, "vellum_ingest_rejections_total", "reason", "store_failed") != 1 {
		t.Fatal("the refused ingest is not counted as store_failed")
	}
	if value(t, f, "vellum_append_calls_total", "result", "failed") != 1 {
		t.Fatal("the failed append is not counted")
	}
}

// TestMetricsListener: with metrics.addr, /metrics is served without a
// token on its own listener (and nothing else is).
func TestMetricsListener(t *testing.T) {
	m := metrics.New(&metrics.Options{NoRuntime: true})
	store := opsStore(t, nil, t.TempDir(), m)
	e := newTestServerWith(t, store, &Options{Metrics: m}, func(c *ServerConfig) { c.Metrics.Addr = "127.0.0.1:0" })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.srv.ServeMetrics(l) }()
	e.ingest(ingestToken, event())
	get := func(path string) (int, []byte) {
		resp, err := http.Get("http://" + l.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	status, body := get("/metrics")
	if status != 200 {
		t.Fatalf("metrics listener: %d %s", status, body)
	}
	if v := value(t, parseMetrics(t, body), "vellum_records_appended_total", "outcome", "success"); v != 1 {
		t.Fatalf("records on the metrics listener: %v", v)
	}
	if status, _ := get("/v1/audit"); status != 404 {
		t.Fatalf("the metrics listener serves /v1/audit: %d", status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e.srv.Shutdown(ctx)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestMetricsConfig(t *testing.T) {
	for _, tt := range []struct {
		name, yaml, key string
	}{
		{"log format", "log_format: xml", "log_format"},
		{"metrics addr", "metrics: {addr: nope}", "metrics.addr"},
		{"metrics addr equals addr", "addr: 127.0.0.1:9000\nmetrics: {addr: 127.0.0.1:9000}", "metrics.addr"},
		{"metrics tenants", "auth: {tokens: [{name: p, role: metrics, tenants: [a], token_sha256: " + HashToken(metricsToken) + "}]}", "tenants"},
		{"floor above warning", "audit: {disk: {warn_free: 1GiB, min_free: 2GiB}}", "audit.disk.min_free"},
		{"check interval", "audit: {disk: {check_interval: 1ms}}", "audit.disk.check_interval"},
		{"cert without key", "tls: {cert_file: a.pem}", "tls"},
		{"client CA without TLS", "tls: {client_ca_file: ca.pem}", "tls.client_ca_file"},
		{"cert subject without CA", "auth: {tokens: [{name: p, role: ingest, cert_subject: CN=p}]}", "cert_subject"},
		{"cert subject and token", "tls: {cert_file: a, key_file: b, client_ca_file: c}\nauth: {tokens: [{name: p, role: ingest, cert_subject: CN=p, token_env: X}]}", "cert_subject"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.yaml), envOf(nil))
			if err == nil || !strings.Contains(err.Error(), tt.key) {
				t.Fatalf("err = %v, want one naming %s", err, tt.key)
			}
		})
	}
	c, err := ParseConfig([]byte("log_format: json\nmetrics: {addr: 127.0.0.1:9464}\naudit: {disk: {warn_free: 2GiB, min_free: 512MiB, check_interval: 2s}}"), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.LogFormat != "json" || c.Metrics.Addr != "127.0.0.1:9464" || c.Audit.Disk.MinFree != 512<<20 || c.Audit.Disk.WarnFree != 2<<30 {
		t.Fatalf("parsed %+v", c)
	}
}
