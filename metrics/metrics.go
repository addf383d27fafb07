package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vellumlog/vellum"
	"github.com/vellumlog/vellum/buildinfo"
	"github.com/vellumlog/vellum/engine"
)

// Namespace starts the name of every Vellum series.
const Namespace = "vellum"

// Ingest rejection reasons: the values of the reason label of
// vellum_ingest_rejections_total. The set is closed.
const (
	ReasonUnauthenticated = "unauthenticated"
	ReasonForbidden       = "forbidden"
	ReasonBadEvent        = "bad_event"
	ReasonTooLarge        = "too_large"
	ReasonDiskFull        = "disk_full"
	ReasonStoreFailed     = "store_failed"
	ReasonCanceled        = "canceled"
	ReasonInternal        = "internal"
)

// Append results: the values of the result label of
// vellum_append_calls_total.
const (
	ResultOK       = "ok"
	ResultInvalid  = "invalid"
	ResultTooLarge = "too_large"
	ResultFailed   = "failed"
	ResultClosed   = "closed"
	ResultCanceled = "canceled"
	ResultError    = "error"
)

// Metrics is Vellum's set of Prometheus collectors on its own registry. It
// is the engine's Observer, the server's request and ingest counters, the
// disk monitor's gauges, and the scrape-time reader of the engine's state
// and of pluggable sources (replicas, spill queues). Safe for concurrent
// use.
type Metrics struct {
	reg *prometheus.Registry
	now func() time.Time

	// Engine events (Observer).
	records        *prometheus.CounterVec
	duplicates     prometheus.Counter
	commits        prometheus.Counter
	batchRecords   prometheus.Histogram
	fsyncSeconds   prometheus.Histogram
	bytesWritten   prometheus.Counter
	sealed         prometheus.Counter
	checkpoints    prometheus.Counter
	opens          *prometheus.CounterVec
	openSegments   prometheus.Gauge
	openSeconds    prometheus.Gauge
	tornTailsCut   prometheus.Counter
	failures       prometheus.Counter
	cpNoteBytes    prometheus.Gauge
	cpTime         prometheus.Gauge
	lastCheckpoint atomic.Int64 // Unix ns of the last checkpoint signed by this process, 0 before

	// Appends through the server, requests, ingest.
	appendCalls *prometheus.CounterVec
	// appendByResult and reqSeries cache the series of appendCalls, and
	// of requests and reqSeconds, by their labels.
	appendByResult sync.Map // result -> prometheus.Counter
	reqSeries      sync.Map // reqKey -> *reqSeries
	requests       *prometheus.CounterVec
	reqSeconds     *prometheus.HistogramVec
	rejections     *prometheus.CounterVec
	redactions     *prometheus.CounterVec
	redacted       prometheus.Counter

	// Disk.
	diskFree   prometheus.Gauge
	diskTotal  prometheus.Gauge
	diskWarn   prometheus.Gauge
	diskMin    prometheus.Gauge
	diskAlarm  *prometheus.GaugeVec
	diskErrors prometheus.Counter

	mu       sync.Mutex
	store    StatsSource
	replicas map[string]ReplicaLagFunc
	spills   map[string]SpillDepthFunc
}

// StatsSource is what the scrape reads from the store: *engine.Engine.
type StatsSource interface {
	Stats() engine.Stats
}

var _ StatsSource = (*engine.Engine)(nil)

// ReplicaLagFunc reports how far a replica of the store (a SQLite or
// PostgreSQL copy the engine feeds) is behind: the durable records it has
// not applied yet, and the age in seconds of the oldest of them (0 when
// caught up). It is called at every scrape, so it must be cheap. A
// replicator plugs in with a one-line adapter, e.g.
//
//	m.WatchReplica("postgres", func() (uint64, float64) { l := r.Lag(); return l.Records, l.Seconds })
type ReplicaLagFunc func() (records uint64, seconds float64)

// SpillDepthFunc reports what waits in a spill queue (a collector's
// fail-open spill, while the store cannot take records): events and
// bytes. Called at every scrape, e.g.
//
//	m.WatchSpill("collector", func() (int, int64) { s := c.Stats(); return s.SpillPending, s.SpillBytes })
type SpillDepthFunc func() (events int, bytes int64)

var _ engine.Observer = (*Metrics)(nil)

// Options configure New. The zero value works.
type Options struct {
	// Now is the clock for checkpoint ages; time.Now when nil.
	Now func() time.Time
	// NoRuntime leaves out the Go runtime and process collectors (go_*,
	// process_*), which the standalone server registers.
	NoRuntime bool
}

// Buckets of the histograms. Fixed, so dashboards can rely on them.
var (
	// BatchBuckets: records per group commit, 1 to 64k.
	BatchBuckets = prometheus.ExponentialBuckets(1, 4, 9)
	// FsyncBuckets: fdatasync latency, 50 µs to ~1.6 s.
	FsyncBuckets = prometheus.ExponentialBuckets(50e-6, 2, 16)
	// RequestBuckets: request latency, 0.5 ms to ~16 s.
	RequestBuckets = prometheus.ExponentialBuckets(0.0005, 2, 16)
)

// New returns a Metrics with every Vellum series registered on a new
// registry.
func New(opts *Options) *Metrics {
	if opts == nil {
		opts = &Options{}
	}
	m := &Metrics{reg: prometheus.NewRegistry(), now: opts.Now, replicas: map[string]ReplicaLagFunc{}, spills: map[string]SpillDepthFunc{}}
	if m.now == nil {
		m.now = time.Now
	}
	f := factory{m.reg}
	m.records = f.counterVec("records_appended_total", "Records stored by the engine, by outcome status.", "outcome")
	for _, s := range vellum.Statuses {
		m.records.WithLabelValues(s) // every outcome series exists from the start
	}
	m.duplicates = f.counter("records_deduplicated_total", "Records not stored again because they repeated a recent (tenant, event_id).")
	m.commits = f.counter("commits_total", "Group commits (batches made durable with one fdatasync).")
	m.batchRecords = f.histogram("commit_batch_records", "Records per group commit.", BatchBuckets)
	m.fsyncSeconds = f.histogram("fsync_duration_seconds", "fdatasync latency of group commits.", FsyncBuckets)
	m.bytesWritten = f.counter("written_bytes_total", "Bytes written to segment files by group commits (compressed blocks and commit frames).")
	m.sealed = f.counter("segments_sealed_total", "Segments sealed by this process.")
	m.checkpoints = f.counter("checkpoints_signed_total", "Signed checkpoints appended to the checkpoint log by this process.")
	m.opens = f.counterVec("open_verifications_total", "Store opens by result of recovery and verification: ok, corrupt (the data does not verify) or error.", "result")
	for _, r := range []string{"ok", "corrupt", "error"} {
		m.opens.WithLabelValues(r)
	}
	m.openSegments = f.gauge("open_verified_segments", "Segments whose every record MAC was checked by the last open.")
	m.openSeconds = f.gauge("open_duration_seconds", "How long the last open (recovery and verification) took.")
	m.tornTailsCut = f.counter("open_torn_tails_cut_total", "Incomplete final batches cut back by recovery (kept as .broken copies).")
	m.failures = f.counter("store_failures_total", "Times the engine failed closed.")
	m.cpNoteBytes = f.gauge("checkpoint_note_bytes", "Size of the last signed checkpoint note.")
	m.cpTime = f.gauge("checkpoint_last_signed_timestamp_seconds", "Unix time of the last checkpoint signed by this process.")

	m.appendCalls = f.counterVec("append_calls_total", "Append calls made by the server (one per ingest request or audited read), by result.", "result")
	m.requests = f.counterVec("http_requests_total", "HTTP requests by route pattern, method and status code.", "route", "method", "code")
	m.reqSeconds = f.histogramVec("http_request_duration_seconds", "HTTP request latency by route pattern.", RequestBuckets, "route")
	m.rejections = f.counterVec("ingest_rejections_total", "Ingest requests refused, by reason.", "reason")
	for _, r := range []string{ReasonUnauthenticated, ReasonForbidden, ReasonBadEvent, ReasonTooLarge, ReasonDiskFull, ReasonStoreFailed, ReasonCanceled, ReasonInternal} {
		m.rejections.WithLabelValues(r)
	}
	m.redactions = f.counterVec("redactions_total", "Redaction rule hits (values rewritten before encoding), by rule.", "rule")
	m.redacted = f.counter("redacted_records_total", "Records in which at least one redaction rule fired.")

	m.diskFree = f.gauge("disk_free_bytes", "Free bytes available to the server on the data directory's file system.")
	m.diskTotal = f.gauge("disk_total_bytes", "Size of the data directory's file system.")
	m.diskWarn = f.gauge("disk_warn_free_bytes", "Configured free-space threshold below which the server reports degraded (audit.disk.warn_free).")
	m.diskMin = f.gauge("disk_min_free_bytes", "Configured free-space floor below which ingest is refused with 507 (audit.disk.min_free).")
	m.diskAlarm = f.gaugeVec("disk_alarm", "1 while free space is below a threshold: level warn (degraded) or refuse (ingest refused).", "level")
	m.diskAlarm.WithLabelValues("warn")
	m.diskAlarm.WithLabelValues("refuse")
	m.diskErrors = f.counter("disk_check_errors_total", "Free-space checks that failed (statfs errors).")

	info := buildinfo.Read()
	bi := f.gaugeVec("build_info", "Always 1; the labels say which build runs.", "version", "commit", "go_version", "fips140")
	bi.WithLabelValues(info.Version, info.Commit, info.GoVersion, info.FIPS).Set(1)

	m.reg.MustRegister(stateCollector{m})
	if !opts.NoRuntime {
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// Registry returns the registry, for registering more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// WatchStore makes scrapes read the store's state (segments by state,
// the last seq, the latest checkpoint, whether it failed closed).
func (m *Metrics) WatchStore(s StatsSource) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.store = s
}

// WatchReplica makes scrapes read a replica's lag, labelled with name (the
// configured replica's kind or name: a bounded set).
func (m *Metrics) WatchReplica(name string, lag ReplicaLagFunc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.replicas[name] = lag
}

// WatchSpill makes scrapes read a spill queue's depth, labelled with name.
func (m *Metrics) WatchSpill(name string, depth SpillDepthFunc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.spills[name] = depth
}

// Opened implements engine.Observer.
func (m *Metrics) Opened(st engine.OpenStats) {
	switch {
	case st.Err == nil:
		m.opens.WithLabelValues("ok").Inc()
	case engine.IsCorrupt(st.Err):
		m.opens.WithLabelValues("corrupt").Inc()
	default:
		m.opens.WithLabelValues("error").Inc()
	}
	m.openSegments.Set(float64(st.VerifiedSegments))
	m.openSeconds.Set(st.Duration.Seconds())
	m.tornTailsCut.Add(float64(st.TornTailsCut))
}

// Committed implements engine.Observer.
func (m *Metrics) Committed(st engine.CommitStats) {
	m.commits.Inc()
	m.batchRecords.Observe(float64(st.Records + st.Duplicates))
	if st.Bytes > 0 {
		m.fsyncSeconds.Observe(st.SyncDuration.Seconds())
		m.bytesWritten.Add(float64(st.Bytes))
	}
	m.duplicates.Add(float64(st.Duplicates))
	for i, n := range st.Outcomes {
		if n > 0 && i < len(vellum.Statuses) {
			m.records.WithLabelValues(vellum.Statuses[i]).Add(float64(n))
		}
	}
}

// Sealed implements engine.Observer.
func (m *Metrics) Sealed(engine.SealStats) { m.sealed.Inc() }

// CheckpointSigned implements engine.Observer.
func (m *Metrics) CheckpointSigned(st engine.CheckpointStats) {
	m.checkpoints.Inc()
	m.cpNoteBytes.Set(float64(st.NoteBytes))
	m.cpTime.Set(float64(st.Time.UnixNano()) / 1e9)
	m.lastCheckpoint.Store(st.Time.UnixNano())
}

// Failed implements engine.Observer.
func (m *Metrics) Failed(error) { m.failures.Inc() }

// AppendResult counts one Append call made by the server.
func (m *Metrics) AppendResult(result string) {
	if c, ok := m.appendByResult.Load(result); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	c := m.appendCalls.WithLabelValues(result)
	m.appendByResult.Store(result, c)
	c.Inc()
}

// Request counts one HTTP request: route is the route pattern (never the
// path: paths hold seqs), "other" for unknown routes.
//
// The series of a route, method and code are looked up once and kept
// (WithLabelValues validates and hashes every label on each call: at tens
// of thousands of one-event ingest requests a second, three lookups a
// request were ~1.5% of the server's CPU). A series appears in /metrics
// at its first request, as before.
func (m *Metrics) Request(route, method string, code int, d time.Duration) {
	k := reqKey{route, method, code}
	v, ok := m.reqSeries.Load(k)
	if !ok {
		v, _ = m.reqSeries.LoadOrStore(k, &reqSeries{
			count:   m.requests.WithLabelValues(route, method, strconv.Itoa(code)),
			seconds: m.reqSeconds.WithLabelValues(route),
		})
	}
	rs := v.(*reqSeries)
	rs.count.Inc()
	rs.seconds.Observe(d.Seconds())
}

// reqKey and reqSeries are Request's cache of series.
type reqKey struct {
	route, method string
	code          int
}

type reqSeries struct {
	count   prometheus.Counter
	seconds prometheus.Observer
}

// IngestRejected counts one refused ingest request; reason is one of the
// Reason constants.
func (m *Metrics) IngestRejected(reason string) { m.rejections.WithLabelValues(reason).Inc() }

// DiskThresholds sets the configured thresholds' gauges.
func (m *Metrics) DiskThresholds(warnFree, minFree uint64) {
	m.diskWarn.Set(float64(warnFree))
	m.diskMin.Set(float64(minFree))
}

// Disk sets the free-space gauges and alarms after a check.
func (m *Metrics) Disk(free, total uint64, warn, refuse bool) {
	m.diskFree.Set(float64(free))
	m.diskTotal.Set(float64(total))
	m.diskAlarm.WithLabelValues("warn").Set(b2f(warn))
	m.diskAlarm.WithLabelValues("refuse").Set(b2f(refuse))
}

// DiskCheckFailed counts a failed free-space check.
func (m *Metrics) DiskCheckFailed() { m.diskErrors.Inc() }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
